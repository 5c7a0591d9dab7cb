import type { RawOutcome, SandboxJob, SandboxRun } from './sandbox.types.ts';

/** A timed phase of a job: loading the program (compiling it, and for call tests running it once), or test i. */
export type Phase = 'load' | number;

/** How one attempt ended: one Python box or one JavaScript worker, from a start test onwards. */
export type AttemptEnd =
  /** Every test from the start index has its outcome. */
  | { kind: 'done' }
  /** The program cannot run at all (syntax error, exception or missing entrypoint while loading). */
  | { kind: 'fatal'; message: string }
  /** The host stopped or lost the attempt during `phase`. */
  | { kind: 'stopped'; phase: Phase; why: 'time' | 'total' | 'memory' | 'crash'; detail: string }
  /** Not the student's doing: the sandbox is missing or broken. */
  | { kind: 'infrastructure'; message: string };

/**
 * The job's total time budget, as a stopwatch that runs only while the student's program has the
 * sandbox: waiting for a worker or for a box to start is the platform's time, not the submission's.
 */
export class Budget {
  private used = 0;
  private since: number | null = null;

  constructor(readonly totalMs: number) {}

  /** The sandbox is ready: the program's time starts; returns the absolute deadline (performance.now clock). */
  start(): number {
    this.since ??= performance.now();
    return performance.now() + this.left();
  }

  stop(): void {
    if (this.since === null) return;
    this.used += performance.now() - this.since;
    this.since = null;
  }

  left(): number {
    return this.totalMs - this.used - (this.since === null ? 0 : performance.now() - this.since);
  }
}

/**
 * Runs `attempt` from test 0, and again after each test that crashed its sandbox, until every test
 * has an outcome. Time belongs to the host: the attempt starts the job's Budget once its sandbox is
 * ready and stops every phase at its time limit or the budget's end, and a test that exceeds its time
 * limit ends the job (API v1.1: the remaining tests are not run, which bounds an endless loop's cost
 * to one time limit).
 */
export async function runAttempts(
  job: SandboxJob,
  attempt: (start: number, budget: Budget, outcomes: Array<RawOutcome | undefined>) => Promise<AttemptEnd>,
): Promise<SandboxRun> {
  const outcomes = new Array<RawOutcome | undefined>(job.tests.length);
  const budget = new Budget(job.totalMs);
  const skipFrom = (from: number, reason: 'timeout' | 'total') => {
    for (let i = from; i < outcomes.length; i++) outcomes[i] ??= { kind: 'skipped', reason };
  };
  let start = 0;
  while (start < job.tests.length) {
    if (budget.left() <= 0) {
      skipFrom(start, 'total');
      break;
    }
    let end: AttemptEnd;
    try {
      end = await attempt(start, budget, outcomes);
    } finally {
      budget.stop();
    }
    if (end.kind === 'fatal') return { kind: 'error', message: end.message, infrastructure: false };
    if (end.kind === 'infrastructure') return { kind: 'error', message: end.message, infrastructure: true };
    if (end.kind === 'done') {
      const missing = outcomes.findIndex((o, i) => i >= start && o === undefined);
      if (missing !== -1)
        return { kind: 'error', message: 'The sandbox lost a test result.', infrastructure: true };
      break;
    }
    if (end.phase === 'load') return { kind: 'error', message: loadFailure(job, end), infrastructure: false };
    const index = end.phase;
    if (end.why === 'time') {
      outcomes[index] = { kind: 'timeout', durationMs: job.timeMs };
      skipFrom(index + 1, 'timeout');
      break;
    }
    if (end.why === 'total') {
      skipFrom(index, 'total');
      break;
    }
    outcomes[index] =
      end.why === 'memory'
        ? { kind: 'memory', durationMs: 0 }
        : { kind: 'crashed', detail: end.detail, durationMs: 0 };
    start = index + 1;
  }
  return { kind: 'ran', outcomes: outcomes as RawOutcome[] };
}

function loadFailure(job: SandboxJob, end: { why: string; detail: string }): string {
  switch (end.why) {
    case 'time':
      return `Loading the program took longer than the time limit (${job.timeMs} ms).`;
    case 'total':
      return `Loading the program used up the submission's total grading time (${job.totalMs / 1000} s).`;
    case 'memory':
      return `The program ran out of memory while loading (limit ${job.memoryMb} MB).`;
    default:
      return `The program crashed while loading (${end.detail}).`;
  }
}
