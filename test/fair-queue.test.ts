import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGrader } from '../src/grading/grader.ts';
import { claimJobs, PRIORITY } from '../src/grading/queue.ts';
import { createActor, withTestApp } from './app.ts';
import { buildWorld, createExercise, joinCourse, type World } from './factories.ts';

// The grading queue against a student who floods it (issue 9, finding 6), with real graders.
/** Passes the default exercise's tests (factories.ts: add(1, 2) and an echo). */
const PASSES =
  'function add(a, b) { return a + b; }\nlet l; while ((l = readLine()) !== null) console.log(l);';
const ctx = withTestApp({ GRADER_CONCURRENCY: 4, JS_WORKERS: 2 });
let a: World;
let b: World;
let graders: Array<{ stop(): Promise<void> }> = [];

const rows = async <T>(text: string, params: unknown[] = []) =>
  (await ctx.database.pool.query(text, params)).rows as T[];

async function waitGraded(ids: string[], timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [r] = await rows<{ n: number }>(
      `select count(*)::int as n from submissions where id = any($1) and status not in ('queued', 'running')`,
      [ids],
    );
    if (r!.n === ids.length) return;
    if (Date.now() > deadline) throw new Error(`${ids.length - r!.n} submissions not graded in time`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  [a, b] = await Promise.all([buildWorld(ctx.app, 'FloodA'), buildWorld(ctx.app, 'FloodB')]);
});

afterAll(async () => {
  await Promise.all(graders.map((g) => g.stop()));
});

describe('fair grading queue', () => {
  it("grades another course's submission in under a second while one student floods slow ones", async () => {
    // Each flood submission takes 2 × 600 ms of busy CPU in the sandbox.
    const slow = await createExercise(a.instructor, a.lesson.id, {
      entrypoint: 'spin',
      tests: [
        { name: 'one', kind: 'call', args: [600], expected: 600, hidden: false },
        { name: 'two', kind: 'call', args: [600], expected: 600, hidden: false },
      ],
      limits: { timeMs: 2000, memoryMb: 32 },
    });
    const spin = 'function spin(ms) { const end = Date.now() + ms; while (Date.now() < end); return ms; }';
    const flood: string[] = [];
    for (let i = 0; i < 6; i++)
      flood.push(
        (await a.student.req('POST', `/exercises/${slow.id}/submissions`, { code: spin })).json().submission
          .id,
      );
    graders = [await startGrader(ctx.config, ctx.url, { pollMs: 200 })];
    // Wait until the flooder's work is running, then submit elsewhere.
    const deadline = Date.now() + 10_000;
    while (
      (await rows(`select 1 from submissions where id = any($1) and status = 'running'`, [flood])).length ===
      0
    ) {
      if (Date.now() > deadline) throw new Error('the flood never started');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const other = (
      await b.student.req('POST', `/exercises/${b.exercise.id}/submissions`, {
        code: 'function add(a, b) { return a + b; }',
      })
    ).json().submission.id as string;
    // The flooder never has two jobs running at once.
    let mostRunning = 0;
    const watching = (async () => {
      for (;;) {
        const [r] = await rows<{ n: number; left: number }>(
          `select count(*) filter (where status = 'running')::int as n,
                  count(*) filter (where status in ('queued', 'running'))::int as left
             from submissions where id = any($1)`,
          [flood],
        );
        mostRunning = Math.max(mostRunning, r!.n);
        if (r!.left === 0) return;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    await waitGraded([other], 10_000);
    const [latency] = await rows<{ ms: number }>(
      `select (extract(epoch from graded_at - created_at) * 1000)::float8 as ms from submissions where id = $1`,
      [other],
    );
    console.log(
      `other course's submission graded in ${Math.round(latency!.ms)} ms during a flood of 6 × 1.2 s`,
    );
    expect(latency!.ms).toBeLessThan(1000);
    await waitGraded(flood);
    await watching;
    expect(mostRunning).toBe(1);
    const statuses = await rows<{ status: string }>(`select status from submissions where id = any($1)`, [
      flood,
    ]);
    expect(statuses.every((s) => s.status === 'passed')).toBe(true);
  });

  it('claims new submissions before regrades, and at most one job per user in a batch', async () => {
    await Promise.all(graders.map((g) => g.stop()));
    graders = [];
    await rows('delete from grading_jobs');
    const ex = await createExercise(a.instructor, a.lesson.id);
    const students = await Promise.all([1, 2, 3].map((i) => createActor(ctx.app, `Regraded ${i}`)));
    for (const s of students) {
      await joinCourse(s, a.course.joinCode);
      await s.req('POST', `/exercises/${ex.id}/submissions`, { code: 'a' });
      await s.req('POST', `/exercises/${ex.id}/submissions`, { code: 'b' });
    }
    // All graded by hand (jobs gone), then regraded: 6 jobs at regrade priority.
    await rows(
      `update submissions set status = 'passed', score = 10, graded_at = now() where exercise_id = $1`,
      [ex.id],
    );
    await rows(
      `delete from grading_jobs where submission_id in (select id from submissions where exercise_id = $1)`,
      [ex.id],
    );
    expect((await a.instructor.req('POST', `/exercises/${ex.id}/regrade`)).json()).toEqual({ queued: 6 });
    const fresh = (
      await b.student.req('POST', `/exercises/${b.exercise.id}/submissions`, { code: 'new' })
    ).json().submission.id as string;
    const [first] = await claimJobs(ctx.database.db, { limit: 1, lockerPid: null, leaseMs: 30_000 });
    expect(first!.targetId).toBe(fresh);
    const batch = await claimJobs(ctx.database.db, { limit: 10, lockerPid: null, leaseMs: 30_000 });
    // Three students, two regrade jobs each: one job per student now, the others wait for theirs.
    expect(batch).toHaveLength(3);
    expect(new Set(batch.map((j) => j.userId)).size).toBe(3);
    const [priorities] = await rows<{ p: number[] }>(
      `select array_agg(distinct priority) as p from grading_jobs where submission_id in (select id from submissions where exercise_id = $1)`,
      [ex.id],
    );
    expect(priorities!.p).toEqual([PRIORITY.regrade]);
    // While they run, their second jobs are not claimable.
    expect(await claimJobs(ctx.database.db, { limit: 10, lockerPid: null, leaseMs: 30_000 })).toEqual([]);
  });

  it('takes the job row before the submission row in a regrade, as claims and records do: no deadlock', async () => {
    const ex = await createExercise(a.instructor, a.lesson.id);
    const id = (await a.student.req('POST', `/exercises/${ex.id}/submissions`, { code: PASSES })).json()
      .submission.id as string;
    // A claim in progress (the same order as claimJobs): it holds the job row and will next update
    // the submission row.
    const claim = await ctx.database.pool.connect();
    try {
      await claim.query('begin');
      await claim.query('select 1 from grading_jobs where submission_id = $1 for update', [id]);
      const regrade = a.ta.req('POST', `/exercises/${ex.id}/regrade`);
      // The regrade waits for the job row (before taking any submission row).
      const deadline = Date.now() + 5000;
      while (
        (
          await rows(
            `select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'
               and pid <> $1`,
            [(claim as unknown as { processID: number }).processID],
          )
        ).length === 0
      ) {
        if (Date.now() > deadline) throw new Error('the regrade never waited for the job row');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // With the opposite order the regrade would hold the submission row now: this would deadlock.
      await claim.query(`update submissions set status = 'running' where id = $1`, [id]);
      await claim.query('commit');
      expect((await regrade).statusCode).toBe(202);
    } finally {
      claim.release();
    }
  });

  it('never deadlocks a regrade burst against graders claiming and recording (one lock order)', async () => {
    await rows('delete from grading_jobs');
    const ex = await createExercise(a.instructor, a.lesson.id);
    const students = await Promise.all(
      Array.from({ length: 6 }, (_, i) => createActor(ctx.app, `Race ${i}`)),
    );
    const ids: string[] = [];
    for (const s of students) {
      await joinCourse(s, a.course.joinCode);
      ids.push(
        (await s.req('POST', `/exercises/${ex.id}/submissions`, { code: PASSES })).json().submission.id,
      );
    }
    const [before] = await rows<{ deadlocks: string }>(
      'select deadlocks from pg_stat_database where datname = current_database()',
    );
    graders = [
      await startGrader(ctx.config, ctx.url, { pollMs: 50 }),
      await startGrader(ctx.config, ctx.url, { pollMs: 50 }),
    ];
    const statuses: number[] = [];
    for (let round = 0; round < 15; round++) {
      const burst = await Promise.all(
        Array.from({ length: 3 }, () => a.ta.req('POST', `/exercises/${ex.id}/regrade`)),
      );
      statuses.push(...burst.map((r) => r.statusCode));
    }
    await waitGraded(ids, 60_000);
    const [after] = await rows<{ deadlocks: string }>(
      'select deadlocks from pg_stat_database where datname = current_database()',
    );
    // Regrade is a heavy route: past HEAVY_CONCURRENCY at once it is shed (503), never a 500.
    expect(statuses.every((s) => s === 202 || s === 503)).toBe(true);
    expect(statuses.filter((s) => s === 202).length).toBeGreaterThan(10);
    expect(Number(after!.deadlocks) - Number(before!.deadlocks)).toBe(0);
    const final = await rows<{ status: string }>('select status from submissions where id = any($1)', [ids]);
    expect(final.every((s) => s.status === 'passed')).toBe(true);
    expect(await rows('select 1 from grading_jobs where submission_id = any($1)', [ids])).toEqual([]);
  });
});
