import { describe, expect, it } from 'vitest';
import { anon, withTestApp } from '../../../test/app.ts';
import { buildWorld, createExercise, exerciseBody, type World } from '../../../test/factories.ts';
import { ioTest } from '../../../test/grading.ts';
import { presentTests } from './exercise.presenter.ts';

// Load shedding is tested elsewhere; a busy test machine must not turn these requests into 503s.
const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });

let shared: World | undefined;
const world = async () => (shared ??= await buildWorld(ctx.app, 'Ex'));

describe('POST /lessons/:lessonId/exercises', () => {
  it('creates an exercise with every field and the defaults', async () => {
    const w = await world();
    const res = await w.ta.req('POST', `/lessons/${w.lesson.id}/exercises`, {
      title: 'Echo',
      language: 'python',
      tests: [{ name: 'one', kind: 'io', stdout: 'x\n' }],
      maxScore: 2.5,
    });
    expect(res.statusCode).toBe(201);
    const { exercise } = res.json();
    expect(exercise).toEqual({
      id: expect.any(String),
      lessonId: w.lesson.id,
      courseId: w.course.id,
      title: 'Echo',
      prompt: '',
      language: 'python',
      entrypoint: null,
      starterCode: '',
      tests: [{ name: 'one', kind: 'io', stdin: '', stdout: 'x\n', hidden: false, points: 1 }],
      maxScore: 2.5,
      dueAt: null,
      maxAttempts: null,
      limits: { timeMs: 2000, memoryMb: 64 },
      // v1.1 defaults: published when created, no late policy, no reference solution.
      latePolicy: [],
      publishedAt: expect.any(String),
      referenceSolution: null,
      attemptsLeft: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(Math.abs(Date.parse(exercise.publishedAt) - Date.parse(exercise.createdAt))).toBeLessThan(5000);
    const full = await createExercise(w.instructor, w.lesson.id, {
      dueAt: '2026-12-01T23:59:00Z',
      maxAttempts: 3,
      limits: { timeMs: 50 },
    });
    expect(full).toMatchObject({
      entrypoint: 'add',
      dueAt: '2026-12-01T23:59:00.000Z',
      maxAttempts: 3,
      limits: { timeMs: 50, memoryMb: 64 },
    });
    expect((full.tests as unknown[]).length).toBe(2);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['no title', { title: undefined }, 'title'],
    ['no language', { language: undefined }, 'language'],
    ['bad language', { language: 'ruby' }, 'language'],
    ['no tests', { tests: [] }, 'tests'],
    [
      'too many tests',
      { tests: Array.from({ length: 101 }, (_, i) => ({ name: `t${i}`, kind: 'io', stdout: '' })) },
      'tests',
    ],
    ['zero maxScore', { maxScore: 0 }, 'maxScore'],
    ['negative maxScore', { maxScore: -1 }, 'maxScore'],
    ['string maxScore', { maxScore: '10' }, 'maxScore'],
    ['bad dueAt', { dueAt: 'tomorrow' }, 'dueAt'],
    ['dueAt without zone', { dueAt: '2026-12-01T23:59:00' }, 'dueAt'],
    ['maxAttempts 0', { maxAttempts: 0 }, 'maxAttempts'],
    ['maxAttempts 1001', { maxAttempts: 1001 }, 'maxAttempts'],
    ['timeMs 49', { limits: { timeMs: 49 } }, 'limits.timeMs'],
    ['timeMs 10001', { limits: { timeMs: 10_001 } }, 'limits.timeMs'],
    ['memoryMb 15', { limits: { memoryMb: 15 } }, 'limits.memoryMb'],
    ['memoryMb 513', { limits: { memoryMb: 513 } }, 'limits.memoryMb'],
    ['unknown limit', { limits: { cpu: 1 } }, 'limits.cpu'],
    ['unknown field', { owner: 'me' }, 'owner'],
    ['no entrypoint with a call test', { entrypoint: undefined }, 'entrypoint'],
    ['null entrypoint with a call test', { entrypoint: null }, 'entrypoint'],
    ['entrypoint not a name', { entrypoint: 'a b' }, 'entrypoint'],
    ['call test without args', { tests: [{ name: 'a', kind: 'call', expected: 1 }] }, 'tests.0.args'],
    [
      'call test with args not an array',
      { tests: [{ name: 'a', kind: 'call', args: 1, expected: 1 }] },
      'tests.0.args',
    ],
    ['call test without expected', { tests: [{ name: 'a', kind: 'call', args: [] }] }, 'tests.0.expected'],
    [
      'call test with stdout',
      { tests: [{ name: 'a', kind: 'call', args: [], expected: 1, stdout: '' }] },
      'tests.0.stdout',
    ],
    ['io test without stdout', { tests: [{ name: 'a', kind: 'io', stdin: '' }] }, 'tests.0.stdout'],
    ['io test with args', { tests: [{ name: 'a', kind: 'io', stdout: '', args: [] }] }, 'tests.0.args'],
    ['unknown test kind', { tests: [{ name: 'a', kind: 'sql', stdout: '' }] }, 'tests.0.kind'],
    ['test without name', { tests: [{ kind: 'io', stdout: '' }] }, 'tests.0.name'],
    [
      'duplicate test names',
      {
        tests: [
          { name: 'a', kind: 'io', stdout: '' },
          { name: 'a', kind: 'io', stdout: '' },
        ],
      },
      'tests.1.name',
    ],
    [
      'hidden not boolean',
      { tests: [{ name: 'a', kind: 'io', stdout: '', hidden: 'yes' }] },
      'tests.0.hidden',
    ],
  ])('400 for %s (details name %s)', async (_label, overrides, field) => {
    const w = await world();
    const body = JSON.parse(JSON.stringify(exerciseBody(overrides)));
    const res = await w.instructor.req('POST', `/lessons/${w.lesson.id}/exercises`, body);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('validation_failed');
    expect(res.json().error.details.map((d: { field: string }) => d.field)).toContain(field);
  });

  it('accepts null as an expected value and JSON values as args', async () => {
    const w = await world();
    const ex = await createExercise(w.instructor, w.lesson.id, {
      tests: [{ name: 'n', kind: 'call', args: [{ a: [1, null] }, 'x'], expected: null, hidden: true }],
    });
    expect(ex.tests).toEqual([
      {
        name: 'n',
        kind: 'call',
        args: [{ a: [1, null] }, 'x'],
        expected: null,
        hidden: true,
        points: 1,
        tolerance: 0,
      },
    ]);
  });

  it('stores and returns arguments and expected values exactly as written: key order, big integers', async () => {
    const w = await world();
    // Sent as text: JSON.parse would round 2**64 + 1 and move the key "2" first.
    const body = `{"title":"Exact","language":"python","entrypoint":"f","maxScore":1,"tests":[
      {"name":"n","kind":"call","args":[{"bb":1,"a":2,"2":3}, 18446744073709551617],
       "expected": {"z": [1.50, 1e2], "a": 123456789012345678901234567890}, "points": 2, "tolerance": 0.5}]}`;
    const res = await w.instructor.req('POST', `/lessons/${w.lesson.id}/exercises`, body, {
      'content-type': 'application/json',
    });
    expect(res.statusCode, res.body).toBe(201);
    const args = '"args":[{"bb":1,"a":2,"2":3},18446744073709551617]';
    const expected = '"expected":{"z":[1.50,1e2],"a":123456789012345678901234567890}';
    expect(res.body).toContain(args);
    expect(res.body).toContain(expected);
    const again = await w.student.req('GET', `/exercises/${res.json().exercise.id}`);
    expect(again.body).toContain(args);
    expect(again.json().exercise.tests[0]).toMatchObject({ points: 2, tolerance: 0.5 });
    // A PATCH keeps what it is sent just as exactly.
    const patched = await w.instructor.req(
      'PATCH',
      `/exercises/${res.json().exercise.id}`,
      '{"tests":[{"name":"m","kind":"call","args":[{"y":1,"x":2}],"expected":9007199254740993}]}',
      { 'content-type': 'application/json' },
    );
    expect(patched.body).toContain('"args":[{"y":1,"x":2}],"expected":9007199254740993');
  });

  it('refuses a key written twice, weights that are not positive and a tolerance on io tests', async () => {
    const w = await world();
    const url = `/lessons/${w.lesson.id}/exercises`;
    const dup = await w.instructor.req(
      'POST',
      url,
      '{"title":"D","language":"python","entrypoint":"f","maxScore":1,"tests":[{"name":"n","kind":"call","args":[{"a":1,"a":2}],"expected":1}]}',
      { 'content-type': 'application/json' },
    );
    expect(dup.statusCode).toBe(400);
    expect(dup.json().error.details).toEqual([
      { field: 'tests.0.args.0.a', message: 'is a key written twice in one object' },
    ]);
    const zero = await w.instructor.req(
      'POST',
      url,
      exerciseBody({ tests: [{ name: 'x', kind: 'io', stdout: '', points: 0 }] }),
    );
    expect(zero.statusCode).toBe(400);
    expect(zero.json().error.details[0].field).toBe('tests.0.points');
    const tol = await w.instructor.req(
      'POST',
      url,
      exerciseBody({ tests: [{ name: 'x', kind: 'io', stdout: '', tolerance: 1 }] }),
    );
    expect(tol.json().error.details).toEqual([
      { field: 'tests.0.tolerance', message: 'is only accepted for a call test' },
    ]);
  });

  it('students 403, outsiders and unknown lessons 404, anonymous 401', async () => {
    const w = await world();
    const url = `/lessons/${w.lesson.id}/exercises`;
    expect((await w.student.req('POST', url, exerciseBody())).statusCode).toBe(403);
    expect((await w.outsider.req('POST', url, exerciseBody())).statusCode).toBe(404);
    expect((await w.instructor.req('POST', '/lessons/nope/exercises', exerciseBody())).statusCode).toBe(404);
    expect((await anon(ctx.app, 'POST', url, exerciseBody())).statusCode).toBe(401);
  });
});

describe('GET /exercises/:exerciseId', () => {
  it('staff see hidden tests in full; students only their name and kind', async () => {
    const w = await world();
    const url = `/exercises/${w.exercise.id}`;
    const staff = (await w.ta.req('GET', url)).json().exercise;
    expect(staff.tests[1]).toEqual({
      name: 'echo',
      kind: 'io',
      stdin: 'hi\n',
      stdout: 'hi\n',
      hidden: true,
      points: 1,
    });
    const res = await w.student.req('GET', url);
    expect(res.statusCode).toBe(200);
    const { exercise } = res.json();
    expect(exercise.tests).toEqual([
      { name: 'small', kind: 'call', args: [1, 2], expected: 3, hidden: false, points: 1, tolerance: 0 },
      { name: 'echo', kind: 'io', hidden: true },
    ]);
    expect(res.body).not.toContain('hi\\n');
    expect(exercise).toMatchObject({
      id: w.exercise.id,
      entrypoint: 'add',
      limits: { timeMs: 2000, memoryMb: 64 },
    });
  });

  it('is 404 to outsiders and for unknown ids', async () => {
    const w = await world();
    for (const id of [w.exercise.id, '00000000-0000-0000-0000-000000000000', '%20'])
      expect((await w.outsider.req('GET', `/exercises/${id}`)).statusCode).toBe(404);
  });

  it('presentTests masks only hidden tests for students', () => {
    const tests = [ioTest('a', '', 'x', { hidden: true }), ioTest('b', '', 'y')];
    expect(presentTests(tests, true)).toEqual(tests);
    expect(presentTests(tests, false)).toEqual([{ name: 'a', kind: 'io', hidden: true }, tests[1]]);
  });
});

describe('PATCH /exercises/:exerciseId', () => {
  it('merges the change, bumps updatedAt and keeps the rest', async () => {
    const w = await world();
    const ex = await createExercise(w.instructor, w.lesson.id, {
      maxAttempts: 5,
      dueAt: '2027-01-01T00:00:00Z',
    });
    const url = `/exercises/${ex.id}`;
    const res = await w.ta.req('PATCH', url, {
      title: 'Renamed',
      limits: { memoryMb: 128 },
      maxAttempts: null,
    });
    expect(res.statusCode).toBe(200);
    const updated = res.json().exercise;
    expect(updated).toMatchObject({
      title: 'Renamed',
      limits: { timeMs: 2000, memoryMb: 128 },
      maxAttempts: null,
      dueAt: '2027-01-01T00:00:00.000Z',
      entrypoint: 'add',
      createdAt: ex.createdAt,
    });
    expect(updated.updatedAt > (ex.updatedAt as string)).toBe(true);
    const cleared = await w.ta.req('PATCH', url, {
      dueAt: null,
      prompt: 'P',
      starterCode: 'S',
      language: 'python',
      maxScore: 1,
    });
    expect(cleared.json().exercise).toMatchObject({
      dueAt: null,
      prompt: 'P',
      starterCode: 'S',
      language: 'python',
      maxScore: 1,
    });
  });

  it('checks the merged exercise: entrypoint stays required while a call test exists', async () => {
    const w = await world();
    const url = `/exercises/${w.exercise.id}`;
    const drop = await w.instructor.req('PATCH', url, { entrypoint: null });
    expect(drop.statusCode).toBe(400);
    expect(drop.json().error.details[0].field).toBe('entrypoint');
    const io = [{ name: 'io', kind: 'io', stdout: 'x' }];
    const both = await w.instructor.req('PATCH', url, { entrypoint: null, tests: io });
    expect(both.statusCode).toBe(200);
    expect(both.json().exercise).toMatchObject({ entrypoint: null, tests: [{ name: 'io', hidden: false }] });
    const back = await w.instructor.req('PATCH', url, {
      tests: [{ name: 'c', kind: 'call', args: [], expected: 0 }],
    });
    expect(back.statusCode).toBe(400);
    expect((await w.instructor.req('PATCH', url, { tests: [] })).statusCode).toBe(400);
    expect((await w.instructor.req('PATCH', url, { id: 'x' })).statusCode).toBe(400);
  });

  it('students 403, outsiders 404', async () => {
    const w = await world();
    const url = `/exercises/${w.exercise.id}`;
    expect((await w.student.req('PATCH', url, { title: 'x' })).statusCode).toBe(403);
    expect((await w.outsider.req('PATCH', url, { title: 'x' })).statusCode).toBe(404);
    expect((await w.instructor.req('PATCH', '/exercises/nope', { title: 'x' })).statusCode).toBe(404);
  });
});

describe('DELETE /exercises/:exerciseId', () => {
  it('deletes an exercise nobody submitted to; with submissions only when forced', async () => {
    const w = await world();
    const empty = await createExercise(w.instructor, w.lesson.id);
    expect((await w.ta.req('DELETE', `/exercises/${empty.id}`)).statusCode).toBe(204);
    expect((await w.ta.req('GET', `/exercises/${empty.id}`)).statusCode).toBe(404);

    const used = await createExercise(w.instructor, w.lesson.id);
    await w.student.req('POST', `/exercises/${used.id}/submissions`, { code: 'function add() {}' });
    const refused = await w.ta.req('DELETE', `/exercises/${used.id}`);
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.code).toBe('has_submissions');
    expect((await w.ta.req('GET', `/exercises/${used.id}`)).statusCode).toBe(200);
    expect((await w.ta.req('DELETE', `/exercises/${used.id}?force=yes`)).statusCode).toBe(400);
    expect((await w.ta.req('DELETE', `/exercises/${used.id}?force=true`)).statusCode).toBe(204);
    const { rows } = await ctx.database.pool.query(
      `select (select count(*) from submissions where exercise_id = $1)::int as subs,
              (select count(*) from grading_jobs j join submissions s on s.id = j.submission_id
                where s.exercise_id = $1)::int as jobs`,
      [used.id],
    );
    expect(rows[0]).toEqual({ subs: 0, jobs: 0 });
    const gradebook = (await w.ta.req('GET', `/courses/${w.course.id}/gradebook`)).json();
    expect(gradebook.exercises.map((e: { id: string }) => e.id)).not.toContain(used.id);
    expect((await w.student.req('DELETE', `/exercises/${w.exercise.id}`)).statusCode).toBe(403);
  });
});
