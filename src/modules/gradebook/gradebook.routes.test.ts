import { describe, expect, it } from 'vitest';
import { anon, createActor, withTestApp } from '../../../test/app.ts';
import {
  buildWorld,
  createExercise,
  createLesson,
  insertSubmission,
  joinCourse,
  type World,
} from '../../../test/factories.ts';
import { defuse, round2 } from './gradebook.presenter.ts';

// Load shedding is tested elsewhere; a busy test machine must not turn these requests into 503s.
const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });

/** A course with two lessons (created out of order), three exercises, two students and some submissions. */
async function gradedWorld() {
  const w = await buildWorld(ctx.app, 'Grades');
  const second = await createLesson(w.instructor, w.course.id, { title: 'Second', position: 5 });
  const first = await createLesson(w.instructor, w.course.id, { title: 'First', position: 0 });
  const b = await createExercise(w.instructor, second.id, { title: 'B', maxScore: 5 });
  const a = await createExercise(w.instructor, first.id, { title: '=A, "quoted"', maxScore: 10 });
  const other = await createActor(ctx.app, '@Bob');
  await joinCourse(other, w.course.joinCode);
  const sub = (
    userId: string,
    exerciseId: string,
    status: 'passed' | 'failed' | 'error' | 'queued' | 'running',
    score: number | null,
    countsAsAttempt = true,
  ) =>
    insertSubmission(ctx.database.pool, {
      courseId: w.course.id,
      exerciseId,
      userId,
      status,
      score,
      countsAsAttempt,
    });
  await sub(w.student.id, a.id, 'failed', 3.33);
  await sub(w.student.id, a.id, 'passed', 10);
  await sub(w.student.id, a.id, 'queued', null);
  await sub(w.student.id, b.id, 'error', 0, false);
  await sub(w.student.id, b.id, 'failed', 1.115);
  await sub(other.id, b.id, 'running', null);
  // Staff submissions never make a gradebook row.
  await sub(w.ta.id, a.id, 'passed', 10);
  return { w, a, b, other };
}

describe('GET /courses/:courseId/gradebook', () => {
  it('has one row per student with best graded scores and totals', async () => {
    const { w, a, b, other } = await gradedWorld();
    const res = await w.ta.req('GET', `/courses/${w.course.id}/gradebook`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    // The world's own lesson is at position 0 and older than "First".
    expect(body.exercises.map((e: { id: string }) => e.id)).toEqual([w.exercise.id, a.id, b.id]);
    expect(body.exercises[1]).toEqual({ id: a.id, title: '=A, "quoted"', maxScore: 10 });
    expect(body.rows).toHaveLength(2);
    const byId = Object.fromEntries(body.rows.map((r: { user: { id: string } }) => [r.user.id, r]));
    expect(byId[w.student.id]).toEqual({
      user: { id: w.student.id, name: w.student.name, email: w.student.email },
      scores: { [w.exercise.id]: null, [a.id]: 10, [b.id]: 1.115 },
      total: 11.12,
    });
    expect(byId[other.id]).toMatchObject({
      scores: { [w.exercise.id]: null, [a.id]: null, [b.id]: null },
      total: 0,
    });
    expect(body.rows[0].user.name).toBe('@Bob');
  });

  it('exports CSV with name, email, one column per exercise title, total', async () => {
    const { w } = await gradedWorld();
    const res = await w.instructor.req('GET', `/courses/${w.course.id}/gradebook?format=csv`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(res.headers['content-disposition']).toBe(`attachment; filename="gradebook-${w.course.id}.csv"`);
    const lines = res.body.trim().split('\n');
    expect(lines[0]).toMatch(/^name,email,Sum \d+,"'=A, ""quoted""",B,total$/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^'@Bob,bob-.*@example.com,,,,0$/);
    expect(lines[2]).toBe(`${w.student.name},${w.student.email},,10,1.115,11.12`);
    expect((await w.instructor.req('GET', `/courses/${w.course.id}/gradebook?format=xml`)).statusCode).toBe(
      400,
    );
    const json = await w.instructor.req('GET', `/courses/${w.course.id}/gradebook?format=json`);
    expect(json.json().rows).toHaveLength(2);
  });

  it('an empty course has no columns and no rows', async () => {
    const owner = await createActor(ctx.app, 'Empty');
    const course = (await owner.req('POST', '/courses', { title: 'Empty' })).json().course;
    const res = await owner.req('GET', `/courses/${course.id}/gradebook`);
    expect(res.json()).toEqual({ exercises: [], rows: [] });
    const csv = await owner.req('GET', `/courses/${course.id}/gradebook?format=csv`);
    expect(csv.body).toBe('name,email,total\n');
  });

  it('students 403, outsiders 404, anonymous 401', async () => {
    const w: World = await buildWorld(ctx.app, 'GbAuthz');
    const url = `/courses/${w.course.id}/gradebook`;
    expect((await w.student.req('GET', url)).statusCode).toBe(403);
    expect((await w.outsider.req('GET', url)).statusCode).toBe(404);
    expect((await w.outsider.req('GET', '/courses/x/gradebook')).statusCode).toBe(404);
    expect((await anon(ctx.app, 'GET', url)).statusCode).toBe(401);
  });
});

describe('GET /courses/:courseId/progress', () => {
  it('gives the caller their best score and attempts per exercise', async () => {
    const { w, a, b } = await gradedWorld();
    const res = await w.student.req('GET', `/courses/${w.course.id}/progress`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      exercises: [
        { id: w.exercise.id, title: expect.any(String), maxScore: 10, bestScore: null, attempts: 0 },
        { id: a.id, title: '=A, "quoted"', maxScore: 10, bestScore: 10, attempts: 3 },
        { id: b.id, title: 'B', maxScore: 5, bestScore: 1.115, attempts: 1 },
      ],
      total: 11.12,
      maxTotal: 25,
    });
    const ta = (await w.ta.req('GET', `/courses/${w.course.id}/progress`)).json();
    expect(ta.total).toBe(10);
    expect((await w.outsider.req('GET', `/courses/${w.course.id}/progress`)).statusCode).toBe(404);
    expect((await anon(ctx.app, 'GET', `/courses/${w.course.id}/progress`)).statusCode).toBe(401);
  });

  it('rounds to two decimals and defuses formula cells', () => {
    expect(round2(0.1 + 0.2)).toBe(0.3);
    expect(defuse('=1+1')).toBe("'=1+1");
    expect(defuse('-x')).toBe("'-x");
    expect(defuse('Ada')).toBe('Ada');
  });
});
