import { describe, expect, it } from 'vitest';

import { createActor, withTestApp } from '../../../test/app.ts';
import { buildWorld, exerciseBody, insertSubmission, joinCourse, setRole } from '../../../test/factories.ts';

/** v1.1 course management: archiving, removing members, a new join code. */
const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });
const ADD = 'function add(a, b) { return a + b; }';

describe('PATCH /courses/:id {archived}', () => {
  it('makes the course read-only: no submissions, runs, regrades, edits or joins, until unarchived', async () => {
    const w = await buildWorld(ctx.app, 'Arch');
    const archived = await w.instructor.req('PATCH', `/courses/${w.course.id}`, { archived: true });
    expect(archived.statusCode, archived.body).toBe(200);
    expect(archived.json().course.archived).toBe(true);

    const refused = [
      await w.student.req('POST', `/exercises/${w.exercise.id}/submissions`, { code: ADD }),
      await w.student.req('POST', `/exercises/${w.exercise.id}/runs`, { code: ADD }),
      await w.ta.req('POST', `/exercises/${w.exercise.id}/regrade`),
      await w.ta.req('PATCH', `/exercises/${w.exercise.id}`, { maxScore: 3 }),
      await w.ta.req('POST', `/lessons/${w.lesson.id}/exercises`, exerciseBody()),
      await w.ta.req('PATCH', `/lessons/${w.lesson.id}`, { title: 'x' }),
      await w.ta.req('POST', `/courses/${w.course.id}/lessons`, { title: 'x', body: '' }),
      await w.instructor.req('PATCH', `/courses/${w.course.id}`, { title: 'x' }),
      await w.ta.req('PUT', `/exercises/${w.exercise.id}/exceptions/${w.student.id}`, { extraAttempts: 1 }),
      await w.ta.req('DELETE', `/exercises/${w.exercise.id}`),
    ];
    for (const res of refused) {
      expect(res.statusCode, res.body).toBe(409);
      expect(res.json().error.code).toBe('course_archived');
    }

    const newcomer = await createActor(ctx.app, 'Late joiner');
    const join = await newcomer.req('POST', '/courses/join', { joinCode: w.course.joinCode });
    expect(join.statusCode).toBe(409);
    expect(join.json().error.code).toBe('course_archived');
    // Members keep reading it, and joining again as a member is harmless.
    expect((await w.student.req('GET', `/exercises/${w.exercise.id}`)).statusCode).toBe(200);
    expect((await w.student.req('GET', `/courses/${w.course.id}/progress`)).statusCode).toBe(200);
    expect((await w.student.req('POST', '/courses/join', { joinCode: w.course.joinCode })).statusCode).toBe(
      200,
    );
    expect((await w.ta.req('GET', `/courses/${w.course.id}/gradebook`)).statusCode).toBe(200);
    // Only the instructor archives (TAs 403).
    expect((await w.ta.req('PATCH', `/courses/${w.course.id}`, { archived: false })).statusCode).toBe(403);

    // Unarchiving and editing in the same request is allowed.
    const back = await w.instructor.req('PATCH', `/courses/${w.course.id}`, {
      archived: false,
      title: 'Again',
    });
    expect(back.statusCode, back.body).toBe(200);
    expect(back.json().course).toMatchObject({ archived: false, title: 'Again' });
    expect(
      (await w.student.req('POST', `/exercises/${w.exercise.id}/submissions`, { code: ADD })).statusCode,
    ).toBe(202);
  });
});

describe('DELETE /courses/:id/members/:userId', () => {
  it('takes access away at once and keeps their submissions', async () => {
    const w = await buildWorld(ctx.app, 'Rm');
    const kept = await insertSubmission(ctx.database.pool, {
      courseId: w.course.id,
      exerciseId: w.exercise.id,
      userId: w.student.id,
      status: 'passed',
      score: 10,
    });
    const res = await w.instructor.req('DELETE', `/courses/${w.course.id}/members/${w.student.id}`);
    expect(res.statusCode).toBe(204);
    expect((await w.student.req('GET', `/courses/${w.course.id}`)).statusCode).toBe(404);
    expect((await w.student.req('GET', `/exercises/${w.exercise.id}`)).statusCode).toBe(404);
    expect(
      (await w.student.req('POST', `/exercises/${w.exercise.id}/submissions`, { code: ADD })).statusCode,
    ).toBe(404);
    const gradebook = (await w.ta.req('GET', `/courses/${w.course.id}/gradebook`)).json();
    expect(gradebook.rows.map((r: { user: { id: string } }) => r.user.id)).not.toContain(w.student.id);
    const { rows } = await ctx.database.pool.query('select id from submissions where id = $1', [kept.id]);
    expect(rows).toHaveLength(1);
    // Rejoining brings the row back with the kept score.
    await joinCourse(w.student, w.course.joinCode);
    const again = (await w.ta.req('GET', `/courses/${w.course.id}/gradebook`)).json();
    const row = again.rows.find((r: { user: { id: string } }) => r.user.id === w.student.id);
    expect(row.scores[w.exercise.id]).toBe(10);
    expect(
      (await w.instructor.req('DELETE', `/courses/${w.course.id}/members/${w.outsider.id}`)).statusCode,
    ).toBe(404);
  });

  it('never removes the last instructor, but removes one of two', async () => {
    const w = await buildWorld(ctx.app, 'Last');
    const last = await w.instructor.req('DELETE', `/courses/${w.course.id}/members/${w.instructor.id}`);
    expect(last.statusCode).toBe(409);
    expect(last.json().error.code).toBe('last_instructor');
    await setRole(w.instructor, w.course.id, w.ta.id, 'instructor');
    expect((await w.ta.req('DELETE', `/courses/${w.course.id}/members/${w.instructor.id}`)).statusCode).toBe(
      204,
    );
    expect((await w.instructor.req('GET', `/courses/${w.course.id}`)).statusCode).toBe(404);
  });
});

describe('POST /courses/:id/join-code', () => {
  it('issues a new join code; the old one stops working', async () => {
    const w = await buildWorld(ctx.app, 'Code');
    const res = await w.instructor.req('POST', `/courses/${w.course.id}/join-code`);
    expect(res.statusCode).toBe(200);
    const fresh = res.json().course.joinCode as string;
    expect(fresh).not.toBe(w.course.joinCode);
    expect(fresh).toMatch(/^[A-Z0-9-]{6,}$/);
    const a = await createActor(ctx.app, 'Old code');
    const old = await a.req('POST', '/courses/join', { joinCode: w.course.joinCode });
    expect(old.statusCode).toBe(404);
    expect(old.json().error.code).toBe('invalid_join_code');
    expect((await a.req('POST', '/courses/join', { joinCode: fresh })).statusCode).toBe(200);
    expect((await w.ta.req('POST', `/courses/${w.course.id}/join-code`)).statusCode).toBe(403);
  });
});
