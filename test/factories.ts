import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type pg from 'pg';
import { type Actor, createActor } from './app.ts';

/** Builders for a little world per test (Outline-style factories), via the API unless speed needs SQL. */

function ok(res: LightMyRequestResponse, status: number, what: string) {
  if (res.statusCode !== status) throw new Error(`${what} failed: ${res.statusCode} ${res.body}`);
  return res.json();
}

let seq = 0;
const next = () => ++seq;

export interface CourseJson {
  id: string;
  title: string;
  description: string;
  joinCode?: string;
  role: string;
  createdAt: string;
}

export async function createCourse(actor: Actor, body: { title?: string; description?: string } = {}) {
  const res = await actor.req('POST', '/courses', { title: `Course ${next()}`, ...body });
  return ok(res, 201, 'create course').course as CourseJson & { joinCode: string };
}

export async function joinCourse(actor: Actor, joinCode: string) {
  return ok(await actor.req('POST', '/courses/join', { joinCode }), 200, 'join').course as CourseJson;
}

export async function setRole(instructor: Actor, courseId: string, userId: string, role: string) {
  const res = await instructor.req('PUT', `/courses/${courseId}/members/${userId}`, { role });
  return ok(res, 200, 'set role').member;
}

export async function createLesson(
  actor: Actor,
  courseId: string,
  body: { title?: string; body?: string; position?: number; publishedAt?: string | null } = {},
) {
  const res = await actor.req('POST', `/courses/${courseId}/lessons`, {
    title: `Lesson ${next()}`,
    body: '# Hello',
    ...body,
  });
  return ok(res, 201, 'create lesson').lesson as {
    id: string;
    courseId: string;
    title: string;
    body: string;
    position: number;
    publishedAt: string | null;
  };
}

/** A valid exercise body: one visible call test and one hidden io test. */
export function exerciseBody(overrides: Record<string, unknown> = {}) {
  return {
    title: `Sum ${next()}`,
    prompt: 'Add two numbers.',
    language: 'javascript',
    entrypoint: 'add',
    starterCode: 'function add(a, b) {\n}\n',
    tests: [
      { name: 'small', kind: 'call', args: [1, 2], expected: 3, hidden: false },
      { name: 'echo', kind: 'io', stdin: 'hi\n', stdout: 'hi\n', hidden: true },
    ],
    maxScore: 10,
    ...overrides,
  };
}

export async function createExercise(
  actor: Actor,
  lessonId: string,
  overrides: Record<string, unknown> = {},
) {
  const res = await actor.req('POST', `/lessons/${lessonId}/exercises`, exerciseBody(overrides));
  return ok(res, 201, 'create exercise').exercise as { id: string; title: string; maxScore: number } & Record<
    string,
    unknown
  >;
}

export interface World {
  instructor: Actor;
  ta: Actor;
  student: Actor;
  outsider: Actor;
  course: CourseJson & { joinCode: string };
  lesson: { id: string };
  exercise: { id: string };
}

/** A course with one of each role, a lesson and an exercise. Actors are registered concurrently. */
export async function buildWorld(app: FastifyInstance, name = 'W'): Promise<World> {
  const [instructor, ta, student, outsider] = await Promise.all(
    ['Instructor', 'Ta', 'Student', 'Outsider'].map((role) => createActor(app, `${name} ${role}`)),
  );
  const course = await createCourse(instructor!);
  await joinCourse(ta!, course.joinCode);
  await setRole(instructor!, course.id, ta!.id, 'ta');
  await joinCourse(student!, course.joinCode);
  const lesson = await createLesson(instructor!, course.id);
  const exercise = await createExercise(instructor!, lesson.id);
  return {
    instructor: instructor!,
    ta: ta!,
    student: student!,
    outsider: outsider!,
    course,
    lesson,
    exercise,
  };
}

/** Many users at once, straight into the table (registering through the API hashes a password each). */
export async function insertUsers(pool: pg.Pool, n: number, prefix = 'bulk'): Promise<string[]> {
  const tag = `${prefix}${next()}${Math.random().toString(36).slice(2, 8)}`;
  const { rows } = await pool.query<{ id: string }>(
    `insert into users (email, name, password_hash)
     select $1 || '-' || i || '@example.com', 'User ' || $1 || ' ' || i, 'x' from generate_series(1, $2::int) i
     returning id`,
    [tag, n],
  );
  return rows.map((r) => r.id);
}

export async function addMembers(pool: pg.Pool, courseId: string, userIds: string[], role = 'student') {
  await pool.query(
    `insert into course_members (course_id, user_id, role)
     select $1, unnest($2::uuid[]), $3::course_role on conflict do nothing`,
    [courseId, userIds, role],
  );
}

export interface SubmissionRow {
  courseId: string;
  exerciseId: string;
  userId: string;
  status?: 'queued' | 'running' | 'passed' | 'failed' | 'error';
  score?: number | null;
  countsAsAttempt?: boolean;
}

/** A submission row as the submissions module would leave it (grading itself is not involved). */
export async function insertSubmission(pool: pg.Pool, s: SubmissionRow): Promise<{ id: string }> {
  const { rows } = await pool.query<{ id: string }>(
    `insert into submissions (course_id, exercise_id, user_id, code, status, score, raw_score, body_hash, counts_as_attempt)
     values ($1, $2, $3, 'code', $4, $5, $5, 'hash', $6) returning id`,
    [s.courseId, s.exerciseId, s.userId, s.status ?? 'passed', s.score ?? null, s.countsAsAttempt ?? true],
  );
  return rows[0]!;
}
