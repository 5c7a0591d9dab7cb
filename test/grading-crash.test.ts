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
  await new Promise((r) => setTimeout(r, 500));
  console.log(
    JSON.stringify(
      (
        await ctx.database.pool.query(
          `select j.locker_pid, j.locked_until, (select count(*) from pg_stat_activity a where a.pid = j.locker_pid) as alive, (select json_agg(json_build_object('pid', pid, 'app', application_name, 'state', state)) from pg_stat_activity where application_name like 'lab:grader%') as graders from grading_jobs j`,
        )
      ).rows,
    ),
  );
  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));
  await new Promise((r) => setTimeout(r, 300));
  console.log(
    JSON.stringify(
      (
        await ctx.database.pool.query(
          `select j.locker_pid, (select count(*) from pg_stat_activity a where a.pid = j.locker_pid) as alive from grading_jobs j`,
        )
      ).rows,
    ),
  );
  const afterKill = await submissionState(id);
  expect(afterKill).toMatchObject({ status: 'running', events: 0, jobs: 1 });

  const started = Date.now();
  const second = spawnGrader();
  await until(
    () => submissionState(id),
    (s) => s.generation === 2,
    30_000,
    'the second grader to take over',
  );
  const takeoverMs = Date.now() - started;
  const final = await until(
    () => submissionState(id),
    (s) => s.status !== 'running' && s.status !== 'queued',
    60_000,
    'the second grader to finish',
  );
  console.log(
    `after SIGKILL: second grader (spawned, tsx boot included) took the job over in ${takeoverMs} ms, ` +
      `result after ${Date.now() - started} ms (the job itself runs ~3.6 s)`,
  );
  expect(final).toMatchObject({ status: 'passed', score: 10, events: 1, jobs: 0, generation: 2 });
  expect(final.results).toHaveLength(2);

  // Nothing more happens later: no second result, no second event.
  await new Promise((r) => setTimeout(r, 1500));
  expect(await submissionState(id)).toMatchObject({ status: 'passed', events: 1, generation: 2 });

  second.kill('SIGTERM');
  const code2 = await new Promise((r) => second.once('exit', (c) => r(c)));
  expect(code2).toBe(0);
}, 120_000);
