import { drizzle } from 'drizzle-orm/node-postgres';
import pRetry from 'p-retry';
import pino from 'pino';
import client from 'prom-client';
import type { Config } from '../config.ts';
import { JOBS_CHANNEL } from '../contracts/channels.ts';
import type { Db } from '../db/client.ts';
import { isDatabaseUnavailable, isPoolBusy } from '../db/errors.ts';
import { pruneExpired } from '../db/housekeeping.ts';
import { type Listener, startListener } from '../db/listener.ts';
import { BoundedPool } from '../db/pool.ts';
import { recordWritePositions } from '../db/replicas.ts';
import * as schema from '../db/schema/index.ts';
import { grade, runProgram } from './grade.ts';
import type { GradeOutcome } from './grading.types.ts';
import {
  type ClaimedJob,
  claimJobs,
  jobRetryDelayMs,
  recordOutcome,
  releaseJobs,
  releaseOrphanedJobs,
  renewLeases,
  retryLater,
} from './queue.ts';
import { createGradingLatency } from './queue-metrics.ts';
import { createSandboxes, type Sandboxes } from './sandboxes.ts';

/*
 * A grader: claim → run → record. The claim loop takes as many jobs from the queue as there are free
 * slots (woken by NOTIFY, polling as a fallback); each job is run in its language's sandbox; its
 * verdict is recorded once — or, when the platform failed (the sandbox could not run it), the job goes
 * back to the queue with a backoff (run_at) until it has been tried `maxTries` times, and then ends
 * `error` without using an attempt. While Postgres is down the grader keeps retrying, never crashes.
 */

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
  /** Sandboxes to grade in (created from the config by the caller); without them the grader creates its own and closes them on stop. */
  sandboxes?: Sandboxes;
  registry?: client.Registry;
}

export const GAVE_UP_MESSAGE =
  'Grading failed repeatedly for reasons outside your code (a grader stopped mid-job). ' +
  'This submission does not count as an attempt; submit again.';

type Verdict = GradeOutcome & { output?: string | null };

/** What running a claimed job came to: a verdict to record, or the platform's failure, to try again later. */
export type JobResult =
  | { kind: 'verdict'; verdict: Verdict }
  | { kind: 'retry'; delayMs: number; reason: string };

const infrastructureError = (message: string): Verdict => ({
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
 * run: a claimed job's verdict, from its language's sandbox; never throws. A run with an input runs the
 * program once on it; a student's run runs the visible tests only (v1.1); a submission, or a staff run,
 * every test. A sandbox that refuses to grade on this host (an essential isolation layer is missing)
 * gives its reason at once; any other failure of the platform is retried with JOB_RETRY's backoff
 * until the job has been claimed `maxTries` times.
 */
export async function runJob(
  sandboxes: Sandboxes,
  job: ClaimedJob,
  opts: { totalMs: number; maxTries: number; log?: pino.Logger },
): Promise<JobResult> {
  const verdict = (v: Verdict): JobResult => ({ kind: 'verdict', verdict: v });
  if (job.attempts > opts.maxTries) return verdict(infrastructureError(GAVE_UP_MESSAGE));
  const sandbox = sandboxes[job.language];
  let outcome: Verdict;
  try {
    const refusal = await sandbox.unavailable();
    if (refusal) return verdict(infrastructureError(refusal));
    outcome = await runInSandbox(sandboxes, job, opts.totalMs);
  } catch (err) {
    opts.log?.error({ err, [job.kind]: job.targetId }, 'sandbox failed');
    outcome = infrastructureError('The sandbox is unavailable.');
  }
  if (!(outcome.status === 'error' && outcome.infrastructure)) return verdict(outcome);
  const reason = outcome.message ?? 'the sandbox failed';
  if (job.attempts >= opts.maxTries)
    return verdict(
      infrastructureError(
        `Grading failed ${job.attempts} times for reasons outside your code (${reason}). ` +
          'This submission does not count as an attempt; submit again.',
      ),
    );
  return { kind: 'retry', delayMs: jobRetryDelayMs(job.attempts), reason };
}

async function runInSandbox(sandboxes: Sandboxes, job: ClaimedJob, totalMs: number): Promise<Verdict> {
  if (job.kind === 'run' && job.stdin !== null)
    return runProgram(sandboxes, {
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
  return grade(sandboxes, {
    language: job.language,
    code: job.code,
    entrypoint: job.entrypoint,
    tests,
    limits: job.limits,
    maxScore: job.maxScore,
    totalMs,
  });
}

/**
 * record: stores a verdict, retrying with backoff while Postgres is unavailable, until it is stored or
 * the job is handed back (`signal`). A verdict refused for another reason is replaced by an
 * infrastructure error after three tries rather than retried forever. Null when nothing was stored
 * (superseded, or handed back).
 */
async function recordVerdict(
  db: Db,
  job: ClaimedJob,
  verdict: Verdict,
  signal: AbortSignal,
  log: pino.Logger,
) {
  let outcome = verdict;
  let refusals = 0;
  return pRetry(() => recordOutcome(db, job, outcome), {
    ...DB_BACKOFF,
    signal,
    onFailedAttempt: (err) => {
      log.warn({ err: err.message, job: job.targetId }, 'could not record; retrying');
      // Down or busy, the database may take it later; only a refusal of the write itself counts.
      if (!isDatabaseUnavailable(err) && !isPoolBusy(err) && ++refusals >= 3)
        outcome = infrastructureError(
          'The result could not be stored; this submission does not count as an attempt.',
        );
    },
  }).catch(() => null);
}

/** record, the platform's failure: the job back to the queue after `delayMs`; false if it was not handed back. */
async function requeue(db: Db, job: ClaimedJob, delayMs: number, signal: AbortSignal, log: pino.Logger) {
  return pRetry(() => retryLater(db, job, delayMs), {
    ...DB_BACKOFF,
    signal,
    onFailedAttempt: (err) =>
      log.warn({ err: err.message, job: job.targetId }, 'could not requeue; retrying'),
  }).catch(() => false);
}

/** Wakes the claim loop; a nudge while the loop is busy is remembered, so it does not then sleep a whole poll. */
class Wakeup {
  private pending = false;
  private wake: (() => void) | null = null;

  readonly nudge = () => {
    this.pending = true;
    this.wake?.();
  };

  /** Whether a nudge came since the last call (and forgets it). */
  take(): boolean {
    const pending = this.pending;
    this.pending = false;
    return pending;
  }

  /** Until the next nudge, or `ms`. */
  async wait(ms: number): Promise<void> {
    if (this.pending) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = null;
  }
}

interface Settings {
  leaseMs: number;
  maxTries: number;
  pollMs: number;
  stopGraceMs: number;
}

class Grader {
  private stopping = false;
  private readonly wakeup = new Wakeup();
  private readonly inflight = new Map<number, AbortController>();
  private readonly timers: NodeJS.Timeout[] = [];
  private looping: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: Config,
    private readonly settings: Settings,
    private readonly db: Db,
    private readonly listener: Listener,
    private readonly sandboxes: Sandboxes,
    private readonly log: pino.Logger,
    private readonly latency: { observe(seconds: number): void },
  ) {}

  get nudge() {
    return this.wakeup.nudge;
  }

  start(options: GraderOptions) {
    this.timers.push(
      setInterval(() => void this.renew(), this.settings.leaseMs / 3),
      setInterval(() => void this.freeOrphans(), options.watchdogMs ?? 1000),
      // API instances stay free of background work; pruning from several graders at once is harmless.
      setInterval(() => void this.housekeeping(), options.housekeepingMs ?? 5 * 60_000),
    );
    this.looping = this.loop();
  }

  renew() {
    return renewLeases(
      this.db,
      [...this.inflight.keys()],
      this.settings.leaseMs,
      this.listener.backendPid(),
    ).catch((err) => this.log.warn({ err: (err as Error).message }, 'could not renew leases'));
  }

  /** Claims up to `free` jobs, retrying while the database is down; none while the LISTEN connection is. */
  private async claim(free: number): Promise<ClaimedJob[]> {
    // A claim names the LISTEN backend as its locker, which is how a vanished grader's jobs are
    // noticed: while that connection is down, claim nothing (only the lease would free them).
    if (free <= 0 || this.listener.backendPid() === null) return [];
    return pRetry(
      () =>
        claimJobs(this.db, {
          limit: free,
          lockerPid: this.listener.backendPid(),
          leaseMs: this.settings.leaseMs,
        }),
      {
        ...DB_BACKOFF,
        shouldRetry: () => !this.stopping,
        onFailedAttempt: (err) =>
          this.log.warn({ err: err.message }, 'cannot claim jobs (database unavailable?); retrying'),
      },
    ).catch(() => []);
  }

  /** run → record, for one claimed job. */
  private async handle(job: ClaimedJob, handBack: AbortController) {
    const result = await runJob(this.sandboxes, job, {
      totalMs: this.config.GRADING_MAX_SUBMISSION_MS,
      maxTries: this.settings.maxTries,
      log: this.log,
    });
    if (result.kind === 'retry') {
      const requeued = await requeue(this.db, job, result.delayMs, handBack.signal, this.log);
      if (requeued) {
        this.log.warn(
          { [job.kind]: job.targetId, reason: result.reason, retryInMs: result.delayMs },
          'requeued',
        );
        // Claimable again after the delay: look then rather than at the next poll.
        setTimeout(this.wakeup.nudge, result.delayMs).unref();
      }
    } else {
      await this.record(job, result.verdict, handBack);
    }
    this.inflight.delete(job.jobId);
    this.wakeup.nudge();
  }

  private async record(job: ClaimedJob, verdict: Verdict, handBack: AbortController) {
    const recorded = await recordVerdict(this.db, job, verdict, handBack.signal, this.log);
    if (!recorded) {
      if (!handBack.signal.aborted)
        this.log.info({ [job.kind]: job.targetId }, 'result superseded (regraded or taken over); ignored');
      return;
    }
    // With read replicas, the author's next reads wait for a replica that has this verdict.
    if (this.config.DATABASE_READ_URL)
      await recordWritePositions(this.db, [job.userId]).catch((err) =>
        this.log.warn({ err: (err as Error).message }, 'could not record the write position'),
      );
    const seconds = (recorded.gradedAt.getTime() - job.createdAt.getTime()) / 1000;
    this.latency.observe(seconds);
    this.log.info({ [job.kind]: job.targetId, status: verdict.status, latencyMs: seconds * 1000 }, 'graded');
  }

  private async loop() {
    while (!this.stopping) {
      this.wakeup.take();
      const free = this.config.GRADER_CONCURRENCY - this.inflight.size;
      const jobs = await this.claim(free);
      for (const job of jobs) {
        const handBack = new AbortController();
        this.inflight.set(job.jobId, handBack);
        void this.handle(job, handBack);
      }
      // A full batch suggests more are waiting: claim again at once.
      if (this.stopping || (free > 0 && jobs.length === free)) continue;
      await this.wakeup.wait(this.settings.pollMs);
    }
  }

  private async freeOrphans() {
    const n = await releaseOrphanedJobs(this.db).catch(() => 0);
    if (n > 0) {
      this.log.warn({ jobs: n }, 'requeued jobs of a grader that vanished');
      this.wakeup.nudge();
    }
  }

  private async housekeeping() {
    await pruneExpired(this.db)
      .then((pruned) => this.log.info({ pruned }, 'housekeeping'))
      .catch((err) => this.log.warn({ err: (err as Error).message }, 'housekeeping failed; will retry'));
  }

  /** Stops claiming, waits up to stopGraceMs for running jobs, hands the rest back to the queue. */
  async stop() {
    this.stopping = true;
    this.wakeup.nudge();
    await this.looping;
    const deadline = Date.now() + this.settings.stopGraceMs;
    while (this.inflight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (this.inflight.size > 0) {
      const ids = [...this.inflight.keys()];
      for (const handBack of this.inflight.values()) handBack.abort();
      await releaseJobs(this.db, ids).catch((err) =>
        this.log.warn(
          { err: (err as Error).message },
          'could not hand back jobs; the watchdog of another grader will',
        ),
      );
    }
    for (const timer of this.timers) clearInterval(timer);
  }
}

/**
 * Starts a grader against `databaseUrl`: GRADER_POOL_MAX connections (its LISTEN connection and a pool
 * for claims and results), up to GRADER_CONCURRENCY jobs at once in `options.sandboxes`.
 */
export async function startGrader(
  config: Config,
  databaseUrl: string,
  options: GraderOptions = {},
): Promise<{ stop(): Promise<void> }> {
  const settings: Settings = {
    leaseMs: options.leaseMs ?? 30_000,
    maxTries: options.maxTries ?? 3,
    pollMs: options.pollMs ?? 2000,
    stopGraceMs: options.stopGraceMs ?? 10_000,
  };
  const name = `lab:${config.INSTANCE_NAME || `grader-${process.pid}`}`;
  const log = pino({ level: config.LOG_LEVEL, name });
  const latency = createGradingLatency(options.registry ?? new client.Registry());
  const sandboxes = options.sandboxes ?? createSandboxes(config, { log });
  await sandboxes.warm();

  const pool = new BoundedPool({
    connectionString: databaseUrl,
    max: Math.max(1, config.GRADER_POOL_MAX - 1),
    acquireTimeoutMs: 10_000,
    maxWaiting: 10_000,
    statementTimeoutMs: config.DB_STATEMENT_TIMEOUT_MS,
    applicationName: name,
  });
  const db = drizzle(pool, { schema });

  let grader: Grader | null = null;
  let connected: () => void = () => {};
  const listener = startListener({
    url: databaseUrl,
    channels: { [JOBS_CHANNEL]: () => grader?.nudge() },
    applicationName: name,
    onConnect: () => {
      connected();
      void grader?.renew();
      grader?.nudge();
    },
    onError: (err) => {
      connected();
      log.warn({ err: (err as Error).message }, 'jobs listener disconnected; reconnecting');
    },
  });
  grader = new Grader(config, settings, db, listener, sandboxes, log, latency);
  // Claims name the LISTEN backend as their locker, so start claiming once it is known (or known down).
  await new Promise<void>((resolve) => {
    connected = resolve;
  });
  grader.start(options);
  log.info({ concurrency: config.GRADER_CONCURRENCY }, 'grader started');

  let stopped: Promise<void> | null = null;
  return {
    stop() {
      stopped ??= (async () => {
        await grader.stop();
        await listener.stop();
        await pool.end().catch(() => {});
        if (!options.sandboxes) await sandboxes.close();
        log.info('grader stopped');
      })();
      return stopped;
    },
  };
}
