import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anon, createActor, whileBusy, withTestApp } from '../../../test/app.ts';
import { selectAfterCommitWhileWaiting } from '../../../test/commit-while-waiting.ts';
import { buildWorld, createExercise, type World } from '../../../test/factories.ts';
import { closeTestSandboxes, testSandboxes } from '../../../test/grading.ts';
import { startGrader } from '../../grading/grader.ts';

const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });
let w: World;
let grader: { stop(): Promise<void> };

const ADD = 'function add(a, b) { return a + b; }';
const run = (actor: World['student'], exerciseId: string, body: Record<string, unknown>) =>
  actor.req('POST', `/exercises/${exerciseId}/runs`, body);

async function count(sql: string, params: unknown[]) {
  const { rows } = await ctx.database.pool.query<{ n: number }>(sql, params);
  return rows[0]!.n;
}

/** A new member of the course with `n` runs in the last minute, inserted directly: the limit counts rows, however they came. */
async function memberWithRecentRuns(name: string, n: number) {
  const actor = await createActor(ctx.app, name);
  await actor.req('POST', '/courses/join', { joinCode: w.course.joinCode });
  await ctx.database.pool.query(
    `insert into runs (course_id, exercise_id, user_id, code, status)
     select $1, $2, $3, 'x', 'passed' from generate_series(1, $4::int)`,
    [w.course.id, w.exercise.id, actor.id, n],
  );
  return actor;
}

beforeAll(async () => {
  // Polling once a minute: a run answered within its limits means starting it woke the grader.
  grader = await startGrader(ctx.config, ctx.url, { sandboxes: testSandboxes(), pollMs: 60_000 });
  w = await buildWorld(ctx.app, 'Runs');
});
afterAll(async () => {
  await grader.stop();
  await closeTestSandboxes();
});

describe('POST /exercises/:id/runs', () => {
  it("runs a student's code on the visible tests only, uses no attempt and stays out of the gradebook", async () => {
    const res = await run(w.student, w.exercise.id, { code: ADD });
    expect(res.statusCode, res.body).toBe(200);
    const r = res.json().run;
    expect(r).toEqual({
      id: expect.any(String),
      exerciseId: w.exercise.id,
      status: 'passed',
      message: null,
      results: [
        {
          name: 'small',
          passed: true,
          hidden: false,
          message: null,
          output: '',
          points: 1,
          durationMs: expect.any(Number),
        },
      ],
      output: null,
      createdAt: expect.any(String),
    });
    // The hidden test was not run, so not even its name is revealed.
    expect(res.body).not.toContain('echo');
    expect(await count('select count(*)::int as n from submissions where user_id = $1', [w.student.id])).toBe(
      0,
    );
    const progress = (await w.student.req('GET', `/courses/${w.course.id}/progress`)).json();
    expect(progress.exercises[0]).toMatchObject({ attempts: 0, bestScore: null });
  });

  it('shows what the code printed and why a visible test failed', async () => {
    const res = await run(w.student, w.exercise.id, {
      code: 'function add(a, b) { console.log("adding", a, b); return a - b; }',
    });
    const r = res.json().run;
    expect(r.status).toBe('failed');
    expect(r.results[0]).toMatchObject({ name: 'small', passed: false, output: 'adding 1 2\n' });
    expect(r.results[0].message).toMatch(/expected 3/i);
  });

  it('reports code that cannot run as error with the reason', async () => {
    const r = (await run(w.student, w.exercise.id, { code: 'function add(a, b) { return a +; }' })).json()
      .run;
    expect(r.status).toBe('error');
    expect(r.message).toMatch(/SyntaxError/);
  });

  it('runs every test for staff, hidden ones with their full message', async () => {
    const r = (await run(w.ta, w.exercise.id, { code: ADD })).json().run;
    expect(r.results.map((t: { name: string; hidden: boolean }) => [t.name, t.hidden])).toEqual([
      ['small', false],
      ['echo', true],
    ]);
    expect(r.status).toBe('failed');
    expect(r.results[1].message).toEqual(expect.any(String));
  });

  it("lets staff run the exercise's reference solution", async () => {
    // Echoes its input (the io test) and adds (the call test).
    const reference = 'import sys\ndef add(a, b):\n    return a + b\nsys.stdout.write(sys.stdin.read())\n';
    const ex = await createExercise(w.instructor, w.lesson.id, {
      language: 'python',
      entrypoint: 'add',
      starterCode: 'def add(a, b):\n    pass\n',
      referenceSolution: reference,
    });
    expect(ex.referenceSolution).toContain('def add');
    const r = (await run(w.instructor, ex.id, { code: String(ex.referenceSolution) })).json().run;
    expect(r.status, JSON.stringify(r)).toBe('passed');
    expect(r.results).toHaveLength(2);
    // Students never see it.
    const seen = (await w.student.req('GET', `/exercises/${ex.id}`)).json().exercise;
    expect(seen.referenceSolution).toBeUndefined();
  });

  it('with stdin runs the program once on it and returns what it printed', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id, {
      language: 'python',
      entrypoint: 'add',
      starterCode: '',
    });
    const res = await run(w.student, ex.id, {
      code: 'import sys\nname = sys.stdin.readline().strip()\nprint(f"hello {name}")\n',
      stdin: 'Ada\n',
    });
    expect(res.statusCode, res.body).toBe(200);
    const r = res.json().run;
    expect(r).toMatchObject({ status: 'passed', output: 'hello Ada\n', results: [] });
    const crash = (await run(w.student, ex.id, { code: 'raise ValueError("boom")', stdin: '' })).json().run;
    // It ran and failed (an error is code that could not run at all, e.g. a syntax error).
    expect(crash.status).toBe('failed');
    expect(crash.message).toMatch(/ValueError: boom/);
    const syntax = (await run(w.student, ex.id, { code: 'print(', stdin: '' })).json().run;
    expect(syntax.status).toBe('error');
  });

  it('validates code and stdin sizes with the API error shape', async () => {
    const big = await run(w.student, w.exercise.id, { code: ADD, stdin: 'x'.repeat(64_001) });
    expect(big.statusCode).toBe(400);
    expect(big.json().error).toMatchObject({ code: 'validation_failed' });
    const wide = await run(w.student, w.exercise.id, { code: ADD, stdin: 'é'.repeat(40_000) });
    expect(wide.statusCode).toBe(400);
    expect(wide.json().error.details).toEqual([expect.objectContaining({ field: 'stdin' })]);
    expect((await run(w.student, w.exercise.id, {})).statusCode).toBe(400);
    expect((await run(w.student, w.exercise.id, { code: ADD, extra: 1 })).statusCode).toBe(400);
  });

  it('answers 404 to outsiders, for drafts to students, and 401 without a caller', async () => {
    expect((await run(w.outsider, w.exercise.id, { code: ADD })).statusCode).toBe(404);
    const draft = await createExercise(w.instructor, w.lesson.id, { publishedAt: null });
    expect((await run(w.student, draft.id, { code: ADD })).statusCode).toBe(404);
    expect((await run(w.ta, draft.id, { code: ADD })).statusCode).toBe(200);
    expect((await anon(ctx.app, 'POST', `/exercises/${w.exercise.id}/runs`, { code: ADD })).statusCode).toBe(
      401,
    );
  });

  it('refuses the 21st run in a minute with 429 and Retry-After', async () => {
    const eager = await memberWithRecentRuns('Eager', 20);
    const res = await run(eager, w.exercise.id, { code: ADD });
    expect(res.statusCode).toBe(429);
    expect(res.json().error.code).toBe('rate_limited');
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
    // Older runs do not count.
    await ctx.database.pool.query(
      `update runs set created_at = now() - interval '61 seconds' where user_id = $1`,
      [eager.id],
    );
    expect((await run(eager, w.exercise.id, { code: ADD })).statusCode).toBe(200);
  });

  it('holds the limit against a burst: of 6 concurrent runs after 18, exactly 2 are accepted', async () => {
    const burst = await memberWithRecentRuns('Burst', 18);
    const codes = await Promise.all(
      Array.from(
        { length: 6 },
        async () => (await whileBusy(() => run(burst, w.exercise.id, { code: ADD }))).statusCode,
      ),
    );
    expect(codes.filter((c) => c === 429)).toHaveLength(4);
    expect(codes.filter((c) => c === 200 || c === 202)).toHaveLength(2);
  });

  it('counts a run that started while this one waited: the gate reads after its lock, not at the statement start', async () => {
    const eager = await memberWithRecentRuns('Waiter', 19);
    const row = await selectAfterCommitWhileWaiting(
      ctx.database.pool,
      {
        sql: `insert into runs (course_id, exercise_id, user_id, code, status) values ($1, $2, $3, 'x', 'passed')`,
        params: [w.course.id, w.exercise.id, eager.id],
      },
      {
        sql: `select g.locked, g.recent, (select count(*)::int from runs where user_id = $1) as seen
           from (select pg_advisory_xact_lock(4242)::text as t) w,
                lateral lab_run_gate($1, 60 + length(w.t)) g`,
        params: [eager.id],
      },
    );
    expect(row).toEqual({ locked: true, recent: 20, seen: 19 });
    // The 20 are the limit: the API refuses the next.
    expect((await run(eager, w.exercise.id, { code: ADD })).statusCode).toBe(429);
  });

  it('refuses a run at once while another of the same user is being started, holding no connection', async () => {
    const busy = await createActor(ctx.app, 'Busy');
    await busy.req('POST', '/courses/join', { joinCode: w.course.joinCode });
    const held = await ctx.database.pool.connect();
    try {
      await held.query('begin');
      await held.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [`lab:runs:${busy.id}`]);
      const refused = await run(busy, w.exercise.id, { code: ADD });
      expect(refused.statusCode).toBe(429);
      expect(refused.json().error.code).toBe('rate_limited');
      expect(refused.headers['retry-after']).toBe('1');
      await held.query('commit');
    } finally {
      held.release();
    }
    expect((await run(busy, w.exercise.id, { code: ADD })).statusCode).toBe(200);
  });

  it('is 409 course_archived in an archived course', async () => {
    const a = await buildWorld(ctx.app, 'RunsArchived');
    await a.instructor.req('PATCH', `/courses/${a.course.id}`, { archived: true });
    const res = await run(a.student, a.exercise.id, { code: ADD });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('course_archived');
  });
});

describe('GET /runs/:id', () => {
  it('shows a run to its author only', async () => {
    const r = (await run(w.student, w.exercise.id, { code: ADD })).json().run;
    const mine = await w.student.req('GET', `/runs/${r.id}`);
    expect(mine.statusCode).toBe(200);
    expect(mine.json().run).toEqual(r);
    for (const other of [w.ta, w.instructor, w.outsider])
      expect((await other.req('GET', `/runs/${r.id}`)).statusCode).toBe(404);
    expect((await w.student.req('GET', '/runs/not-a-uuid')).statusCode).toBe(404);
    expect((await anon(ctx.app, 'GET', `/runs/${r.id}`)).statusCode).toBe(401);
  });
});
