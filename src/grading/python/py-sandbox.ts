import { readFileSync } from 'node:fs';
import pLimit, { type LimitFunction } from 'p-limit';
import pino from 'pino';
import {
  type IsolationLayer,
  MAX_OUTPUT_CHARS,
  MAX_SHOWN_OUTPUT,
  type RawOutcome,
  type Sandbox,
  type SandboxJob,
  type SandboxRun,
  WATCHDOG_GRACE_MS,
} from '../sandbox.types.ts';
import { type AttemptEnd, type Budget, runAttempts } from '../sandbox-runner.ts';
import { type Answer, Box, type Frame, INTERPRETER_MB, type Unanswered } from './box.ts';
import type { BoxCgroup } from './cgroups.ts';
import { detectIsolation, type Isolation, type IsolationOptions, type Tools } from './isolation.ts';

/*
 * CPython from the distribution, in a fresh box per submission (box.ts), its isolation layers found
 * once (isolation.ts). The host drives the harness one request at a time (harness.py): it sends a
 * test's inputs only when that test runs, times every request itself with a timer nothing in the box
 * can re-arm, judges the raw reply on this side, and kills the box — checking that nothing of it is
 * left — before the verdict is recorded.
 */

export interface PythonSandboxOptions extends Partial<Tools>, Partial<IsolationOptions> {
  /** Longest wait for a box to start (the interpreter's first frame). */
  startupMs?: number;
  /**
   * Boxes this sandbox starts at once (spawn to the interpreter's first frame, before any student code
   * runs); the programs themselves run up to the grader's concurrency. Default 1: on the reference VM
   * starting processes does not run in parallel, and overlapping starts only burn CPU (docs/perf/python-boxes.md).
   */
  startsAtOnce?: number;
  log?: pino.Logger;
}

const HARNESS = new URL('./harness.py', import.meta.url);
/** Extra memory for the cgroup over the rlimits: bubblewrap, the size-capped /tmp, page tables. */
const CGROUP_SLACK_MB = 64;

export class PythonSandbox implements Sandbox {
  readonly language = 'python';
  private readonly tools: Tools;
  private readonly isolationOptions: IsolationOptions;
  private readonly startupMs: number;
  private readonly harness = readFileSync(HARNESS);
  private readonly log: pino.Logger;
  private readonly starts: LimitFunction;
  private detected: Promise<Isolation> | null = null;
  /** Boxes whose processes could not all be killed (never seen; logged and counted for doctor). */
  uncleared = 0;
  /** Boxes between spawn and their first frame now, and the most there have been at once. */
  starting = 0;
  mostStartingAtOnce = 0;
  private boxes = 0;

  constructor(options: PythonSandboxOptions = {}) {
    this.tools = {
      bwrap: options.bwrap ?? 'bwrap',
      python: options.python ?? '/usr/bin/python3',
      setpriv: options.setpriv ?? '/usr/bin/setpriv',
      prlimit: options.prlimit ?? '/usr/bin/prlimit',
      seccompPython: options.seccompPython ?? '/usr/bin/python3',
    };
    this.isolationOptions = {
      uidBase: options.uidBase ?? 61_000,
      uidCount: options.uidCount ?? 1000,
      cgroups: options.cgroups ?? 'auto',
      lockDir: options.lockDir ?? '/run/lab-sandbox/uids',
    };
    this.startupMs = options.startupMs ?? 10_000;
    this.log = options.log ?? pino({ level: 'warn', name: 'python-sandbox' });
    this.starts = pLimit(options.startsAtOnce ?? 1);
  }

  /** The isolation layers, found on first use. */
  layers(): Promise<Isolation> {
    this.detected ??= detectIsolation(this.tools, this.isolationOptions);
    return this.detected;
  }

  async warm(): Promise<void> {
    await this.layers();
  }

  async unavailable(): Promise<string | null> {
    return (await this.layers()).refusal;
  }

  async isolation(): Promise<IsolationLayer[]> {
    return (await this.layers()).layers;
  }

  async run(job: SandboxJob): Promise<SandboxRun> {
    const isolation = await this.layers();
    if (isolation.refusal) return { kind: 'error', message: isolation.refusal, infrastructure: true };
    return runAttempts(job, (start, budget, outcomes) =>
      this.attempt(isolation, job, start, budget, outcomes),
    );
  }

  async close(): Promise<void> {}

  private async attempt(
    isolation: Isolation,
    job: SandboxJob,
    start: number,
    budget: Budget,
    outcomes: Array<RawOutcome | undefined>,
  ): Promise<AttemptEnd> {
    const uid = isolation.uids?.acquire((stale) => this.clearStale(isolation, stale)) ?? null;
    if (isolation.uids && uid === null)
      return {
        kind: 'infrastructure',
        message: 'Every Python box uid is in use; the grader is overcommitted.',
      };
    // Assigned inside the start limiter's callback, which narrowing does not follow.
    let box = null as Box | null;
    let cgroup: BoxCgroup | null = null;
    let cleared = true;
    try {
      cgroup =
        isolation.cgroups?.create(`box-${uid ?? `${process.pid}-${++this.boxes}`}`, {
          memoryBytes: (job.memoryMb + INTERPRETER_MB + CGROUP_SLACK_MB) * 1024 * 1024,
          pids: 4,
        }) ?? null;
      const spec = {
        tools: this.tools,
        harness: this.harness,
        seccomp: isolation.seccomp!,
        memoryMb: job.memoryMb,
        cpuSeconds: Math.ceil(job.totalMs / 1000) + 1,
        uid,
        cgroup,
      };
      const started = await this.starts(async () => {
        const b = new Box(spec);
        box = b;
        return { box: b, hello: await this.started(b) };
      });
      return await this.drive(started.box, started.hello, job, start, budget, outcomes);
    } catch (e) {
      return { kind: 'infrastructure', message: `The Python sandbox failed: ${(e as Error).message}` };
    } finally {
      if (box) {
        const closed = await box.close();
        cleared = closed.cleared;
        if (!closed.cleared || closed.leftovers > 0) {
          if (!closed.cleared) this.uncleared++;
          this.log.error({ uid, ...closed }, 'processes of a finished Python box were still alive');
        }
      }
      // A uid whose box could not be emptied stays locked, so no new box shares it. Without per-box
      // uids, each box had a cgroup of its own name: removed.
      if (uid === null && cleared) cgroup?.remove();
      if (uid !== null && cleared) isolation.uids!.release(uid);
    }
  }

  /** Waits for the box's first frame, counting the boxes starting at once. */
  private async started(box: Box): Promise<Answer> {
    this.starting += 1;
    this.mostStartingAtOnce = Math.max(this.mostStartingAtOnce, this.starting);
    try {
      return await box.started(this.startupMs);
    } finally {
      this.starting -= 1;
    }
  }

  private async drive(
    box: Box,
    hello: Answer,
    job: SandboxJob,
    start: number,
    budget: Budget,
    outcomes: Array<RawOutcome | undefined>,
  ): Promise<AttemptEnd> {
    // Starting the interpreter is the platform's time; the program's starts with its first request.
    if (hello.kind !== 'frame') {
      if (box.spawnError?.code === 'ENOENT')
        return { kind: 'infrastructure', message: `The Python sandbox is missing ${box.spawnError.path}.` };
      const detail = box.stderr.trim() || (hello.kind === 'ended' ? hello.exit : 'no answer');
      return {
        kind: 'infrastructure',
        message: `The Python sandbox could not start (${detail.slice(0, 500)}).`,
      };
    }
    const deadline = budget.start();
    const stopped = (phase: 'load' | number, answer: Unanswered, limited: boolean): AttemptEnd =>
      answer.kind === 'timeout'
        ? ({ kind: 'stopped', phase, why: limited ? 'total' : 'time', detail: '' } as const)
        : ({
            kind: 'stopped',
            phase,
            why: box.oomKilled() ? 'memory' : 'crash',
            detail: `the process ended (${answer.exit})`,
          } as const);
    const phaseBudget = () => {
      const left = deadline - performance.now();
      const limit = job.timeMs + WATCHDOG_GRACE_MS;
      return { ms: Math.min(limit, left), limited: left < limit };
    };

    const module = job.tests.slice(start).some((t) => t.kind === 'call');
    let b = phaseBudget();
    const loaded = await box.ask({ op: 'load', code: job.code, entrypoint: job.entrypoint, module }, b.ms);
    if (loaded.kind !== 'frame') return stopped('load', loaded, b.limited);
    if (loaded.frame.t === 'fatal')
      return { kind: 'fatal', message: String(loaded.frame.message).slice(0, 2500) };

    for (let index = start; index < job.tests.length; index++) {
      const test = job.tests[index]!;
      b = phaseBudget();
      if (b.ms <= 0) return { kind: 'stopped', phase: index, why: 'total', detail: '' };
      const request =
        test.kind === 'call'
          ? { op: 'test', kind: 'call', args: test.argsJson }
          : { op: 'test', kind: 'io', stdin: test.stdin };
      const answer = await box.ask(request, b.ms);
      if (answer.kind !== 'frame') return stopped(index, answer, b.limited);
      outcomes[index] = readOutcome(answer.frame, answer.durationMs, test.kind);
    }
    return { kind: 'done' };
  }

  private clearStale(isolation: Isolation, uid: number) {
    // The box of a grader that died: its processes went with it (--die-with-parent), but check.
    void isolation.cgroups?.emptyLeftover(`box-${uid}`);
  }
}

function printed(frame: Frame): { text: string; size: number } | undefined {
  if (typeof frame.output !== 'string') return undefined;
  const size = typeof frame.outputSize === 'number' ? frame.outputSize : frame.output.length;
  return { text: frame.output.slice(0, MAX_SHOWN_OUTPUT), size };
}

/** The harness's reply as a raw observation; a reply of the wrong shape is the program's doing. */
function readOutcome(frame: Frame, durationMs: number, kind: 'call' | 'io'): RawOutcome {
  const shown = printed(frame);
  switch (frame.kind) {
    case 'value':
      if (kind === 'call' && typeof frame.json === 'string')
        return { kind: 'value', json: frame.json, durationMs, printed: shown };
      break;
    case 'stdout':
      if (kind === 'io' && typeof frame.stdout === 'string')
        return {
          kind: 'stdout',
          stdout: frame.stdout.slice(0, MAX_OUTPUT_CHARS),
          truncated: frame.truncated === true,
          durationMs,
        };
      break;
    case 'raised':
      return { kind: 'raised', error: String(frame.error).slice(0, 2000), durationMs, printed: shown };
    case 'memory':
      return { kind: 'memory', durationMs, printed: shown };
  }
  return { kind: 'crashed', detail: 'the program interfered with the grader', durationMs };
}
