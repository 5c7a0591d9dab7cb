import type pg from 'pg';
import { storedCallTest } from '../../src/db/seed.ts';
import { hashPassword } from '../../src/lib/passwords.ts';

// Data sets are made with generate_series in a few statements, never through the API row by row.

export const PASSWORD = 'bench-password-123';

export interface SeededCourse {
  courseId: string;
  joinCode: string;
  lessonIds: string[];
  /** Exercises by language, in lesson order. */
  jsExerciseIds: string[];
  pyExerciseIds: string[];
  instructor: SeededUser;
  students: SeededUser[];
}

export interface SeededUser {
  id: string;
  email: string;
  /** A bearer token whose SHA-256 is stored in api_tokens (made by SQL, as POST /auth/tokens would). */
  token: string;
}

const LESSON_BODY = `# Loops\n\n${'A loop repeats a block of code while a condition holds. '.repeat(40)}\n\n\`\`\`js\nfor (let i = 0; i < 10; i++) console.log(i);\n\`\`\`\n\n${'Each pass through the loop is an iteration. '.repeat(40)}\n`;

const call = storedCallTest;
const JS_TESTS = [
  call('small', '[1,2]', '3', false),
  call('negative', '[-5,2]', '-3', false),
  call('large', '[1e9,1e9]', '2e9', true),
];
const PY_TESTS = JS_TESTS;

let precomputedHash: Promise<string> | undefined;

/**
 * One course with `students` students (each with a bearer token made in SQL and a password whose
 * argon2 hash is computed once), `lessons` lessons of `exercisesPerLesson` exercises (JavaScript, and
 * one Python exercise in the first lesson), plus, if asked, `submissionsPerStudent` graded
 * submissions per student per exercise so the gradebook has real work to do.
 */
export async function seedCourse(
  admin: pg.Pool,
  opts: {
    tag: string;
    students: number;
    lessons: number;
    exercisesPerLesson: number;
    submissionsPerStudent?: number;
  },
): Promise<SeededCourse> {
  precomputedHash ??= hashPassword(PASSWORD);
  const passwordHash = await precomputedHash;
  const tag = opts.tag;
  const client = await admin.connect();
  try {
    await client.query('begin');
    const userIns = await client.query<{ id: string; email: string; i: number }>(
      `insert into users (email, name, password_hash)
       select $1 || '-' || i || '@bench.test', 'Student ' || i, $2
       from generate_series(0, $3::int) i
       returning id, email, split_part(split_part(email, '@', 1), '-', 2)::int as i`,
      [tag, passwordHash, opts.students],
    );
    // Row 0 is the instructor.
    const byIndex = new Map(userIns.rows.map((r) => [r.i, r]));
    await client.query(
      `insert into api_tokens (token_hash, user_id, name)
       select encode(sha256(convert_to('bench_' || $1 || '_' || split_part(split_part(u.email, '@', 1), '-', 2), 'UTF8')), 'hex'),
              u.id, 'bench'
       from users u where u.email like $1 || '-%@bench.test'`,
      [tag],
    );
    const course = await client.query<{ id: string }>(
      `insert into courses (title, description, join_code) values ($1, 'Seeded by the benchmark', $2) returning id`,
      [`Bench course ${tag}`, `B${tag.toUpperCase()}${Math.random().toString(36).slice(2, 8)}`],
    );
    const courseId = course.rows[0]!.id;
    const joinCode = (await client.query(`select join_code from courses where id = $1`, [courseId])).rows[0]
      .join_code as string;
    await client.query(
      `insert into course_members (course_id, user_id, role)
       select $1, u.id, case when u.email = $2 || '-0@bench.test' then 'instructor' else 'student' end::course_role
       from users u where u.email like $2 || '-%@bench.test'`,
      [courseId, tag],
    );
    const lessons = await client.query<{ id: string }>(
      `insert into lessons (course_id, title, body, position)
       select $1, 'Lesson ' || p, $2, p from generate_series(0, $3::int - 1) p
       returning id`,
      [courseId, LESSON_BODY, opts.lessons],
    );
    const lessonIds = lessons.rows.map((r) => r.id);
    const exercises = await client.query<{ id: string; language: string }>(
      `insert into exercises (course_id, lesson_id, title, prompt, language, entrypoint, starter_code, tests, max_score, limits)
       select $1, l.id, 'Exercise ' || l.position || '.' || e,
              'Write add(a, b).', case when l.position = 0 and e = 0 then 'python' else 'javascript' end::exercise_language,
              'add', '', case when l.position = 0 and e = 0 then $3::jsonb else $2::jsonb end, 10,
              '{"timeMs": 2000, "memoryMb": 64}'::jsonb
       from lessons l, generate_series(0, $4::int - 1) e
       where l.course_id = $1
       order by l.position, e
       returning id, language`,
      [courseId, JSON.stringify(JS_TESTS), JSON.stringify(PY_TESTS), opts.exercisesPerLesson],
    );
    if (opts.submissionsPerStudent) {
      await client.query(
        `insert into submissions (course_id, exercise_id, user_id, code, status, score, results, body_hash, graded_at, grading_generation)
         select $1, e.id, m.user_id, 'function add(a, b) { return a + b; }',
                case when k % 2 = 0 then 'passed' else 'failed' end::submission_status,
                case when k % 2 = 0 then 10 else 10 * random() end,
                '[]'::jsonb, md5(m.user_id::text || e.id::text || k), now(), 1
         from course_members m, exercises e, generate_series(1, $2::int) k
         where m.course_id = $1 and e.course_id = $1 and m.role = 'student'`,
        [courseId, opts.submissionsPerStudent],
      );
    }
    await client.query('commit');
    await client.query('analyze');
    const user = (i: number): SeededUser => ({
      id: byIndex.get(i)!.id,
      email: byIndex.get(i)!.email,
      token: `bench_${tag}_${i}`,
    });
    return {
      courseId,
      joinCode,
      lessonIds,
      jsExerciseIds: exercises.rows.filter((r) => r.language === 'javascript').map((r) => r.id),
      pyExerciseIds: exercises.rows.filter((r) => r.language === 'python').map((r) => r.id),
      instructor: user(0),
      students: Array.from({ length: opts.students }, (_, k) => user(k + 1)),
    };
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** Graded submissions and events pile up across scenarios; this keeps later scenarios comparable. */
export async function clearSubmissions(admin: pg.Pool, courseId: string) {
  await admin.query('delete from submissions where course_id = $1', [courseId]);
  await admin.query('delete from events where course_id = $1', [courseId]);
  // Each step starts from the same state: no dead rows from the previous step's deletes for the queue
  // claim, the per-user counts or the gradebook to scan until autovacuum comes by.
  await admin.query('vacuum (analyze) submissions, events, grading_jobs');
}

export interface BigCourse {
  course: SeededCourse;
  students: number;
  exercises: number;
  submissions: number;
  seedMs: number;
}

const bigCourses = new WeakMap<pg.Pool, Promise<BigCourse>>();

/**
 * The platform's other course, seeded once per database: students × 20 exercises × 2 graded submissions,
 * and the submission.updated event each of them wrote. The isolation scenario reads its gradebook; the
 * classroom runs beside it, so that its steps start from tables and planner statistics of a platform in
 * use. Without it a classroom step began with `submissions`, `exercise_scores` and `events` ANALYZEd
 * empty, and every pooled connection kept the sequential-scan plans made for empty tables for the whole
 * step (autovacuum's next ANALYZE, which replans them, comes up to a minute later; docs/perf/
 * classroom-profile.md, session 15). In a full run the isolation scenario had seeded the submissions
 * before the classroom, but no events.
 */
export function bigCourse(admin: pg.Pool, quick: boolean, log: (line: string) => void): Promise<BigCourse> {
  const students = quick ? 1000 : 5000;
  let big = bigCourses.get(admin);
  if (!big) {
    big = (async () => {
      log(`seeding a big course: ${students} students × 20 exercises × 2 submissions`);
      const t0 = Date.now();
      const course = await seedCourse(admin, {
        tag: `big${Date.now() % 1e6}`,
        students,
        lessons: 4,
        exercisesPerLesson: 5,
        submissionsPerStudent: 2,
      });
      // Each graded submission wrote its submission.updated event, which Lab keeps for a week.
      const events = await admin.query(
        `insert into events (course_id, user_id, type, payload)
         select s.course_id, s.user_id, 'submission.updated',
                jsonb_build_object('submission', jsonb_build_object('id', s.id, 'exerciseId', s.exercise_id,
                  'userId', s.user_id, 'status', s.status, 'score', s.score))
           from submissions s where s.course_id = $1 order by s.created_at`,
        [course.courseId],
      );
      await admin.query('analyze events');
      // One event per submission of the course: the insert's count is the course's submissions.
      return { course, students, exercises: 20, submissions: events.rowCount ?? 0, seedMs: Date.now() - t0 };
    })();
    bigCourses.set(admin, big);
  }
  return big;
}
