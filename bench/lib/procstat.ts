import fs from 'node:fs';

// CPU of another process is read from /proc (process.cpuUsage() only sees the calling process).
const TICK_MS = 10; // USER_HZ is 100 on every Linux we run on

function statFields(pid: number | string): string[] | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; everything after its closing parenthesis is fixed.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** User + system CPU ms of one process; with `reaped`, also of its exited and waited-for children. */
export function cpuMs(pid: number, reaped = false): number {
  const f = statFields(pid);
  if (!f) return 0;
  // After the name: [0]=state [1]=ppid ... [11]=utime [12]=stime [13]=cutime [14]=cstime
  const own = Number(f[11]) + Number(f[12]);
  const children = reaped ? Number(f[13]) + Number(f[14]) : 0;
  return (own + children) * TICK_MS;
}

/**
 * CPU ms of a process's main thread (the task whose id is the pid: JavaScript, the event loop and its
 * system calls, in Node) and of all its other live threads together (V8's helpers for garbage collection
 * and compilation, libuv's pool). Null when the process is gone.
 */
export function threadCpuMs(pid: number): { main: number; others: number } | null {
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  let main = 0;
  let others = 0;
  for (const task of tasks) {
    const f = statFields(`${pid}/task/${task}`);
    if (!f) continue; // exited meanwhile
    const ms = (Number(f[11]) + Number(f[12])) * TICK_MS;
    if (Number(task) === pid) main += ms;
    else others += ms;
  }
  return { main, others };
}

export function childPids(ppid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    if (f && Number(f[1]) === ppid) out.push(Number(entry));
  }
  return out;
}

/**
 * CPU ms of a Postgres server: the postmaster, its exited backends (reaped into cutime/cstime) and its
 * live backends and auxiliary processes.
 */
export function postgresCpuMs(postmasterPid: number): number {
  let total = cpuMs(postmasterPid, true);
  for (const pid of childPids(postmasterPid)) total += cpuMs(pid);
  return total;
}

/** Resident memory in MB. */
export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : 0;
  } catch {
    return 0;
  }
}

/** Open sockets of a process (TCP connections, both client and server side, plus listeners). */
export function socketCount(pid: number): number {
  try {
    let n = 0;
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n += 1;
      } catch {
        // the descriptor closed while we looked
      }
    }
    return n;
  } catch {
    return 0;
  }
}

/** CPU ms the whole machine spent busy (all cores, all processes: ours and anyone else's). */
export function machineBusyMs(): number {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  // cpu user nice system idle iowait irq softirq steal
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)) * TICK_MS;
}

/** CPU ms of this process (the load generator) so far. */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * The options a running Node process was started with, read back from /proc (what it really runs with,
 * not what the bench meant to pass): every argument between the executable and the script.
 */
export function nodeOptionsOf(pid: number): string[] | null {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const script = argv.findIndex(
      (a, i) => i > 0 && !a.startsWith('-') && !argv[i - 1]!.startsWith('--import'),
    );
    return argv.slice(1, script < 0 ? argv.length : script);
  } catch {
    return null;
  }
}
