import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { withTestApp } from './app.ts';
import { buildWorld, createExercise, type World } from './factories.ts';

/**
 * Exactly-once with real processes: a grader is SIGKILLed in the middle of a slow job, another grader
 * takes the job over, and the submission ends graded once — one result, one event.
 */
const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });
let w: World;
const children: ChildProcess[] = [];

function spawnGrader(): ChildProcess {
  const child = spawn(process.execPath, ['bin/lab.mjs', 'grader'], {
    cwd: process.cwd(),
    env: { ...process.env, DATABASE_URL: ctx.url, LOG_LEVEL: 'silent', GRADER_CONCURRENCY: '2' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (d) => process.stderr.write(`[grader ${child.pid}] ${d}`));
  children.push(child);
  return child;
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const submissionState = async (id: string) =>
  (
    await ctx.database.pool.query<{
      status: string;
      score: number | null;
      generation: number;
      results: unknown[];
      events: number;
      jobs: number;
    }>(
      `select s.status, s.score, s.grading_generation as generation, s.results,
              (select count(*)::int from events e where e.payload->'submission'->>'id' = s.id::text) as events,
              (select count(*)::int from grading_jobs j where j.submission_id = s.id) as jobs
         from submissions s where s.id = $1`,
      [id],
    )
  ).rows[0]!;

/** The job's lease: whether it is locked, and whether the locker's backend still exists. */
const jobLease = async (submissionId: string) =>
  (
    await ctx.database.pool.query<{ locked: boolean; lockerAlive: boolean }>(
      `select j.locked_until is not null as locked,
              exists (select 1 from pg_stat_activity a where a.pid = j.locker_pid) as "lockerAlive"
         from grading_jobs j where j.submission_id = $1`,
      [submissionId],
    )
  ).rows[0]!;

beforeAll(async () => {
  w = await buildWorld(ctx.app, 'Crash');
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

it('a grader killed with SIGKILL mid-job: another finishes it, graded exactly once', async () => {
  // About two seconds of busy work per call: long enough to kill the grader in the middle of it.
  const ex = await createExercise(w.instructor, w.lesson.id, {
    entrypoint: 'slow',
    tests: [
      { name: 'slow-1', kind: 'call', args: [1800], expected: 1800, hidden: false },
      { name: 'slow-2', kind: 'call', args: [1800], expected: 1800, hidden: true },
    ],
    limits: { timeMs: 10_000, memoryMb: 64 },
  });
  const code = 'function slow(ms) { const end = Date.now() + ms; while (Date.now() < end) {} return ms; }';
  const first = spawnGrader();
  const res = await w.student.req('POST', `/exercises/${ex.id}/submissions`, { code });
  expect(res.statusCode).toBe(202);
  const id = res.json().submission.id as string;

  await until(
    () => submissionState(id),
    (s) => s.status === 'running',
    30_000,
    'the first grader to claim',
  );
  // Precondition: the first grader holds the job, its lease naming a live backend of its own.
  const lease = await jobLease(id);
  expect(lease).toMatchObject({ locked: true, lockerAlive: true });
  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));
  // Its backend goes away with it: the watchdog's signal that the job is orphaned.
  await until(
    () => jobLease(id),
    (l) => !l.lockerAlive,
    30_000,
    'the killed grader’s backend to disappear',
  );
  const afterKill = await submissionState(id);
  expect(afterKill).toMatchObject({ status: 'running', events: 0, jobs: 1 });

  const second = spawnGrader();
  await until(
    () => submissionState(id),
    (s) => s.generation === 2,
    30_000,
    'the second grader to take over',
  );
  const final = await until(
    () => submissionState(id),
    (s) => s.status !== 'running' && s.status !== 'queued',
    60_000,
    'the second grader to finish',
  );
  expect(final).toMatchObject({ status: 'passed', score: 10, events: 1, jobs: 0, generation: 2 });
  expect(final.results).toHaveLength(2);

  // Nothing more happens later: once no grader is left that could write, still one result, one event.
  second.kill('SIGTERM');
  const code2 = await new Promise((r) => second.once('exit', (c) => r(c)));
  expect(code2).toBe(0);
  expect(await submissionState(id)).toMatchObject({ status: 'passed', events: 1, jobs: 0, generation: 2 });
}, 120_000);
