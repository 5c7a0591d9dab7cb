import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { type BoxCgroup, processesOfUid, type Reaped, reap } from './cgroups.ts';
import { boxNamespaceArgs, type Tools } from './isolation.ts';

/*
 * One Python box: a process tree started as
 *   [sh: join the box's cgroups] → prlimit (rlimits for every process) → setpriv (the box's uid,
 *   no new privileges) → bwrap (namespaces, seccomp, --as-pid-1) → python3 harness.py
 * so that every process of the box, bubblewrap's own included, carries the limits, and the
 * harness is PID 1 of the box's pid namespace: killing it ends the namespace and everything in it.
 * The harness source and the seccomp filter reach bubblewrap on file descriptors (no shared file).
 */

const MAX_FRAMES_BYTES = 32 * 1024 * 1024;
const MAX_STDERR_BYTES = 4096;
const TMPFS_BYTES = 16 * 1024 * 1024;
const MB = 1024 * 1024;
/** Headroom over the student's memory limit for the interpreter itself (about 8 MB at start). */
export const INTERPRETER_MB = 24;
/** Address space for the interpreter's code and shared libraries (about 15 MB mapped at start). */
const MAPPINGS_MB = 64;
const INSIDE_UID = '65534';

// Writes its own pid into each cgroup.procs file named before `--`, then becomes the next command.
const JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';

export interface BoxSpec {
  tools: Tools;
  harness: Buffer;
  seccomp: Buffer;
  memoryMb: number;
  cpuSeconds: number;
  uid: number | null;
  cgroup: BoxCgroup | null;
}

export type Frame = { t: string; n?: string } & Record<string, unknown>;

export type Unanswered = { kind: 'timeout' } | { kind: 'ended'; exit: string };
export type Answer = { kind: 'frame'; frame: Frame; durationMs: number } | Unanswered;

export function boxCommand(spec: BoxSpec): { file: string; args: string[] } {
  const data = (spec.memoryMb + INTERPRETER_MB) * MB;
  const prlimit = [
    spec.tools.prlimit,
    `--as=${data + MAPPINGS_MB * MB}`,
    `--data=${data}`,
    `--cpu=${spec.cpuSeconds}:${spec.cpuSeconds + 1}`,
    '--nofile=32',
    `--fsize=${MB}`,
    '--core=0',
    '--memlock=0',
    '--msgqueue=0',
    // Per uid: bubblewrap's monitor and the harness, nothing more. Only meaningful with a box's own uid.
    ...(spec.uid !== null ? ['--nproc=2'] : []),
    '--',
  ];
  const setpriv = [
    spec.tools.setpriv,
    ...(spec.uid !== null ? [`--reuid=${spec.uid}`, `--regid=${spec.uid}`, '--clear-groups'] : []),
    '--no-new-privs',
    '--',
  ];
  const bwrap = [
    spec.tools.bwrap,
    ...boxNamespaceArgs(),
    '--setenv',
    'PATH',
    '/usr/bin',
    '--setenv',
    'LANG',
    'C.UTF-8',
    '--dev',
    '/dev',
    '--size',
    String(TMPFS_BYTES),
    '--tmpfs',
    '/tmp',
    '--ro-bind-data',
    '4',
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
    INSIDE_UID,
    '--gid',
    INSIDE_UID,
    '--seccomp',
    '5',
    '--info-fd',
    '6',
    '--',
    spec.tools.python,
    '-I',
    '-S',
    '-B',
    '/sandbox/harness.py',
    String(spec.memoryMb),
  ];
  const chain = [...prlimit, ...setpriv, ...bwrap];
  if (!spec.cgroup) return { file: chain[0]!, args: chain.slice(1) };
  return { file: '/bin/sh', args: ['-c', JOIN_CGROUPS, 'sh', ...spec.cgroup.procsFiles, '--', ...chain] };
}

/** bwrap reports a sandboxed process killed by signal N as exit code 128 + N. */
export function exitDescription(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `signal ${signal}`;
  if (code !== null && code > 128) {
    const name = Object.entries(constants.signals).find(([, n]) => n === code - 128)?.[0];
    if (name) return `signal ${name}`;
  }
  return `exit code ${code}`;
}

export class Box {
  private readonly child: ChildProcess;
  private waiter: {
    nonce: string | null;
    type: string | null;
    started: number;
    done: (a: Answer) => void;
  } | null = null;
  private pending = '';
  private received = 0;
  /** The harness's pid on the host (PID 1 of the box), from bwrap's --info-fd. */
  private innerPid: number | null = null;
  private exited: string | null = null;
  private readonly closed: Promise<void>;
  stderr = '';
  spawnError: NodeJS.ErrnoException | null = null;

  constructor(private readonly spec: BoxSpec) {
    const { file, args } = boxCommand(spec);
    this.child = spawn(file, args, {
      stdio: ['pipe', 'ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    this.closed = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.exited ??= exitDescription(code, signal);
        this.settle({ kind: 'ended', exit: this.exited });
        resolve();
      });
    });
    this.child.on('error', (e) => {
      this.spawnError = e as NodeJS.ErrnoException;
      this.exited ??= `spawn failed: ${e.message}`;
      this.settle({ kind: 'ended', exit: this.exited });
    });
    const [stdin, , stderr, results, harness, seccomp, info] = this.child.stdio as unknown as [
      Writable,
      null,
      Readable,
      Readable,
      Writable,
      Writable,
      Readable,
    ];
    for (const s of [stdin, harness, seccomp]) s.on('error', () => {});
    harness.end(spec.harness);
    seccomp.end(spec.seccomp);
    let infoText = '';
    info.setEncoding('utf8');
    info.on('data', (chunk: string) => {
      infoText += chunk;
    });
    info.on('end', () => {
      const pid = /"child-pid":\s*(\d+)/.exec(infoText)?.[1];
      if (pid) this.innerPid = Number(pid);
    });
    info.on('error', () => {});
    stderr.setEncoding('utf8');
    stderr.on('data', (chunk: string) => {
      if (this.stderr.length < MAX_STDERR_BYTES)
        this.stderr += chunk.slice(0, MAX_STDERR_BYTES - this.stderr.length);
    });
    results.setEncoding('utf8');
    results.on('data', (chunk: string) => this.onData(chunk));
    results.on('error', () => {});
  }

  /** Waits for the harness's first frame (sent before any student code runs). */
  started(ms: number): Promise<Answer> {
    return this.await(null, 'hello', ms);
  }

  /** Sends one request and waits for the reply carrying its nonce, at most `ms` milliseconds. */
  ask(request: Record<string, unknown>, ms: number): Promise<Answer> {
    const nonce = randomBytes(12).toString('hex');
    const answer = this.await(nonce, null, ms);
    if (this.exited === null)
      (this.child.stdin as Writable).write(`${JSON.stringify({ ...request, n: nonce })}\n`);
    return answer;
  }

  private await(nonce: string | null, type: string | null, ms: number): Promise<Answer> {
    if (this.exited !== null) return Promise.resolve({ kind: 'ended', exit: this.exited });
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle({ kind: 'timeout' }), Math.max(0, ms));
      this.waiter = {
        nonce,
        type,
        started: performance.now(),
        done: (a) => {
          clearTimeout(timer);
          resolve(a);
        },
      };
    });
  }

  private settle(answer: Answer) {
    const w = this.waiter;
    this.waiter = null;
    w?.done(answer);
  }

  private onData(chunk: string) {
    this.received += chunk.length;
    if (this.received > MAX_FRAMES_BYTES) {
      this.kill();
      return;
    }
    this.pending += chunk;
    for (let nl = this.pending.indexOf('\n'); nl !== -1; nl = this.pending.indexOf('\n')) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      const w = this.waiter;
      if (!w) continue;
      let frame: Frame;
      try {
        frame = JSON.parse(line) as Frame;
      } catch {
        continue;
      }
      // Only the reply to the current request counts: anything else the program wrote is ignored.
      if (typeof frame !== 'object' || frame === null) continue;
      if (w.nonce !== null ? frame.n !== w.nonce : frame.t !== w.type) continue;
      this.settle({ kind: 'frame', frame, durationMs: performance.now() - w.started });
    }
  }

  /** Whether the memory cgroup's OOM killer struck this box (only while its cgroup exists). */
  oomKilled(): boolean {
    return (this.spec.cgroup?.oomKills() ?? 0) > 0;
  }

  /**
   * Kills the box's PID 1 (the harness), which ends its pid namespace; bubblewrap's monitor then
   * reaps it and exits. Killing the monitor as well would leave PID 1 to the host's init to reap,
   * and until then the zombie still counts against the uid's process limit.
   */
  private kill() {
    if (this.innerPid !== null) signal(this.innerPid);
    else if (this.child.pid) signal(-this.child.pid);
  }

  /**
   * Ends the box and checks that nothing of it is alive: its cgroups are empty, or no
   * process runs as its uid, or at least its PID 1 is gone; anything found is killed. Also tells
   * whether the memory cgroup's OOM killer struck (visible only before the cgroup is removed).
   */
  async close(): Promise<Reaped & { oomKilled: boolean }> {
    this.kill();
    if (!(await settled(this.closed, 2000)) && this.child.pid) {
      // The box never told us its PID 1 (it failed while starting) or it did not end: take the whole group.
      signal(-this.child.pid);
      await settled(this.closed, 3000);
    }
    const oomKilled = (this.spec.cgroup?.oomKills() ?? 0) > 0;
    const uid = this.spec.uid;
    let reaped: Reaped;
    if (this.spec.cgroup) reaped = await this.spec.cgroup.empty();
    else if (uid !== null) reaped = await reap(() => processesOfUid(uid));
    // Sharing our uid, the box can only be checked through its monitor: bwrap exits once PID 1,
    // and so the whole pid namespace, is gone.
    else reaped = this.exited !== null ? { leftovers: 0, cleared: true } : { leftovers: 1, cleared: false };
    return { ...reaped, oomKilled };
  }
}

function signal(pid: number) {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Whether `p` settled within `ms`. */
async function settled(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const done = await Promise.race([p.then(() => true as const), timeout]);
  clearTimeout(timer);
  return done;
}
