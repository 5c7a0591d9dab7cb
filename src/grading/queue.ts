import { Type } from '@sinclair/typebox';
import { type SQL, sql } from 'drizzle-orm';
import { EVENTS_CHANNEL, JOBS_CHANNEL } from '../contracts/channels.ts';
import type { Db, Tx } from '../db/client.ts';
import { isUniqueViolation } from '../db/errors.ts';
import { isoUtc } from '../db/iso-text.ts';
import { Col, rowsOf, selectRows } from '../db/rows.ts';
import { backoffDelay } from '../lib/backoff.ts';
import type { ExerciseLimits, ExerciseTest, GradeOutcome } from './grading.types.ts';

/*
 * The grading queue: a table in our own Postgres, claimed with FOR UPDATE SKIP LOCKED
 * (graphile-worker's design) rather than pg-boss 10, for two measured reasons:
 *  - pickup: pg-boss 10 only polls (minimum 500 ms, default 2 s); a NOTIFY right after the submit's
 *    commit wakes an idle grader in a few ms, which keeps submit→result well under a second.
 *  - crash recovery: pg-boss 10 has no heartbeat, only a fixed per-job expiry checked by maintenance
 *    (started_on + expire_in < now()), and the expiry must exceed the longest legitimate job.
 *    Here a job's lease names the grader's Postgres backend; a grader killed with SIGKILL disappears
 *    from pg_stat_activity at once and its jobs are requeued on the next watchdog tick (1 s), with
 *    a backoff (run_at, JOB_RETRY), and a lease renewed by heartbeat covers hung or partitioned graders.
 * Exactly-once: each claim bumps submissions.grading_generation and a result is recorded only for
 * the current generation while the submission is still queued/running, so a late duplicate from a
 * grader that was presumed dead changes nothing.
 * Fairness: a user has at most one job running at a time (their others wait; everyone else's are
 * claimed meanwhile), and new submissions (priority 0) go before regrades (priority 1).
 * Lock order, everywhere: the job row, then the submission row (claim, record, regrade), so a
 * regrade burst and a claim cannot deadlock.
 */

/** New submissions and runs first, regrades last (v1.1: a submission never waits behind a regrade). */
export const PRIORITY = { submission: 0, run: 0, regrade: 1 } as const;

/**
 * The body of a CTE that queues a grading job for each row of `source` (a CTE of new submissions, or
 * runs, with id, course_id, user_id), returning the jobs' ids. A submit or a run inserts its row and job in
 * one statement with it (submission.queries.ts, run.queries.ts); whoever queues wakes the graders
 * after the commit (AppDeps.wakeGraders), not with a NOTIFY inside the transaction: see announceEvent.
 */
export function queueJobsFor(source: SQL, kind: 'submission' | 'run' = 'submission'): SQL {
  const column = sql.raw(kind === 'submission' ? 'submission_id' : 'run_id');
  return sql`insert into grading_jobs (${column}, course_id, user_id, priority)
    select id, course_id, user_id, ${PRIORITY[kind]} from ${source} returning id`;
}

const countRows = rowsOf(Type.Object({ n: Col.int }), 'grading queue count');
const statsRows = rowsOf(
  Type.Object({ depth: Col.int, oldest: Col.nullable(Col.float) }),
  'grading queue stats',
);
const recordedRows = rowsOf(
  Type.Object({ eventId: Col.bigint, gradedAt: Col.timestamp }),
  'recorded verdict',
);

/**
 * Puts every submission of an exercise back in the queue (a regrade with the current tests), behind
 * new submissions. The generation bump voids any result still being computed with the old tests.
 * Only the status changes: the previous score, message, results and graded_at stay until
 * recordOutcome replaces them all in one update, so the gradebook and the submission keep showing
 * the previous verdict while a large regrade works through the queue. No NOTIFY here: the caller wakes
 * the graders after its commit (AppDeps.wakeGraders), as a submit does.
 */
export async function requeueExercise(tx: Tx, exerciseId: string): Promise<number> {
  // Lock order: the jobs that exist first (waiting for a claim or a record in progress), then the submissions.
  await tx.execute(sql`
    select j.id from grading_jobs j join submissions s on s.id = j.submission_id
     where s.exercise_id = ${exerciseId} order by j.id for update of j`);
  const [row] = await selectRows(
    tx,
    countRows,
    sql`
    with subs as (
      update submissions
         set status = 'queued', grading_generation = grading_generation + 1
       where exercise_id = ${exerciseId}
      returning id, course_id, user_id
    ), jobs as (
      insert into grading_jobs (submission_id, course_id, user_id, priority)
      select id, course_id, user_id, ${PRIORITY.regrade} from subs
      on conflict (submission_id) do update
         set attempts = 0, locker_pid = null, locker_started_at = null, locked_until = null, run_at = now(),
             priority = least(grading_jobs.priority, excluded.priority)
      returning 1
    )
    select count(*)::int as n from jobs`,
  );
  return row?.n ?? 0;
}

export interface ClaimedJob {
  jobId: number;
  /** A submission (graded for the gradebook) or a run (tried before submitting). */
  kind: 'submission' | 'run';
  /** The submission's or the run's id. */
  targetId: string;
  userId: string;
  /** Runs: the program's input (then it runs once on it, no tests). */
  stdin: string | null;
  /** Runs: the hidden tests too (a staff run); submissions always run every test. */
  allTests: boolean;
  /** Claims of this job so far, this one included. */
  attempts: number;
  generation: number;
  createdAt: Date;
  code: string;
  language: 'javascript' | 'python';
  entrypoint: string | null;
  tests: ExerciseTest[];
  limits: ExerciseLimits;
  maxScore: number;
}

// What a grader is handed is checked, not trusted: a test or limit of another shape would be graded wrong.
const TestShape = Type.Union([
  Type.Object({
    name: Col.text,
    kind: Type.Literal('call'),
    argsJson: Col.text,
    expectedJson: Col.text,
    hidden: Col.bool,
    points: Col.float,
    tolerance: Col.float,
  }),
  Type.Object({
    name: Col.text,
    kind: Type.Literal('io'),
    stdin: Col.text,
    stdout: Col.text,
    hidden: Col.bool,
    points: Col.float,
  }),
]);
const claimedRows = rowsOf(
  Type.Object({
    jobId: Col.int,
    kind: Type.Union([Type.Literal('submission'), Type.Literal('run')]),
    targetId: Col.uuid,
    userId: Col.uuid,
    stdin: Col.nullable(Col.text),
    allTests: Col.bool,
    attempts: Col.int,
    generation: Col.int,
    createdAt: Col.timestamp,
    code: Col.text,
    language: Type.Union([Type.Literal('javascript'), Type.Literal('python')]),
    entrypoint: Col.nullable(Col.text),
    tests: Type.Array(TestShape),
    limits: Type.Object({ timeMs: Col.float, memoryMb: Col.float }),
    maxScore: Col.float,
  }),
  'claimed job',
);

/**
 * Claims up to `limit` runnable jobs (unlocked or with an expired lease, run_at reached), at most
 * one per user and none of a user who already has one running, and marks them running. One
 * statement: the claim is the grader's hottest query (a round trip costs ~0.1 ms of CPU here).
 * Two graders claiming at the same moment could each pick a job of the same user; the unique index
 * grading_jobs_one_running_per_user refuses the second, and that claim is simply made again.
 *
 * The claim commits without waiting for its WAL flush (synchronous_commit off for this transaction
 * alone): nobody is told it succeeded, so a claim lost with a Postgres crash is harmless. The job is
 * runnable again; a verdict recorded under the lost claim finds its generation no longer current and
 * changes nothing, or (the job claimed again meanwhile, at the same generation) is the one verdict of
 * that code, and the other claim's finds the submission graded. A verdict's commit is flushed, and
 * with it all WAL before it, its claim's included.
 * The flush cost 0.09 ms of Postgres CPU and 0.35 ms of round trip per transaction here
 * (docs/perf/async-commit.ts).
 */
export async function claimJobs(
  db: Db,
  opts: { limit: number; lockerPid: number | null; leaseMs: number },
): Promise<ClaimedJob[]> {
  for (let tries = 0; ; tries++) {
    try {
      return await claimOnce(db, opts);
    } catch (err) {
      if (tries < 5 && isUniqueViolation(err, 'grading_jobs_one_running_per_user')) continue;
      throw err;
    }
  }
}

async function claimOnce(
  db: Db,
  opts: { limit: number; lockerPid: number | null; leaseMs: number },
): Promise<ClaimedJob[]> {
  const rows = await selectRows(
    db,
    claimedRows,
    sql`
    with async_commit as materialized (
      select set_config('synchronous_commit', 'off', true)
    ), candidates as (
      select distinct on (j.user_id) j.id, j.priority, j.run_at
        from grading_jobs j
       where j.run_at <= now() and j.locked_until is null
         and not exists (select 1 from grading_jobs r where r.user_id = j.user_id and r.locked_until is not null)
       order by j.user_id, j.priority, j.run_at, j.id
    ), picked as (
      select j.id from grading_jobs j
       where j.id in (select id from candidates order by priority, run_at, id limit ${opts.limit})
       for update skip locked
    ), claimed as (
      update grading_jobs j
         set locker_pid = ${opts.lockerPid}::int, locker_started_at = pg_postmaster_start_time(),
             locked_until = now() + make_interval(secs => ${opts.leaseMs / 1000}),
             attempts = j.attempts + 1
        from picked
       where j.id = picked.id
      returning j.id, coalesce(j.submission_id, j.run_id) as target_id, j.attempts
    ), started_submissions as (
      update submissions s
         set status = 'running', grading_generation = s.grading_generation + 1
        from claimed
       where s.id = claimed.target_id
      returning s.id, s.user_id, s.grading_generation, s.code, s.exercise_id, s.created_at
    ), started_runs as (
      update runs r
         set status = 'running', grading_generation = r.grading_generation + 1
        from claimed
       where r.id = claimed.target_id
      returning r.id, r.user_id, r.grading_generation, r.code, r.exercise_id, r.created_at, r.stdin, r.all_tests
    ), started as (
      select 'submission' as kind, id, user_id, grading_generation, code, exercise_id, created_at,
             null::text as stdin, true as all_tests
        from started_submissions
      union all
      select 'run', id, user_id, grading_generation, code, exercise_id, created_at, stdin, all_tests
        from started_runs
    )
    select c.id::int as "jobId", st.kind, st.id as "targetId", st.user_id as "userId", c.attempts,
           st.grading_generation as generation, st.created_at as "createdAt", st.code, st.stdin,
           st.all_tests as "allTests", e.language, e.entrypoint, e.tests, e.limits, e.max_score as "maxScore"
      from claimed c
      join started st on st.id = c.target_id
      join exercises e on e.id = st.exercise_id
      cross join async_commit`,
  );
  return rows.map((r) => ({ ...r, createdAt: new Date(r.createdAt) }));
}

/**
 * Renews the lease of jobs this grader is running, and names its current LISTEN backend as their
 * locker (it changes when that connection is re-established).
 */
export async function renewLeases(db: Db, jobIds: number[], leaseMs: number, lockerPid: number | null) {
  if (jobIds.length === 0) return;
  await db.execute(sql`
    update grading_jobs
       set locked_until = now() + make_interval(secs => ${leaseMs / 1000}),
           locker_pid = coalesce(${lockerPid}::int, locker_pid), locker_started_at = pg_postmaster_start_time()
     where id = any(${`{${jobIds.join(',')}}`}::bigint[])`);
}

/**
 * When a job whose claim failed for the platform's reasons (its grader vanished, its sandbox could not
 * run it) may be claimed again: 1 s after its first claim, doubling with each claim (2 s, 4 s …, at
 * most a minute), so a submission that takes graders down with it does not take them all down at once.
 */
export const JOB_RETRY = { baseMs: 1000, maxMs: 60_000, factor: 2 } as const;

/** The delay before a job claimed `attempts` times so far may be claimed again (JOB_RETRY). */
export const jobRetryDelayMs = (attempts: number) => backoffDelay(attempts - 1, JOB_RETRY);

/** jobRetryDelayMs in SQL, for the set-based watchdog; `attempts` is the column of grading_jobs j. */
const jobRetryDelaySql = sql.raw(
  `least(${JOB_RETRY.maxMs / 1000}, ${JOB_RETRY.baseMs / 1000} * power(${JOB_RETRY.factor}, greatest(j.attempts - 1, 0)))`,
);

/**
 * The watchdog: frees jobs whose lease expired or whose grader's backend is gone (killed, crashed),
 * so any grader can claim them again after the JOB_RETRY backoff.
 */
export async function releaseOrphanedJobs(db: Db): Promise<number> {
  const [row] = await selectRows(
    db,
    countRows,
    sql`
    with freed as (
      update grading_jobs j
         set locker_pid = null, locker_started_at = null, locked_until = null,
             run_at = now() + make_interval(secs => ${jobRetryDelaySql})
       where j.locked_until is not null
         and (j.locked_until < now()
              or (j.locker_pid is not null
                  and (j.locker_started_at is distinct from pg_postmaster_start_time()
                       or not exists (select 1 from pg_stat_activity a where a.pid = j.locker_pid))))
      returning 1
    )
    select count(*)::int as n from freed`,
  );
  return row?.n ?? 0;
}

/**
 * Hands a claimed job back after a failure that is not the student's (its sandbox could not run it):
 * claimable again once `delayMs` has passed (run_at); the claim counts toward the retry limit. Only
 * while this claim is the current one (its generation), so a job taken over meanwhile is left alone.
 * Returns whether the job was handed back.
 */
export async function retryLater(db: Db, job: RecordTarget & { jobId: number }, delayMs: number) {
  const table = sql.raw(job.kind === 'submission' ? 'submissions' : 'runs');
  const column = sql.raw(job.kind === 'submission' ? 'submission_id' : 'run_id');
  const result = await db.execute(sql`
    update grading_jobs j
       set locker_pid = null, locker_started_at = null, locked_until = null,
           run_at = now() + make_interval(secs => ${delayMs / 1000})
     where j.id = ${job.jobId} and j.locked_until is not null
       and exists (select 1 from ${table} t where t.id = j.${column} and t.grading_generation = ${job.generation})`);
  return (result.rowCount ?? 0) > 0;
}

/** Hands jobs back unfinished (graceful stop); the claim does not count against the retry limit. */
export async function releaseJobs(db: Db, jobIds: number[]) {
  if (jobIds.length === 0) return;
  await db.execute(sql`
    update grading_jobs set locker_pid = null, locker_started_at = null, locked_until = null,
                            attempts = greatest(attempts - 1, 0)
     where id = any(${`{${jobIds.join(',')}}`}::bigint[])`);
  await db.execute(sql`select pg_notify(${JOBS_CHANNEL}, '')`);
}

export interface Recorded {
  eventId: number;
  gradedAt: Date;
}

/** What a recorded verdict is for: the job's target and the generation its grader claimed. */
export interface RecordTarget {
  kind: 'submission' | 'run';
  targetId: string;
  generation: number;
}

/**
 * Records a verdict once: only for the generation this grader claimed and while the submission or
 * run is still queued/running (a regraded submission still holds its previous score: status, not
 * score, tells whether a verdict is pending). In the same statement the job is deleted and a
 * submission.updated (or run.updated) event is written, then NOTIFYed once that statement has committed. Returns null when the result
 * was stale (another grader or a regrade won), or when no job is pending for it. One statement, for
 * the round trips; the job row is locked (in `job`, which the update's condition reads) before the
 * submission's or run's row: the lock order of claims and regrades.
 */
export async function recordOutcome(
  db: Db,
  target: RecordTarget,
  verdict: GradeOutcome,
): Promise<Recorded | null> {
  const recorded =
    target.kind === 'submission'
      ? await recordSubmission(db, target, verdict)
      : await recordRun(db, target, verdict);
  // The verdict is stored: a failed NOTIFY must not send the caller back to record it again.
  if (recorded) await announceEvent(db, recorded.eventId).catch(() => {});
  return recorded;
}

/**
 * The NOTIFY of a recorded event, in a transaction of its own after the one that wrote it. Postgres
 * queues a transaction's notifications at commit under one database-wide lock held until the commit
 * is flushed, so NOTIFY inside a writing transaction serialises every such commit behind each other's
 * WAL flush: 8 clients inserting a row each, with the NOTIFY inside 1,690–1,740 commits/s, after it
 * 3,760–3,920, without it 3,600–4,470 (pgbench on the embedded Postgres: docs/perf/notify.md). A
 * transaction that only notifies writes no WAL and holds the lock for a moment. If this one is lost
 * (the grader dies in between, or it fails), the event is still in the table: a stream that reconnects
 * gets it (Last-Event-ID), and the web app polls its author's pending submission.
 */
async function announceEvent(db: Db, eventId: number) {
  await db.execute(sql`select pg_notify(${EVENTS_CHANNEL}, ${String(eventId)})`);
}

async function recordSubmission(db: Db, target: RecordTarget, verdict: GradeOutcome) {
  const o = storable(verdict);
  const [row] = await selectRows(
    db,
    recordedRows,
    sql`
    with job as (
      select id, submission_id from grading_jobs where submission_id = ${target.targetId} for update
    ), sub as (
      update submissions
         set status = ${o.status}, raw_score = ${o.score},
             score = round((${o.score}::float8 * credit)::numeric, 2)::float8,
             message = ${o.message}, results = ${JSON.stringify(o.results)}::jsonb, graded_at = now(),
             counts_as_attempt = ${!o.infrastructure}
       where id = ${target.targetId} and grading_generation = ${target.generation}
         and status in ('queued', 'running') and id in (select submission_id from job)
      returning id, exercise_id, user_id, course_id, status, score, raw_score, credit, message, late,
                created_at, graded_at, results
    ), gone as (
      delete from grading_jobs where id in (select id from job) and exists (select 1 from sub)
    ), event as (
      insert into events (course_id, user_id, type, payload)
      select course_id, user_id, 'submission.updated',
             jsonb_build_object('submission', jsonb_build_object(
               'id', id, 'exerciseId', exercise_id, 'userId', user_id, 'status', status, 'score', score,
               'rawScore', raw_score, 'credit', credit, 'message', message, 'late', late,
               'createdAt', ${isoUtc('created_at')}, 'gradedAt', ${isoUtc('graded_at')}, 'results', results))
        from sub
      returning id
    )
    select event.id as "eventId", sub.graded_at as "gradedAt"
      from sub, event`,
  );
  if (!row) return null;
  return { eventId: Number(row.eventId), gradedAt: new Date(row.gradedAt) };
}

/** A run's verdict; its event goes to its author only (realtime/event-hub.ts). */
async function recordRun(db: Db, target: RecordTarget, verdict: GradeOutcome & { output?: string | null }) {
  const o = storable(verdict);
  const output = verdict.output == null ? null : storableText(verdict.output);
  const [row] = await selectRows(
    db,
    recordedRows,
    sql`
    with job as (
      select id, run_id from grading_jobs where run_id = ${target.targetId} for update
    ), run as (
      update runs
         set status = ${o.status}, message = ${o.message}, results = ${JSON.stringify(o.results)}::jsonb,
             output = ${output}, graded_at = now()
       where id = ${target.targetId} and grading_generation = ${target.generation}
         and status in ('queued', 'running') and id in (select run_id from job)
      returning id, exercise_id, user_id, course_id, status, message, results, output, created_at, graded_at
    ), gone as (
      delete from grading_jobs where id in (select id from job) and exists (select 1 from run)
    ), event as (
      insert into events (course_id, user_id, type, payload)
      select course_id, user_id, 'run.updated',
             jsonb_build_object('run', jsonb_build_object(
               'id', id, 'exerciseId', exercise_id, 'status', status, 'message', message,
               'results', results, 'output', output, 'createdAt', ${isoUtc('created_at')}))
        from run
      returning id
    )
    select event.id as "eventId", run.graded_at as "gradedAt"
      from run, event`,
  );
  if (!row) return null;
  return { eventId: Number(row.eventId), gradedAt: new Date(row.gradedAt) };
}

// Postgres text and jsonb cannot hold U+0000 (nor lone surrogates), and a student program can print them.
const storableText = (s: string) => s.replaceAll('\u0000', '\uFFFD').toWellFormed();

function storable(o: GradeOutcome): GradeOutcome {
  return {
    ...o,
    message: o.message === null ? null : storableText(o.message),
    results: o.results.map((r) => ({
      ...r,
      name: storableText(r.name),
      message: r.message === null ? null : storableText(r.message),
      output: r.output === null ? null : storableText(r.output),
    })),
  };
}

/** Jobs waiting or running, and the age of the oldest, for /metrics and doctor. */
export async function queueStats(db: Tx): Promise<{ depth: number; oldestSeconds: number }> {
  const [r] = await selectRows(
    db,
    statsRows,
    sql`
    select count(*)::int as depth, extract(epoch from now() - min(created_at))::float8 as oldest
      from grading_jobs`,
  );
  return { depth: r?.depth ?? 0, oldestSeconds: r?.oldest ?? 0 };
}
