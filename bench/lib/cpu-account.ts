import fs from 'node:fs';
import path from 'node:path';
import { childPids } from './procstat.ts';

/*
 * CPU of everything a process started, its sandboxes included. The bench starts each process it owns
 * inside a cgroup of its own (cgroup v1 `cpuacct`, or cgroup v2 `cpu.stat`), so the CPU of every
 * descendant counts, whoever reaps it: a sandbox whose monitor died is reparented to init and its CPU
 * never reaches the grader's cutime/cstime, but it never leaves the grader's cpuacct cgroup (Lab's boxes
 * join memory and pids cgroups, other v1 hierarchies). Without a writable cgroup file system (not root),
 * it falls back to summing /proc/<pid>/stat over the live process tree plus what the tree reaped.
 */

const TICK_MS = 10; // USER_HZ is 100 on every Linux we run on
const CGROUP_ROOT = '/sys/fs/cgroup';

export type CpuMethod = 'cgroup-v1-cpuacct' | 'cgroup-v2' | 'proc-tree';

interface Flavour {
  method: CpuMethod;
  /** Folder under which the bench's cgroups live. */
  base: string;
  usageMs(dir: string): number;
}

const v1: Flavour = {
  method: 'cgroup-v1-cpuacct',
  base: path.join(CGROUP_ROOT, 'cpuacct'),
  usageMs: (dir) => Number(fs.readFileSync(path.join(dir, 'cpuacct.usage'), 'utf8')) / 1e6,
};

const v2: Flavour = {
  method: 'cgroup-v2',
  base: CGROUP_ROOT,
  usageMs: (dir) => {
    const m = /^usage_usec (\d+)$/m.exec(fs.readFileSync(path.join(dir, 'cpu.stat'), 'utf8'));
    return m ? Number(m[1]) / 1000 : 0;
  },
};

function statFields(pid: number): string[] | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** utime + stime + cutime + cstime of one process, ms (0 when it is gone). */
function withReapedMs(pid: number): number {
  const f = statFields(pid);
  if (!f) return 0;
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * TICK_MS;
}

/**
 * CPU ms of a process tree from /proc: every live process of the tree with what it has reaped. CPU of a
 * descendant that was reparented outside the tree before it ended is missed (the fallback's limit).
 */
export function procTreeCpuMs(root: number): number {
  let total = 0;
  const stack = [root];
  const seen = new Set<number>();
  while (stack.length) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    total += withReapedMs(pid);
    stack.push(...childPids(pid));
  }
  return total;
}

/** One process's CPU account: a cgroup it (and everything it starts) lives in, or its /proc tree. */
export interface CpuAccount {
  method: CpuMethod;
  /** Wraps a command so that it joins the account before it runs (a no-op for the /proc fallback). */
  wrap(file: string, args: string[]): { file: string; args: string[] };
  /** Moves an already running process (not its existing children) into the account. */
  adopt(pid: number): void;
  /** CPU ms so far of every process that ever was in the account; `pid` is the root for the fallback. */
  cpuMs(pid: number): number;
  remove(): void;
}

// Writes its pid into the cgroup.procs file given as $1, then becomes the command.
const JOIN = 'echo $$ > "$1" || exit 125; shift; exec "$@"';

export class CpuAccounts {
  readonly method: CpuMethod;
  private readonly flavour: Flavour | null;
  private readonly dir: string | null;
  private readonly accounts: string[] = [];
  private seq = 0;
  /** The cgroup the bench process was in when it started (in this hierarchy). */
  private readonly home: string | null;
  /** Why cgroups are not used, when they are not. */
  readonly fallbackReason: string | null;

  private constructor(flavour: Flavour | null, dir: string | null, reason: string | null) {
    this.flavour = flavour;
    this.dir = dir;
    this.method = flavour?.method ?? 'proc-tree';
    this.fallbackReason = reason;
    this.home = flavour ? homeOf(flavour) : null;
  }

  static detect(): CpuAccounts {
    if (process.getuid?.() !== 0) return new CpuAccounts(null, null, 'not root');
    const unified = fs.existsSync(path.join(CGROUP_ROOT, 'cgroup.controllers'));
    const flavour = unified ? v2 : fs.existsSync(path.join(v1.base, 'cpuacct.usage')) ? v1 : null;
    if (!flavour) return new CpuAccounts(null, null, 'no cgroup v1 cpuacct hierarchy and no cgroup v2');
    const dir = path.join(flavour.base, `lab-bench-${process.pid}`);
    removeStale(flavour.base);
    try {
      fs.mkdirSync(dir, { recursive: true });
      const probe = path.join(dir, 'probe');
      fs.mkdirSync(probe);
      flavour.usageMs(probe);
      fs.rmdirSync(probe);
      return new CpuAccounts(flavour, dir, null);
    } catch (e) {
      try {
        fs.rmdirSync(dir);
      } catch {
        // not made
      }
      return new CpuAccounts(null, null, `cannot use cgroups here (${(e as Error).message})`);
    }
  }

  create(name: string): CpuAccount {
    if (!this.flavour || !this.dir) {
      return {
        method: 'proc-tree',
        wrap: (file, args) => ({ file, args }),
        adopt: () => {},
        cpuMs: (pid) => procTreeCpuMs(pid),
        remove: () => {},
      };
    }
    const flavour = this.flavour;
    const dir = path.join(this.dir, `${++this.seq}-${name.replace(/[^\w.-]/g, '_')}`);
    fs.mkdirSync(dir);
    this.accounts.push(dir);
    const procs = path.join(dir, 'cgroup.procs');
    return {
      method: flavour.method,
      wrap: (file, args) => ({ file: '/bin/sh', args: ['-c', JOIN, 'sh', procs, file, ...args] }),
      adopt: (pid) => {
        try {
          fs.writeFileSync(procs, String(pid));
        } catch {
          // gone meanwhile
        }
      },
      cpuMs: () => {
        try {
          return flavour.usageMs(dir);
        } catch {
          return 0;
        }
      },
      remove: () => removeDir(dir),
    };
  }

  /** Removes every cgroup made (their processes must have ended) and the bench's own folder. */
  close() {
    // The bench process itself joined one of them: back to where it was.
    if (this.flavour && this.home) {
      try {
        fs.writeFileSync(path.join(this.home, 'cgroup.procs'), String(process.pid));
      } catch {
        // stays; the folder is left behind
      }
    }
    for (const dir of this.accounts.splice(0)) removeDir(dir);
    if (this.dir) removeDir(this.dir);
  }
}

/** This process's cgroup folder in the flavour's hierarchy, from /proc/self/cgroup. */
function homeOf(flavour: Flavour): string | null {
  try {
    for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
      const [, controllers, rel] = line.split(':');
      if (rel === undefined) continue;
      const match =
        flavour.method === 'cgroup-v2' ? controllers === '' : controllers!.split(',').includes('cpuacct');
      if (match) return path.join(flavour.base, rel);
    }
  } catch {
    // no /proc/self/cgroup
  }
  return null;
}

/** Empty folders left by bench runs that died (their process is gone). */
function removeStale(base: string) {
  try {
    for (const name of fs.readdirSync(base)) {
      const pid = /^lab-bench-(\d+)$/.exec(name)?.[1];
      if (!pid || fs.existsSync(`/proc/${pid}`)) continue;
      const dir = path.join(base, name);
      for (const sub of fs.readdirSync(dir, { withFileTypes: true }))
        if (sub.isDirectory()) removeDir(path.join(dir, sub.name));
      removeDir(dir);
    }
  } catch {
    // nothing to tidy
  }
}

function removeDir(dir: string) {
  try {
    fs.rmdirSync(dir);
  } catch {
    // still has processes (a straggler) or already gone; the next run's folder has its own name
  }
}
