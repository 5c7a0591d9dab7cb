import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

/*
 * A memory and a pids cgroup per box, where the host lets us make them (root, with the cgroup file
 * systems writable): the box-wide backstop under the rlimits, as IOI's isolate does. cgroup v2 when
 * /sys/fs/cgroup is the unified hierarchy with the memory and pids controllers, else the v1
 * `memory` and `pids` hierarchies. Boxes live under one `lab-sandbox` folder in each.
 */

const ROOT = '/sys/fs/cgroup';
const PARENT = 'lab-sandbox';

export interface BoxLimits {
  memoryBytes: number;
  pids: number;
}

export interface BoxCgroup {
  /** The cgroup.procs files a process writes its pid to, to enter the box's cgroups. */
  readonly procsFiles: string[];
  /** Processes the memory cgroup's OOM killer has killed so far. */
  oomKills(): number;
  /** Kills whatever is left in the box and checks its cgroups are empty; they stay, for the uid's next box. */
  empty(): Promise<Reaped>;
  /** Removes the (empty) cgroups. */
  remove(): boolean;
}

interface Flavour {
  version: 1 | 2;
  /** Folders of the box's cgroups (one per v1 hierarchy, one in v2). */
  dirs(name: string): string[];
  limit(dirs: string[], limits: BoxLimits): void;
  oomFile(dirs: string[]): string;
}

const v2: Flavour = {
  version: 2,
  dirs: (name) => [path.join(ROOT, PARENT, name)],
  limit([dir], { memoryBytes, pids }) {
    writeFileSync(path.join(dir!, 'memory.max'), String(memoryBytes));
    if (existsSync(path.join(dir!, 'memory.swap.max')))
      writeFileSync(path.join(dir!, 'memory.swap.max'), '0');
    writeFileSync(path.join(dir!, 'pids.max'), String(pids));
  },
  oomFile: ([dir]) => path.join(dir!, 'memory.events'),
};

const v1: Flavour = {
  version: 1,
  dirs: (name) => [path.join(ROOT, 'memory', PARENT, name), path.join(ROOT, 'pids', PARENT, name)],
  limit([memory, pidsDir], { memoryBytes, pids }) {
    // With swap accounting, memory+swap gets the same cap: the box cannot spill into swap. The kernel
    // wants memsw ≥ memory at every step, so (for a reused cgroup whose limit changes either way)
    // memsw is lifted first, then both set.
    const memsw = path.join(memory!, 'memory.memsw.limit_in_bytes');
    const swapAccounting = existsSync(memsw);
    if (swapAccounting) writeFileSync(memsw, '-1');
    writeFileSync(path.join(memory!, 'memory.limit_in_bytes'), String(memoryBytes));
    if (swapAccounting) writeFileSync(memsw, String(memoryBytes));
    writeFileSync(path.join(pidsDir!, 'pids.max'), String(pids));
  },
  oomFile: ([memory]) => path.join(memory!, 'memory.oom_control'),
};

function readOomKills(file: string): number {
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function readProcs(dir: string): number[] {
  try {
    return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export class Cgroups {
  private constructor(private readonly flavour: Flavour) {}

  get version(): 1 | 2 {
    return this.flavour.version;
  }

  /** The cgroups this host lets us use, or why not. Tries a real box so that "active" means working. */
  static detect(): Cgroups | { reason: string } {
    if (process.getuid?.() !== 0) return { reason: 'needs root' };
    const unified = existsSync(path.join(ROOT, 'cgroup.controllers'));
    const flavour = unified ? v2 : v1;
    try {
      if (unified) {
        const controllers = readFileSync(path.join(ROOT, 'cgroup.controllers'), 'utf8');
        if (!/\bmemory\b/.test(controllers) || !/\bpids\b/.test(controllers))
          return { reason: 'cgroup v2 without the memory and pids controllers' };
        mkdirSync(path.join(ROOT, PARENT), { recursive: true });
        writeFileSync(path.join(ROOT, 'cgroup.subtree_control'), '+memory +pids');
        writeFileSync(path.join(ROOT, PARENT, 'cgroup.subtree_control'), '+memory +pids');
      } else {
        for (const controller of ['memory', 'pids'])
          if (!existsSync(path.join(ROOT, controller, 'cgroup.procs')))
            return { reason: `no cgroup v1 ${controller} hierarchy at ${path.join(ROOT, controller)}` };
      }
      const cgroups = new Cgroups(flavour);
      const probe = cgroups.create(`probe-${process.pid}`, { memoryBytes: 64 << 20, pids: 4 });
      if (!probe.remove()) return { reason: 'cannot remove a cgroup it made' };
      return cgroups;
    } catch (e) {
      return { reason: `cannot create cgroups here (${(e as Error).message})` };
    }
  }

  /**
   * The box's cgroups with these limits: made, or reused (a uid's boxes share them, one at a time:
   * making and removing cgroups costs about 6 ms a box here, a third of a Python box's start).
   */
  create(name: string, limits: BoxLimits): BoxCgroup {
    const dirs = this.flavour.dirs(name);
    for (const dir of dirs) mkdirSync(dir, { recursive: true });
    this.flavour.limit(dirs, limits);
    const oomFile = this.flavour.oomFile(dirs);
    const baseline = readOomKills(oomFile);
    return {
      procsFiles: dirs.map((d) => path.join(d, 'cgroup.procs')),
      oomKills: () => readOomKills(oomFile) - baseline,
      empty: () => reap(() => dirs.flatMap(readProcs)),
      remove: () => removeDirs(dirs),
    };
  }

  /** Empties the cgroups of a box left by a process that died (its lock on the box's uid went stale). */
  async emptyLeftover(name: string): Promise<Reaped> {
    const dirs = this.flavour.dirs(name).filter((d) => existsSync(d));
    return reap(() => dirs.flatMap(readProcs));
  }
}

function removeDirs(dirs: string[]): boolean {
  let removed = true;
  for (const dir of dirs) {
    try {
      rmdirSync(dir);
    } catch {
      removed = false;
    }
  }
  return removed;
}

export interface Reaped {
  /** Processes still there when we looked (the box's own kill should have left none). */
  leftovers: number;
  /** Nothing is left. */
  cleared: boolean;
}

/** SIGKILLs the processes `list` names until it names none, for at most `ms`. */
export async function reap(list: () => number[], ms = 2000): Promise<Reaped> {
  const deadline = Date.now() + ms;
  let pids = list();
  const leftovers = pids.length;
  while (pids.length > 0) {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    if (Date.now() > deadline) return { leftovers, cleared: false };
    await delay(5);
    pids = list();
  }
  return { leftovers, cleared: true };
}

/** Pids of processes whose real uid is `uid` (for hosts without cgroups). */
export function processesOfUid(uid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'));
      if (m && Number(m[1]) === uid) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}
