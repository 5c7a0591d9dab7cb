import { drizzle } from 'drizzle-orm/node-postgres';
import pRetry from 'p-retry';
import pino from 'pino';
import client from 'prom-client';
import type { Config } from '../config.ts';
import { JOBS_CHANNEL } from '../contracts/channels.ts';
import type { Db } from '../db/client.ts';
import { isDatabaseUnavailable } from '../db/errors.ts';
import { pruneExpired } from '../db/housekeeping.ts';
import { startListener } from '../db/listener.ts';
import { BoundedPool } from '../db/pool.ts';
import { recordWritePositions } from '../db/replicas.ts';
import * as schema from '../db/schema/index.ts';
import { grade, runProgram } from './grade.ts';
import type { GradeOutcome } from './grading.types.ts';
import {
  type ClaimedJob,
  claimJobs,
  recordOutcome,
  releaseJobs,
  releaseOrphanedJobs,
  renewLeases,
} from './queue.ts';
import { createGradingLatency } from './queue-metrics.ts';
import { createSandboxes, type Sandboxes } from './sandboxes.ts';

export interface GraderOptions {
  /** A claimed job's lease; renewed every third of it while the job runs. */
  leaseMs?: number;
  /** How often to look for jobs whose grader vanished. */
  watchdogMs?: number;
  /** Claims of one job before the submission ends `error` (infrastructure, not an attempt). */
  maxTries?: number;
  /** Poll for jobs this often even without a NOTIFY (delayed jobs, lost notifications). */
  pollMs?: number;
  /** On stop, wait this long for running jobs before handing them back to the queue. */
  stopGraceMs?: number;
  /** How often to prune expired sessions, old login failures and old events (graders do the housekeeping). */
  housekeepingMs?: number;
  /** Sandboxes to grade in; by default the grader creates its own from the config and closes them on stop. */
  sandboxes?: Sandboxes;
  registry?: client.Registry;
}

export const GAVE_UP_MESSAGE =
  'Grading failed repeatedly for reasons outside your code (a grader stopped mid-job). ' +
  'This submission does not count as an attempt; submit again.';

const infrastructureError = (message: string): GradeOutcome => ({
  status: 'error',
  score: 0,
  message,
  results: [],
  infrastructure: true,
});

/**
 * Retrying while the database is down: 200 ms, doubling, at most 1 s apart — a failover takes about
 * ten seconds and the grader should be back on the new primary within a second of it.
 */
const DB_BACKOFF = { forever: true, minTimeout: 200, maxTimeout: 1000, factor: 2, randomize: true } as const;

/**
 * A job's verdict, from the sandboxes; never throws. A run with an input runs the program once on it;
 * a student's run runs the visible tests only (v1.1); a submission, or a staff run, every test.
 */
async function run(
  sandboxes: Sandboxes,
  config: Config,
  job: ClaimedJob,
  maxTries: number,
  log: pino.Logger,
): Promise<GradeOutcome & { output?: string | null }> {
  if (job.attempts > maxTries) return infrastructureError(GAVE_UP_MESSAGE);
  const totalMs = config.GRADING_MAX_SUBMISSION_MS;
  try {
    if (job.kind === 'run' && job.stdin !== null)
      return await runProgram(sandboxes, {
        language: job.language,
        code: job.code,
        stdin: job.stdin,
        limits: job.limits,
        totalMs,
      });
    const tests = job.allTests ? job.tests : job.tests.filter((t) => !t.hidden);
    if (tests.length === 0)
      return {
        ...infrastructureError(
          'This exercise has no visible tests to run: run your program on an input instead.',
        ),
        infrastructure: false,
      };
    return await grade(sandboxes, {
      language: job.language,
      code: job.code,
      entrypoint: job.entrypoint,
      tests,
      limits: job.limits,
      maxScore: job.maxScore,
      totalMs,
    });
  } catch (err) {
    log.error({ err, [job.kind]: job.targetId }, 'sandbox failed');
    return infrastructureError('The sandbox is unavailable; this submission does not count as an attempt.');
  }
}

/**
 * Stores a verdict, retrying with backoff while Postgres is unavailable, until it is stored or the
 * job is handed back (`signal`). A verdict refused for another reason is replaced by an
 * infrastructure error after three tries rather than retried forever.
 */
async function record(db: Db, job: ClaimedJob, verdict: GradeOutcome, signal: AbortSignal, log: pino.Logger) {
  let outcome = verdict;
  let refusals = 0;
  return pRetry(() => recordOutcome(db, job, outcome), {
    ...DB_BACKOFF,
    signal,
    onFailedAttempt: (err) => {
      log.warn({ err: err.message, job: job.targetId }, 'could not record; retrying');
      if (!isDatabaseUnavailable(err) && ++refusals >= 3)
        outcome = infrastructureError(
          'The result could not be stored; this submission does not count as an attempt.',
        );
    },
  }).catch(() => null);
}

/**
 * A grader: claims jobs from the queue (woken by NOTIFY, polling as a fallback), runs up to
 * GRADER_CONCURRENCY at once in the sandboxes, records each verdict once. It keeps retrying with
 * backoff while Postgres is down instead of crashing.
 */
export async function startGrader(
  config: Config,
  databaseUrl: string,
  options: GraderOptions = {},
): Promise<{ stop(): Promise<void> }> {
  const leaseMs = options.leaseMs ?? 30_000;
  const maxTries = options.maxTries ?? 3;
  const pollMs = options.pollMs ?? 2000;
  const stopGraceMs = options.stopGraceMs ?? 10_000;
  const name = `lab:${config.INSTANCE_NAME || `grader-${process.pid}`}`;
  const log = pino({ level: config.LOG_LEVEL, name });
  const latency = createGradingLatency(options.registry ?? new client.Registry());
  const sandboxes = options.sandboxes ?? createSandboxes(config, { log });
  await sandboxes.warm();

  // GRADER_POOL_MAX in total: the LISTEN connection plus a pool for claims and results.
  const pool = new BoundedPool({
    connectionString: databaseUrl,
    max: Math.max(1, config.GRADER_POOL_MAX - 1),
    acquireTimeoutMs: 10_000,
    maxWaiting: 10_000,
    statementTimeoutMs: config.DB_STATEMENT_TIMEOUT_MS,
    applicationName: name,
  });
  const db = drizzle(pool, { schema });

  let stopping = false;
  // A nudge while the loop is busy claiming is remembered, so the loop does not then sleep a whole poll.
  let woken = false;
  let wake: (() => void) | null = null;
  const nudge = () => {
    woken = true;
    wake?.();
  };
  const inflight = new Map<number, { job: ClaimedJob; handBack: AbortController }>();

  const renew = () =>
    renewLeases(db, [...inflight.keys()], leaseMs, listener.backendPid()).catch((err) =>
      log.warn({ err: (err as Error).message }, 'could not renew leases'),
    );
  let listening: () => void = () => {};
  const listener = startListener({
    url: databaseUrl,
    channels: { [JOBS_CHANNEL]: nudge },
    applicationName: name,
    onConnect: () => {
      listening();
      void renew();
      nudge();
    },
    onError: (err) => {
      listening();
      log.warn({ err: (err as Error).message }, 'jobs listener disconnected; reconnecting');
    },
  });
  // Claims name the LISTEN backend as their locker, so start claiming once it is known (or known down).
  await new Promise<void>((resolve) => {
    listening = resolve;
  });

  /** claim → run → record, for one job. */
  async function handle(job: ClaimedJob, handBack: AbortController) {
    const verdict = await run(sandboxes, config, job, maxTries, log);
    const recorded = await record(db, job, verdict, handBack.signal, log);
    if (recorded) {
      // With read replicas, the author's next reads wait for a replica that has this verdict.
      if (config.DATABASE_READ_URL)
        await recordWritePositions(db, [job.userId]).catch((err) =>
          log.warn({ err: (err as Error).message }, 'could not record the write position'),
        );
      const seconds = (recorded.gradedAt.getTime() - job.createdAt.getTime()) / 1000;
      latency.observe(seconds);
      log.info({ [job.kind]: job.targetId, status: verdict.status, latencyMs: seconds * 1000 }, 'graded');
    } else if (!handBack.signal.aborted) {
      log.info({ [job.kind]: job.targetId }, 'result superseded (regraded or taken over); ignored');
    }
    inflight.delete(job.jobId);
    nudge();
  }

  async function claimLoop() {
    while (!stopping) {
      woken = false;
      const free = config.GRADER_CONCURRENCY - inflight.size;
      let claimed = 0;
      // A claim names the LISTEN backend as its locker, which is how a vanished grader's jobs are
      // noticed: while that connection is down, claim nothing (only the lease would free them).
      if (free > 0 && listener.backendPid() !== null) {
        const jobs = await pRetry(
          () => claimJobs(db, { limit: free, lockerPid: listener.backendPid(), leaseMs }),
          {
            ...DB_BACKOFF,
            shouldRetry: () => !stopping,
            onFailedAttempt: (err) =>
              log.warn({ err: err.message }, 'cannot claim jobs (database unavailable?); retrying'),
          },
        ).catch(() => []);
        claimed = jobs.length;
        for (const job of jobs) {
          const handBack = new AbortController();
          inflight.set(job.jobId, { job, handBack });
          void handle(job, handBack);
        }
      }
      // A full batch suggests more are waiting: claim again at once.
      if (stopping || (free > 0 && claimed === free) || woken) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  }

  const heartbeat = setInterval(renew, leaseMs / 3);
  const watchdog = setInterval(() => {
    releaseOrphanedJobs(db)
      .then((n) => {
        if (n > 0) {
          log.warn({ jobs: n }, 'requeued jobs of a grader that vanished');
          nudge();
        }
      })
      .catch(() => {});
  }, options.watchdogMs ?? 1000);
  // API instances stay free of background work; pruning from several graders at once is harmless.
  const housekeeping = setInterval(
    () => {
      pruneExpired(db)
        .then((pruned) => log.info({ pruned }, 'housekeeping'))
        .catch((err) => log.warn({ err: (err as Error).message }, 'housekeeping failed; will retry'));
    },
    options.housekeepingMs ?? 5 * 60_000,
  );
  const looping = claimLoop();
  log.info({ concurrency: config.GRADER_CONCURRENCY }, 'grader started');

  return {
    async stop() {
      if (stopping) return;
      stopping = true;
      nudge();
      await looping;
      const deadline = Date.now() + stopGraceMs;
      while (inflight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      if (inflight.size > 0) {
        const ids = [...inflight.keys()];
        for (const { handBack } of inflight.values()) handBack.abort();
        await releaseJobs(db, ids).catch((err) =>
          log.warn(
            { err: (err as Error).message },
            'could not hand back jobs; the watchdog of another grader will',
          ),
        );
      }
      clearInterval(heartbeat);
      clearInterval(watchdog);
      clearInterval(housekeeping);
      await listener.stop();
      await pool.end().catch(() => {});
      if (!options.sandboxes) await sandboxes.close();
      log.info('grader stopped');
    },
  };
}
