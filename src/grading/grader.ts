import { drizzle } from 'drizzle-orm/node-postgres';
import pino from 'pino';
import client from 'prom-client';
import type { Config } from '../config.ts';
import { isDatabaseUnavailable } from '../db/errors.ts';
import { pruneExpired } from '../db/housekeeping.ts';
import { BoundedPool } from '../db/pool.ts';
import * as schema from '../db/schema/index.ts';
import { startListener } from '../realtime/listener.ts';
import { closeSandboxes, grade } from './grade.ts';
import type { GradeOutcome } from './grading.types.ts';
import {
  type ClaimedJob,
  claimJobs,
  JOBS_CHANNEL,
  recordOutcome,
  releaseJobs,
  releaseOrphanedJobs,
  renewLeases,
} from './queue.ts';
import { createGradingLatency } from './queue-metrics.ts';

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
  registry?: client.Registry;
}

export const GAVE_UP_MESSAGE =
  'Grading failed repeatedly for reasons outside your code (a grader stopped mid-job). ' +
  'This submission does not count as an attempt; submit again.';

const INFRA_ERROR: GradeOutcome = {
  status: 'error',
  score: 0,
  message: null,
  results: [],
  infrastructure: true,
};

// Sandboxes are per process; they close when the last grader of the process stops.
let runningGraders = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  const watchdogMs = options.watchdogMs ?? 1000;
  const maxTries = options.maxTries ?? 3;
  const pollMs = options.pollMs ?? 2000;
  const stopGraceMs = options.stopGraceMs ?? 10_000;
  const housekeepingMs = options.housekeepingMs ?? 5 * 60_000;
  const name = `lab:${config.INSTANCE_NAME || `grader-${process.pid}`}`;
  const log = pino({ level: config.LOG_LEVEL, name });
  const latency = createGradingLatency(options.registry ?? new client.Registry());

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
  const inflight = new Map<number, ClaimedJob>();
  const abandoned = new Set<number>();

  const renew = () =>
    renewLeases(db, [...inflight.keys()], leaseMs, listener.backendPid()).catch((err) =>
      log.warn({ err: (err as Error).message }, 'could not renew leases'),
    );
  let listening: () => void = () => {};
  const listener = startListener({
    url: databaseUrl,
    channel: JOBS_CHANNEL,
    applicationName: name,
    onNotify: nudge,
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
  runningGraders += 1;

  async function run(job: ClaimedJob) {
    let outcome: GradeOutcome;
    if (job.attempts > maxTries) {
      outcome = { ...INFRA_ERROR, message: GAVE_UP_MESSAGE };
    } else {
      try {
        outcome = await grade({
          language: job.language,
          code: job.code,
          entrypoint: job.entrypoint,
          tests: job.tests,
          limits: job.limits,
          maxScore: job.maxScore,
        });
      } catch (err) {
        log.error({ err, submissionId: job.submissionId }, 'sandbox failed');
        outcome = {
          ...INFRA_ERROR,
          message: 'The sandbox is unavailable; this submission does not count as an attempt.',
        };
      }
    }
    // Postgres may be down right now: keep trying until it is back, unless the job was handed back.
    let failures = 0;
    for (let backoff = 200; !abandoned.has(job.jobId); backoff = Math.min(backoff * 2, 5000)) {
      try {
        const recorded = await recordOutcome(db, job, outcome);
        if (recorded) {
          const seconds = (recorded.gradedAt.getTime() - job.createdAt.getTime()) / 1000;
          latency.observe(seconds);
          log.info(
            { submissionId: job.submissionId, status: outcome.status, latencyMs: seconds * 1000 },
            'graded',
          );
        } else {
          log.info({ submissionId: job.submissionId }, 'result superseded (regraded or taken over); ignored');
        }
        break;
      } catch (err) {
        log.warn(
          { err: (err as Error).message, submissionId: job.submissionId },
          'could not record; retrying',
        );
        // A verdict the database refuses for another reason than being down would be retried forever.
        if (!isDatabaseUnavailable(err) && ++failures >= 3)
          outcome = {
            ...INFRA_ERROR,
            message: 'The result could not be stored; this submission does not count as an attempt.',
          };
        await sleep(backoff);
      }
    }
    inflight.delete(job.jobId);
    abandoned.delete(job.jobId);
    nudge();
  }

  async function loop() {
    let backoff = 200;
    while (!stopping) {
      woken = false;
      const free = config.GRADER_CONCURRENCY - inflight.size;
      let claimed = 0;
      if (free > 0) {
        try {
          const jobs = await claimJobs(db, { limit: free, lockerPid: listener.backendPid(), leaseMs });
          backoff = 200;
          claimed = jobs.length;
          for (const job of jobs) {
            inflight.set(job.jobId, job);
            void run(job);
          }
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'cannot claim jobs (database unavailable?); retrying');
          await sleep(backoff);
          backoff = Math.min(backoff * 2, 5000);
          continue;
        }
      }
      // A full batch suggests more are waiting: claim again at once.
      if (free > 0 && claimed === free) continue;
      if (woken) continue;
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
  }, watchdogMs);
  // API instances stay free of background work; pruning from several graders at once is harmless.
  const housekeeping = setInterval(() => {
    pruneExpired(db)
      .then((pruned) => log.info({ pruned }, 'housekeeping'))
      .catch((err) => log.warn({ err: (err as Error).message }, 'housekeeping failed; will retry'));
  }, housekeepingMs);
  const looping = loop();
  log.info({ concurrency: config.GRADER_CONCURRENCY }, 'grader started');

  return {
    async stop() {
      if (stopping) return;
      stopping = true;
      nudge();
      await looping;
      const deadline = Date.now() + stopGraceMs;
      while (inflight.size > 0 && Date.now() < deadline) await sleep(50);
      if (inflight.size > 0) {
        const ids = [...inflight.keys()];
        for (const id of ids) abandoned.add(id);
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
      runningGraders -= 1;
      if (runningGraders === 0) await closeSandboxes();
      log.info('grader stopped');
    },
  };
}
