import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { constants, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  MAX_OUTPUT_CHARS,
  type RawOutcome,
  type SandboxJob,
  type SandboxRun,
  WATCHDOG_GRACE_MS,
} from '../sandbox.types.ts';

/*
 * CPython from the distribution, one process per submission, inside bubblewrap: new user, pid, net,
 * ipc, uts and mount namespaces (no network), only /usr (read-only) and a small private /tmp, no
 * /etc, /home or /proc, the host's uid 65534 (via setpriv when we are root) with no new privileges,
 * and rlimits set by the trusted harness before any student code (memory, CPU, processes, files).
 * The harness reports one JSON frame per line on fd 3; every frame re-arms a watchdog here, so a
 * program that ignores the harness's own SIGALRM (catching it, replacing the handler) is killed
 * after timeMs + WATCHDOG_GRACE_MS, its test fails, and the remaining tests resume in a new process.
 */

export interface PythonSandboxOptions {
  bwrap?: string;
  python?: string;
  setpriv?: string;
  /** Longest wait for the sandbox to start (the interpreter's first frame). */
  startupMs?: number;
}

const HARNESS = fileURLToPath(new URL('./harness.py', import.meta.url));

/**
 * bwrap runs as an unprivileged uid, which cannot read the harness where the project lives when that is
 * a root-only folder (a clone under /root). So the sandbox binds a copy in the system temp folder, named
 * by its content hash (a changed harness gets a new copy) and written atomically.
 */
function reachableHarness(): string {
  const source = readFileSync(HARNESS);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = path.join(tmpdir(), `lab-python-harness-${hash}`);
  const file = path.join(dir, 'harness.py');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    const staging = `${file}.${process.pid}.tmp`;
    writeFileSync(staging, source, { mode: 0o644 });
    renameSync(staging, file);
  }
  return file;
}
const MAX_FRAMES_BYTES = 32 * 1024 * 1024;
const MAX_STDERR_BYTES = 4096;
const TMPFS_BYTES = 16 * 1024 * 1024;
const SANDBOX_UID = '65534';
const HARNESS_STEP_MS = 3000;

export const INSTALL_HINT = 'install it with `apt-get install bubblewrap`';

type Frame =
  | { t: 'hello' }
  | { t: 'phase'; phase: 'load' | number }
  | ({ t: 'outcome'; index: number } & Record<string, unknown>)
  | { t: 'fatal'; message: string }
  | { t: 'done' };

interface Attempt {
  started: boolean;
  fatal: string | null;
  phase: 'load' | number | null;
  /** Inside a timed phase (student code running), as opposed to the harness's own work. */
  inPhase: boolean;
  killedByWatchdog: boolean;
  exit: string;
  stderr: string;
  spawnError: NodeJS.ErrnoException | null;
}

/** Mirrors the host's /bin, /lib, /lib64, /sbin: symlinks into /usr on merged-/usr systems. */
function rootLinks(): string[] {
  const args: string[] = [];
  for (const dir of ['bin', 'lib', 'lib64', 'sbin']) {
    const path = `/${dir}`;
    if (!existsSync(path)) continue;
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) args.push('--symlink', readlinkSync(path), path);
    else args.push('--ro-bind', path, path);
  }
  return args;
}

export class PythonSandbox {
  private readonly bwrap: string;
  private readonly python: string;
  private readonly setpriv: string | null;
  private readonly startupMs: number;
  private readonly harness = reachableHarness();

  constructor(options: PythonSandboxOptions = {}) {
    this.bwrap = options.bwrap ?? 'bwrap';
    this.python = options.python ?? '/usr/bin/python3';
    const setpriv = options.setpriv ?? '/usr/bin/setpriv';
    // As root, drop to the host's nobody before bwrap so that even the outer uid is unprivileged.
    this.setpriv = process.getuid?.() === 0 && existsSync(setpriv) ? setpriv : null;
    this.startupMs = options.startupMs ?? 10_000;
  }

  /** Why Python cannot be graded here, or null. */
  unavailable(): string | null {
    if (!existsSync(this.python))
      return `Python grading needs ${this.python}: install it with \`apt-get install python3\`.`;
    return null;
  }

  command(): { file: string; args: string[] } {
    const bwrapArgs = [
      '--unshare-all',
      '--unshare-user',
      '--disable-userns',
      '--die-with-parent',
      '--new-session',
      '--cap-drop',
      'ALL',
      '--clearenv',
      '--setenv',
      'PATH',
      '/usr/bin',
      '--setenv',
      'LANG',
      'C.UTF-8',
      '--ro-bind',
      '/usr',
      '/usr',
      ...rootLinks(),
      '--dev',
      '/dev',
      '--size',
      String(TMPFS_BYTES),
      '--tmpfs',
      '/tmp',
      '--ro-bind',
      this.harness,
      '/sandbox/harness.py',
      // The root and /dev are bwrap's own tmpfs mounts, unbounded in size: read-only, or a program
      // could fill the host's memory with files. Only the size-capped /tmp stays writable.
      '--remount-ro',
      '/dev',
      '--remount-ro',
      '/',
      '--chdir',
      '/tmp',
      '--uid',
      SANDBOX_UID,
      '--gid',
      SANDBOX_UID,
      '--',
      this.python,
      '-I',
      '-S',
      '-B',
      '/sandbox/harness.py',
    ];
    if (!this.setpriv) return { file: this.bwrap, args: bwrapArgs };
    return {
      file: this.setpriv,
      args: [
        `--reuid=${SANDBOX_UID}`,
        `--regid=${SANDBOX_UID}`,
        '--clear-groups',
        '--no-new-privs',
        '--',
        this.bwrap,
        ...bwrapArgs,
      ],
    };
  }

  async run(job: SandboxJob): Promise<SandboxRun> {
    const missing = this.unavailable();
    if (missing) return { kind: 'error', message: missing, infrastructure: true };
    const outcomes: Array<RawOutcome | undefined> = new Array(job.tests.length);
    let start = 0;
    while (start < job.tests.length) {
      const attempt = await this.attempt(job, start, outcomes);
      if (attempt.spawnError) {
        const what =
          attempt.spawnError.code === 'ENOENT'
            ? 'is not installed'
            : `failed (${attempt.spawnError.message})`;
        return {
          kind: 'error',
          message: `Python grading needs bubblewrap (bwrap), which ${what}: ${INSTALL_HINT}.`,
          infrastructure: true,
        };
      }
      if (!attempt.started) {
        const detail = attempt.stderr.trim() || attempt.exit;
        return {
          kind: 'error',
          message: `The Python sandbox could not start (${detail}). Check that bubblewrap works: ${INSTALL_HINT}.`,
          infrastructure: true,
        };
      }
      if (attempt.fatal !== null) return { kind: 'error', message: attempt.fatal, infrastructure: false };
      const next = outcomes.findIndex((o, i) => i >= start && o === undefined);
      if (next === -1) break;
      if (attempt.phase === 'load') {
        const message = attempt.killedByWatchdog
          ? `Loading the program took longer than the time limit (${job.timeMs} ms).`
          : `The program crashed while loading (${attempt.exit}).`;
        return { kind: 'error', message, infrastructure: false };
      }
      // The process ended without the outcome of test `next`: that test killed it.
      outcomes[next] =
        (attempt.killedByWatchdog && attempt.inPhase) || attempt.exit === 'signal SIGXCPU'
          ? { kind: 'timeout', durationMs: job.timeMs }
          : attempt.killedByWatchdog
            ? { kind: 'crashed', detail: 'the sandbox stopped responding', durationMs: 0 }
            : { kind: 'crashed', detail: `the process ended (${attempt.exit})`, durationMs: 0 };
      start = next + 1;
    }
    return { kind: 'ran', outcomes: outcomes as RawOutcome[] };
  }

  private attempt(
    job: SandboxJob,
    startIndex: number,
    outcomes: Array<RawOutcome | undefined>,
  ): Promise<Attempt> {
    const { file, args } = this.command();
    const state: Attempt = {
      started: false,
      fatal: null,
      phase: null,
      inPhase: false,
      killedByWatchdog: false,
      exit: '',
      stderr: '',
      spawnError: null,
    };
    const totalTimeMs = job.timeMs * (job.tests.length - startIndex + 1);
    const input = JSON.stringify({
      code: job.code,
      entrypoint: job.entrypoint,
      tests: job.tests,
      startIndex,
      timeMs: job.timeMs,
      memoryMb: job.memoryMb,
      cpuSeconds: Math.ceil(totalTimeMs / 1000) + 1,
    });
    return new Promise((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(file, args, { stdio: ['pipe', 'ignore', 'pipe', 'pipe'], detached: true });
      } catch (e) {
        state.spawnError = e as NodeJS.ErrnoException;
        resolve(state);
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const kill = () => {
        try {
          // bwrap runs in its own process group (detached); --die-with-parent takes the sandbox with it.
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      };
      const arm = (ms: number) => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          state.killedByWatchdog = true;
          kill();
        }, ms);
      };
      arm(this.startupMs);

      const onFrame = (frame: Frame) => {
        switch (frame.t) {
          case 'hello':
            state.started = true;
            break;
          case 'phase':
            state.phase = frame.phase;
            state.inPhase = true;
            break;
          case 'outcome': {
            state.inPhase = false;
            const outcome = readOutcome(frame);
            if (outcome && frame.index >= startIndex && frame.index < job.tests.length)
              outcomes[frame.index] = outcome;
            break;
          }
          case 'fatal':
            state.fatal = String(frame.message).slice(0, 2000);
            break;
        }
        // A phase gets its time limit; the harness's own work between phases (compiling, reporting)
        // gets a generous bound so that a stalled machine is not blamed on the student.
        if (state.started) arm(state.inPhase ? job.timeMs + WATCHDOG_GRACE_MS : HARNESS_STEP_MS);
      };

      let pending = '';
      let received = 0;
      const results = child.stdio[3] as NodeJS.ReadableStream;
      results.setEncoding('utf8');
      results.on('data', (chunk: string) => {
        received += chunk.length;
        if (received > MAX_FRAMES_BYTES) {
          kill();
          return;
        }
        pending += chunk;
        let newline = pending.indexOf('\n');
        while (newline !== -1) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          newline = pending.indexOf('\n');
          const frame = parseFrame(line);
          if (frame) onFrame(frame);
        }
      });
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        if (state.stderr.length < MAX_STDERR_BYTES)
          state.stderr += chunk.slice(0, MAX_STDERR_BYTES - state.stderr.length);
      });
      child.on('error', (e) => {
        state.spawnError = e as NodeJS.ErrnoException;
      });
      child.stdin!.on('error', () => {
        // The sandbox died before reading its job; the exit status tells why.
      });
      child.stdin!.end(input);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        state.exit = exitDescription(code, signal);
        resolve(state);
      });
    });
  }
}

/** bwrap reports a sandboxed process killed by signal N as exit code 128 + N. */
function exitDescription(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `signal ${signal}`;
  if (code !== null && code > 128) {
    const name = Object.entries(constants.signals).find(([, n]) => n === code - 128)?.[0];
    if (name) return `signal ${name}`;
  }
  return `exit code ${code}`;
}

function parseFrame(line: string): Frame | null {
  try {
    const value = JSON.parse(line) as unknown;
    if (typeof value !== 'object' || value === null || typeof (value as { t?: unknown }).t !== 'string')
      return null;
    return value as Frame;
  } catch {
    return null;
  }
}

function readOutcome(frame: Record<string, unknown>): RawOutcome | null {
  const durationMs = typeof frame.durationMs === 'number' && frame.durationMs >= 0 ? frame.durationMs : 0;
  switch (frame.kind) {
    case 'value':
      return typeof frame.json === 'string' ? { kind: 'value', json: frame.json, durationMs } : null;
    case 'stdout':
      return typeof frame.stdout === 'string'
        ? {
            kind: 'stdout',
            stdout: frame.stdout.slice(0, MAX_OUTPUT_CHARS),
            truncated: frame.truncated === true,
            durationMs,
          }
        : null;
    case 'raised':
      return { kind: 'raised', error: String(frame.error).slice(0, 2000), durationMs };
    case 'timeout':
      return { kind: 'timeout', durationMs };
    case 'memory':
      return { kind: 'memory', durationMs };
    default:
      return null;
  }
}
