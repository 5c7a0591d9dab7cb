import { drizzle } from 'drizzle-orm/node-postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { withTestApp } from '../../test/app.ts';
import { testPool } from '../../test/db.ts';
import { buildWorld, createExercise, type World } from '../../test/factories.ts';
import type { Db } from '../db/client.ts';
import * as schema from '../db/schema/index.ts';
import { GAVE_UP_MESSAGE, runJob, startGrader } from './grader.ts';
import { type ClaimedJob, claimJobs, queueStats, recordOutcome, releaseOrphanedJobs } from './queue.ts';
import type { IsolationLayer, Sandbox, SandboxJob, SandboxRun } from './sandbox.types.ts';
import type { Sandboxes } from './sandboxes.ts';

const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });
let w: World;
const ECHO = 'function add(a, b) { return a + b; }\nlet l; while ((l = readLine()) !== null) console.log(l);';
let grader: { stop(): Promise<void> } | null = null;

type Sub = {
  id: string;
  status: string;
  score: number | null;
  message: string | null;
  results: { hidden: boolean; message: string | null; passed: boolean }[];
  gradedAt: string | null;
  createdAt: string;
};

async function waitGraded(actor: World['student'], id: string, timeoutMs = 20_000): Promise<Sub> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = (await actor.req('GET', `/submissions/${id}`)).json().submission as Sub;
    if (s.status !== 'queued' && s.status !== 'running') return s;
    if (Date.now() > deadline) {
      const jobs = (await ctx.database.pool.query('select * from grading_jobs')).rows;
      throw new Error(`not graded: ${JSON.stringify(s)}; jobs: ${JSON.stringify(jobs)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

const PASSED = { status: 'passed' as const, score: 10, message: null, results: [], infrastructure: false };
/** A submission's job, claimed as a grader claims (the claim may take other runnable jobs with it). */
const claimOf = async (db: Db, submissionId: string) =>
  (await claimJobs(db, { limit: 10, lockerPid: null, leaseMs: 30_000 })).find(
    (j) => j.targetId === submissionId,
  );
const submit = async (actor: World['student'], exerciseId: string, code: string) => {
  const res = await actor.req('POST', `/exercises/${exerciseId}/submissions`, { code });
  expect(res.statusCode).toBe(202);
  return res.json().submission.id as string;
};

const sql = async <T>(text: string, params: unknown[] = []) =>
  (await ctx.database.pool.query(text, params)).rows as T[];

beforeAll(async () => {
  w = await buildWorld(ctx.app, 'Grade');
});

afterAll(async () => {
  await grader?.stop();
});

describe('grader', () => {
  it('grades JavaScript submissions end to end and records one event per result', async () => {
    grader = await startGrader(ctx.config, ctx.url);
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = Date.now();
      const id = await submit(w.student, w.exercise.id, ECHO);
      const s = await waitGraded(w.student, id);
      latencies.push(Date.now() - t);
      expect(s).toMatchObject({ status: 'passed', score: 10, message: null });
      expect(s.results.map((r) => r.passed)).toEqual([true, true]);
      expect(new Date(s.gradedAt!).getTime()).toBeGreaterThanOrEqual(new Date(s.createdAt).getTime());
    }
    const db = await sql<{ ms: number }>(
      `select extract(epoch from graded_at - created_at) * 1000 as ms from submissions
        where exercise_id = $1 and status = 'passed' order by created_at`,
      [w.exercise.id],
    );
    console.log(
      `submit→result in the database (created_at→graded_at): ${db.map((r) => Math.round(r.ms)).join(', ')} ms`,
    );
    latencies.sort((a, b) => a - b);
    console.log(
      `submit→result (HTTP poll every 20 ms), JS, 2 tests: median ${latencies[2]} ms, max ${latencies[4]} ms`,
    );

    const wrong = await waitGraded(
      w.student,
      await submit(w.student, w.exercise.id, 'function add(a, b) { return a - b; }'),
    );
    expect(wrong.status).toBe('failed');
    expect(wrong.score).toBe(0);
    expect(wrong.results[1]).toMatchObject({ hidden: true, message: null });
    // Output with U+0000 (which Postgres text cannot hold) still ends in a stored verdict.
    const nul = await waitGraded(
      w.student,
      await submit(w.student, w.exercise.id, 'function add(a, b) { return a + b; }\nconsole.log("\\u0000");'),
    );
    expect(nul.status).toBe('failed');
    const broken = await waitGraded(
      w.student,
      await submit(w.student, w.exercise.id, 'function add(a, b) {'),
    );
    expect(broken.status).toBe('error');
    expect(broken.score).toBe(0);
    expect(broken.message).toBeTruthy();
    const [attempt] = await sql<{ counts: boolean }>(
      'select counts_as_attempt as counts from submissions where id = $1',
      [(await w.student.req('GET', `/exercises/${w.exercise.id}/submissions?limit=1`)).json().items[0].id],
    );
    expect(attempt!.counts).toBe(true);

    const [ev] = await sql<{ n: number }>(
      `select count(*)::int as n from events where type = 'submission.updated' and user_id = $1`,
      [w.student.id],
    );
    expect(ev!.n).toBe(8);
    expect((await queueStats(ctx.database.db)).depth).toBe(0);
    const metrics = await ctx.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toContain('lab_grading_queue_depth 0');
  });

  it('regrades with the current tests and updates scores', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id, {
      tests: [{ name: 'one', kind: 'call', args: [1, 2], expected: 3, hidden: false }],
    });
    const id = await submit(w.student, ex.id, 'function add(a, b) { return a + b; }');
    expect((await waitGraded(w.student, id)).score).toBe(10);
    const patch = await w.instructor.req('PATCH', `/exercises/${ex.id}`, {
      tests: [
        { name: 'one', kind: 'call', args: [1, 2], expected: 3, hidden: false },
        { name: 'two', kind: 'call', args: [2, 2], expected: 5, hidden: false },
      ],
    });
    expect(patch.statusCode).toBe(200);
    const res = await w.instructor.req('POST', `/exercises/${ex.id}/regrade`);
    expect(res.json()).toEqual({ queued: 1 });
    const again = await waitGraded(w.student, id);
    expect(again).toMatchObject({ status: 'failed', score: 5 });
    expect(again.results).toHaveLength(2);
  });

  it('ignores a stale result (another grader or a regrade took the job over)', async () => {
    await grader!.stop();
    grader = null;
    const id = await submit(w.student, w.exercise.id, 'function add(a, b) { return a + b; }');
    const job = await claimOf(ctx.database.db, id);
    expect(job!.generation).toBe(1);
    const outcome = PASSED;
    expect(await recordOutcome(ctx.database.db, { ...job!, generation: 0 }, outcome)).toBeNull();
    expect(await recordOutcome(ctx.database.db, job!, outcome)).not.toBeNull();
    // A late duplicate of the very same claim changes nothing either.
    expect(await recordOutcome(ctx.database.db, job!, { ...outcome, score: 1 })).toBeNull();
    const [ev] = await sql<{ n: number }>(
      `select count(*)::int as n from events where payload->'submission'->>'id' = $1`,
      [id],
    );
    expect(ev!.n).toBe(1);
  });

  it('commits a claim without waiting for its WAL flush, and only the claim', async () => {
    expect(grader).toBeNull();
    // One connection: the setting and the WAL flushes seen below are those of the claim and the verdict.
    const pool = testPool(ctx.url, 'lab:claim-test');
    try {
      const db = drizzle(pool, { schema });
      const version = Number((await pool.query('show server_version_num')).rows[0].server_version_num);
      // This backend's WAL fsyncs (per-backend I/O statistics: Postgres 18), its pending counts flushed first.
      const walSyncs = async () => {
        if (version < 180000) return null;
        await pool.query('select pg_stat_force_next_flush()');
        const { rows } = await pool.query(
          `select fsyncs from pg_stat_get_backend_io(pg_backend_pid()) where object = 'wal' and context = 'normal'`,
        );
        return Number(rows[0].fsyncs);
      };
      const id = await submit(w.student, w.exercise.id, 'function add(a, b) { return a + b; }');
      const before = await walSyncs();
      const job = await claimOf(db, id);
      expect(job).toBeDefined();
      const afterClaim = await walSyncs();
      // The setting lasted the claim's transaction: the next one on the connection commits durably.
      expect((await pool.query('show synchronous_commit')).rows[0].synchronous_commit).toBe('on');
      expect(await recordOutcome(db, job!, PASSED)).not.toBeNull();
      const afterVerdict = await walSyncs();
      if (version >= 180000) {
        expect(afterClaim).toBe(before);
        expect(afterVerdict).toBeGreaterThan(afterClaim!);
      }
    } finally {
      await pool.end();
    }
  });

  it('keeps the previous verdict in the gradebook and progress until the regrade lands', async () => {
    expect(grader).toBeNull();
    const ex = await createExercise(w.instructor, w.lesson.id, {
      tests: [{ name: 'one', kind: 'call', args: [1, 2], expected: 3, hidden: false }],
    });
    const id = await submit(w.student, ex.id, 'function add(a, b) { return a + b; }');
    const best = async () => {
      const book = (await w.instructor.req('GET', `/courses/${w.course.id}/gradebook`)).json();
      const row = book.rows.find((r: { user: { id: string } }) => r.user.id === w.student.id);
      const progress = (await w.student.req('GET', `/courses/${w.course.id}/progress`)).json();
      const mine = progress.exercises.find((e: { id: string }) => e.id === ex.id);
      return { gradebook: row.scores[ex.id], progress: mine.bestScore };
    };
    // Never graded: counts nowhere.
    expect(await best()).toEqual({ gradebook: null, progress: null });
    grader = await startGrader(ctx.config, ctx.url);
    const first = await waitGraded(w.student, id);
    expect(first.score).toBe(10);
    await grader.stop();
    grader = null;

    await w.instructor.req('PATCH', `/exercises/${ex.id}`, {
      tests: [
        { name: 'one', kind: 'call', args: [1, 2], expected: 3, hidden: false },
        { name: 'two', kind: 'call', args: [2, 2], expected: 5, hidden: true },
      ],
    });
    expect((await w.instructor.req('POST', `/exercises/${ex.id}/regrade`)).json()).toEqual({ queued: 1 });
    const pending = (await w.student.req('GET', `/submissions/${id}`)).json().submission as Sub;
    expect(pending).toMatchObject({ status: 'queued', score: 10, gradedAt: first.gradedAt });
    expect(pending.results).toHaveLength(1);
    expect(await best()).toEqual({ gradebook: 10, progress: 10 });
    // Claimed by a grader (running), still the previous verdict.
    const [job] = (await claimJobs(ctx.database.db, { limit: 10, lockerPid: null, leaseMs: 1 })).filter(
      (j) => j.targetId === id,
    );
    expect(job).toBeDefined();
    expect(await best()).toEqual({ gradebook: 10, progress: 10 });
    await sql(`update grading_jobs set locked_until = null, locker_pid = null where submission_id = $1`, [
      id,
    ]);

    grader = await startGrader(ctx.config, ctx.url);
    const again = await waitGraded(w.student, id);
    expect(again).toMatchObject({ status: 'failed', score: 5 });
    expect(again.results).toHaveLength(2);
    expect(again.results[1]).toMatchObject({ hidden: true, message: null });
    expect(await best()).toEqual({ gradebook: 5, progress: 5 });
    // The claim made above is void: its late result changes nothing.
    const stale = { status: 'passed' as const, score: 10, message: null, results: [], infrastructure: false };
    expect(await recordOutcome(ctx.database.db, job!, stale)).toBeNull();
    expect(await best()).toEqual({ gradebook: 5, progress: 5 });
    const [ev] = await sql<{ n: number }>(
      `select count(*)::int as n from events where payload->'submission'->>'id' = $1`,
      [id],
    );
    expect(ev!.n).toBe(2);
    await grader.stop();
    grader = null;
  });

  it('requeues jobs of a vanished grader and gives up after the retry limit without using an attempt', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id, { maxAttempts: 1 });
    const orphan = await submit(w.student, ex.id, ECHO);
    // Claimed by a grader whose Postgres backend no longer exists, lease still running.
    await sql(
      `update grading_jobs set locker_pid = 2147483000, locked_until = now() + interval '1 hour', attempts = 1
        where submission_id = $1`,
      [orphan],
    );
    expect(await releaseOrphanedJobs(ctx.database.db)).toBeGreaterThanOrEqual(1);
    grader = await startGrader(ctx.config, ctx.url, { maxTries: 3, watchdogMs: 100 });
    expect((await waitGraded(w.student, orphan)).status).toBe('passed');

    await grader.stop();
    const other = await createExercise(w.instructor, w.lesson.id, { maxAttempts: 1 });
    const doomed = await submit(w.student, other.id, 'function add(a, b) { return a + b; }');
    await sql(
      `update grading_jobs set locker_pid = 2147483000, locked_until = now() + interval '1 hour', attempts = 3
        where submission_id = $1`,
      [doomed],
    );
    grader = await startGrader(ctx.config, ctx.url, { maxTries: 3, watchdogMs: 100 });
    const gaveUp = await waitGraded(w.student, doomed);
    expect(gaveUp).toMatchObject({ status: 'error', score: 0, message: GAVE_UP_MESSAGE });
    const [row] = await sql<{ counts: boolean }>(
      'select counts_as_attempt as counts from submissions where id = $1',
      [doomed],
    );
    expect(row!.counts).toBe(false);
    // maxAttempts is 1, but the infrastructure error gave the attempt back.
    expect(await submit(w.student, other.id, 'function add(a, b) { return a + b; }')).toBeTruthy();
  });

  it('frees a job whose locker pid now belongs to another server (after a failover)', async () => {
    await grader?.stop();
    grader = null;
    const ex = await createExercise(w.instructor, w.lesson.id);
    const id = await submit(w.student, ex.id, ECHO);
    // The student's other jobs, if any are still claimed, stand aside: one claimed job per user.
    await sql('update grading_jobs set locked_until = null, locker_pid = null where submission_id <> $1', [
      id,
    ]);
    // A live backend's pid, as on a new primary where an unrelated backend got the old locker's pid.
    const [live] = await sql<{ pid: number }>('select pg_backend_pid() as pid');
    await sql(
      `update grading_jobs set locker_pid = $2, locker_started_at = '2000-01-01', locked_until = now() + interval '1 hour'
        where submission_id = $1`,
      [id, live!.pid],
    );
    expect(await releaseOrphanedJobs(ctx.database.db)).toBeGreaterThanOrEqual(1);
    const [job] = await sql<{ locked: boolean }>(
      'select locked_until is not null as locked from grading_jobs where submission_id = $1',
      [id],
    );
    expect(job).toEqual({ locked: false });
    grader = await startGrader(ctx.config, ctx.url);
    expect((await waitGraded(w.student, id)).status).toBe('passed');
  });

  it('rides out dropped database connections', async () => {
    await sql(
      `select pg_terminate_backend(pid) from pg_stat_activity
        where datname = current_database() and application_name = $1`,
      [`lab:grader-${process.pid}`],
    );
    const id = await submit(
      w.student,
      w.exercise.id,
      'function add(a, b) { return a + b; }\nconsole.log(stdin.trim());',
    );
    expect((await waitGraded(w.student, id)).status).toBe('passed');
  });

  it('hands unfinished jobs back on stop, and another grader finishes them', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id, {
      entrypoint: 'slow',
      tests: [{ name: 'slow', kind: 'call', args: [1500], expected: 1500, hidden: false }],
      limits: { timeMs: 5000, memoryMb: 64 },
    });
    await grader!.stop();
    const id = await submit(
      w.student,
      ex.id,
      'function slow(ms) { const e = Date.now() + ms; while (Date.now() < e) {} return ms; }',
    );
    const g = await startGrader(ctx.config, ctx.url, { stopGraceMs: 50 });
    // Claimed by this grader and running (the job takes 1.5 s) before it is asked to stop.
    await vi.waitFor(
      async () => {
        const [claimed] = await sql<{ status: string; attempts: number; locked: boolean }>(
          `select s.status, j.attempts, j.locked_until is not null as locked
             from submissions s join grading_jobs j on j.submission_id = s.id where s.id = $1`,
          [id],
        );
        expect(claimed).toEqual({ status: 'running', attempts: 1, locked: true });
      },
      { timeout: 10_000, interval: 20 },
    );
    await g.stop();
    const [job] = await sql<{ attempts: number; locked: boolean }>(
      'select attempts, locked_until is not null as locked from grading_jobs where submission_id = $1',
      [id],
    );
    expect(job).toEqual({ attempts: 0, locked: false });
    grader = await startGrader(ctx.config, ctx.url);
    expect((await waitGraded(w.student, id)).status).toBe('passed');
  });
});

describe('grader housekeeping', () => {
  it('prunes expired sessions periodically', async () => {
    await grader?.stop();
    await sql(
      `insert into sessions (token_hash, user_id, expires_at) values ('stale', $1, now() - interval '1 minute')`,
      [w.student.id],
    );
    grader = await startGrader(ctx.config, ctx.url, { housekeepingMs: 50 });
    const deadline = Date.now() + 5000;
    let left = 1;
    while (left > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      left = (
        await sql<{ n: number }>(`select count(*)::int as n from sessions where token_hash = 'stale'`)
      )[0]!.n;
    }
    expect(left).toBe(0);
    // Live sessions are kept.
    expect(
      (await sql<{ n: number }>(`select count(*)::int as n from sessions where expires_at > now()`))[0]!.n,
    ).toBeGreaterThan(0);
  });
});

/**
 * A sandbox whose runs are scripted: each run of `code` takes the next answer (the last one repeats);
 * `calls` holds when each of them started.
 */
function scripted(answers: Array<SandboxRun | 'refuse'>, code = ADD): Sandbox & { calls: number[] } {
  const calls: number[] = [];
  const refuses = answers.includes('refuse');
  return {
    language: 'javascript',
    calls,
    warm: async () => {},
    unavailable: async () => (refuses ? 'No sandbox on this host.' : null),
    isolation: async (): Promise<IsolationLayer[]> => [],
    run: async (job: SandboxJob) => {
      // Another job of the same student (left by an earlier test) is not this test's business.
      if (job.code !== code) return BROKEN;
      calls.push(performance.now());
      return answers[Math.min(calls.length, answers.length) - 1] as SandboxRun;
    },
    close: async () => {},
  };
}

const stubSandboxes = (javascript: Sandbox): Sandboxes => ({
  javascript,
  python: javascript,
  warm: async () => {},
  close: async () => {},
});

const ADD = 'function add(a, b) { return a + b; }';
const BROKEN: SandboxRun = { kind: 'error', message: 'the worker would not start', infrastructure: true };
const RAN: SandboxRun = { kind: 'ran', outcomes: [{ kind: 'value', json: '3', durationMs: 1 }] };

describe('runJob', () => {
  const job = (attempts: number) =>
    ({
      jobId: 1,
      kind: 'submission',
      targetId: 'x',
      userId: 'u',
      stdin: null,
      allTests: true,
      attempts,
      generation: 1,
      createdAt: new Date(),
      code: 'function add(a, b) { return a + b; }',
      language: 'javascript',
      entrypoint: 'add',
      tests: [
        {
          name: 't',
          kind: 'call',
          argsJson: '[1,2]',
          expectedJson: '3',
          hidden: false,
          points: 1,
          tolerance: 0,
        },
      ],
      limits: { timeMs: 1000, memoryMb: 32 },
      maxScore: 10,
    }) satisfies ClaimedJob;
  const opts = { totalMs: 10_000, maxTries: 3 };

  it('retries a failure of the platform with a doubling delay, then gives up without using an attempt', async () => {
    const broken = stubSandboxes(scripted([BROKEN]));
    expect(await runJob(broken, job(1), opts)).toEqual({
      kind: 'retry',
      delayMs: 1000,
      reason: 'the worker would not start',
    });
    expect(await runJob(broken, job(2), opts)).toMatchObject({ kind: 'retry', delayMs: 2000 });
    expect(await runJob(broken, job(3), opts)).toEqual({
      kind: 'verdict',
      verdict: {
        status: 'error',
        score: 0,
        results: [],
        infrastructure: true,
        message: expect.stringMatching(/^Grading failed 3 times .*\(the worker would not start\)/),
      },
    });
  });

  it('answers at once when the sandbox refuses to run on this host, and judges what ran', async () => {
    const refusing = scripted(['refuse']);
    expect(await runJob(stubSandboxes(refusing), job(1), opts)).toEqual({
      kind: 'verdict',
      verdict: {
        status: 'error',
        score: 0,
        results: [],
        infrastructure: true,
        message: 'No sandbox on this host.',
      },
    });
    expect(refusing.calls).toHaveLength(0);
    expect(await runJob(stubSandboxes(scripted([RAN])), job(1), opts)).toMatchObject({
      kind: 'verdict',
      verdict: { status: 'passed', score: 10, infrastructure: false },
    });
    // Claimed once more than allowed (its graders kept vanishing): given up before running.
    expect(await runJob(stubSandboxes(scripted([RAN])), job(4), opts)).toMatchObject({
      kind: 'verdict',
      verdict: { status: 'error', message: GAVE_UP_MESSAGE, infrastructure: true },
    });
  });
});

describe('grader retries', () => {
  it('puts a job the sandbox failed back in the queue after the backoff (run_at), and grades it then', async () => {
    await grader?.stop();
    grader = null;
    const ex = await createExercise(w.instructor, w.lesson.id, {
      tests: [{ name: 'one', kind: 'call', args: [1, 2], expected: 3, hidden: false }],
    });
    const flaky = scripted([BROKEN, RAN]);
    const g = await startGrader(ctx.config, ctx.url, { sandboxes: stubSandboxes(flaky) });
    try {
      const id = await submit(w.student, ex.id, ADD);
      // Between the two runs the job waits in the queue, unlocked, until run_at.
      await vi.waitFor(() => expect(flaky.calls).toHaveLength(1), { timeout: 10_000, interval: 10 });
      await vi.waitFor(
        async () => {
          const [job] = await sql<{ locked: boolean; attempts: number; waitMs: number }>(
            `select locked_until is not null as locked, attempts,
                    extract(epoch from run_at - now())::float8 * 1000 as "waitMs"
               from grading_jobs where submission_id = $1`,
            [id],
          );
          expect(job).toMatchObject({ locked: false, attempts: 1 });
          expect(job!.waitMs).toBeGreaterThan(0);
        },
        { timeout: 900, interval: 10 },
      );
      const graded = await waitGraded(w.student, id);
      expect(graded).toMatchObject({ status: 'passed', score: 10 });
      expect(flaky.calls).toHaveLength(2);
      // Claimed again no sooner than the backoff (1 s after the first claim failed).
      expect(flaky.calls[1]! - flaky.calls[0]!).toBeGreaterThanOrEqual(950);
      const [row] = await sql<{ counts: boolean }>(
        'select counts_as_attempt as counts from submissions where id = $1',
        [id],
      );
      expect(row!.counts).toBe(true);
    } finally {
      await g.stop();
    }
  });

  it('gives up after maxTries failures of the sandbox with an error that uses no attempt', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id, { maxAttempts: 1 });
    const code = `${ADD} // gives up`;
    const broken = scripted([BROKEN], code);
    const g = await startGrader(ctx.config, ctx.url, { sandboxes: stubSandboxes(broken), maxTries: 2 });
    try {
      const id = await submit(w.student, ex.id, code);
      const graded = await waitGraded(w.student, id);
      expect(graded).toMatchObject({ status: 'error', score: 0 });
      expect(graded.message).toMatch(/^Grading failed 2 times for reasons outside your code/);
      expect(broken.calls).toHaveLength(2);
      const [row] = await sql<{ counts: boolean }>(
        'select counts_as_attempt as counts from submissions where id = $1',
        [id],
      );
      expect(row!.counts).toBe(false);
      expect(await submit(w.student, ex.id, 'function add(a, b) { return a + b; }')).toBeTruthy();
    } finally {
      await g.stop();
    }
  });
});
