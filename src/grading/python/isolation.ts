import { execFile } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BoxUids } from './box-uids.ts';
import { Cgroups } from './cgroups.ts';

const run = promisify(execFile);

/*
 * The isolation layers of a Python box, found once per process (doctor prints them):
 * - namespaces (bubblewrap: user, pid, net, ipc, uts, mount; no network, read-only /usr only),
 * - seccomp (a filter built by Debian's python3-seccomp, handed to `bwrap --seccomp`),
 * - rlimits on every process of the box, set by `prlimit` before bubblewrap starts,
 * - a distinct uid per concurrent box (root only: setpriv drops to it),
 * - cgroups (memory and pids per box; root with writable cgroup file systems).
 * The first three are essential: without any of them Python grading refuses to run (a clear
 * `error` that uses no attempt; JavaScript is unaffected). The last two are reported when missing.
 */

export interface Layer {
  name: 'namespaces' | 'seccomp' | 'rlimits' | 'box uids' | 'cgroups';
  active: boolean;
  essential: boolean;
  detail: string;
}

export interface Tools {
  bwrap: string;
  python: string;
  setpriv: string;
  prlimit: string;
  /** Interpreter that builds the seccomp filter: Debian's, which has the libseccomp bindings. */
  seccompPython: string;
}

export interface Isolation {
  layers: Layer[];
  /** Why Python grading refuses to run here, or null. */
  refusal: string | null;
  seccomp: Buffer | null;
  cgroups: Cgroups | null;
  uids: BoxUids | null;
}

export interface IsolationOptions {
  uidBase: number;
  uidCount: number;
  /** 'auto' uses cgroups when the host allows them; 'off' never. */
  cgroups: 'auto' | 'off';
  /** Where the uid locks live (root-owned, 0700). */
  lockDir: string;
}

const FILTER_SCRIPT = fileURLToPath(new URL('./seccomp-filter.py', import.meta.url));

/**
 * The bubblewrap flags every box starts with: new namespaces of every kind (no network), no nested
 * user namespaces, dies with its parent, its own session and pid 1, no capabilities, an empty
 * environment, /usr read-only. The box (box.ts), the probe below and the layers benchmark share them,
 * so what is probed and measured is what runs.
 */
export function boxNamespaceArgs(): string[] {
  return [
    '--unshare-all',
    '--unshare-user',
    '--disable-userns',
    '--die-with-parent',
    '--new-session',
    '--as-pid-1',
    '--cap-drop',
    'ALL',
    '--clearenv',
    '--ro-bind',
    '/usr',
    '/usr',
    ...rootLinks(),
  ];
}

/** Mirrors the host's /bin, /lib, /lib64, /sbin: symlinks into /usr on merged-/usr systems. */
export function rootLinks(): string[] {
  const args: string[] = [];
  for (const dir of ['bin', 'lib', 'lib64', 'sbin']) {
    const p = `/${dir}`;
    if (!existsSync(p)) continue;
    if (lstatSync(p).isSymbolicLink()) args.push('--symlink', readlinkSync(p), p);
    else args.push('--ro-bind', p, p);
  }
  return args;
}

function failure(e: unknown): string {
  const err = e as { stderr?: string; code?: string | number; message?: string };
  if (err.code === 'ENOENT') return 'not installed';
  return (err.stderr?.trim() || err.message || String(e)).split('\n').slice(-3).join(' ').slice(0, 300);
}

async function probeNamespaces(tools: Tools): Promise<Layer> {
  const layer = { name: 'namespaces', essential: true } as const;
  if (!existsSync(tools.python))
    return { ...layer, active: false, detail: `${tools.python} is missing: apt-get install python3` };
  try {
    await run(tools.bwrap, [...boxNamespaceArgs(), '--', tools.python, '-I', '-S', '-c', ''], {
      timeout: 10_000,
    });
    return { ...layer, active: true, detail: 'bubblewrap: user, pid, net, ipc, uts and mount namespaces' };
  } catch (e) {
    const why = failure(e);
    return {
      ...layer,
      active: false,
      detail:
        why === 'not installed'
          ? 'bubblewrap (bwrap) is not installed: apt-get install bubblewrap'
          : `bubblewrap cannot create namespaces here (${why})`,
    };
  }
}

async function buildSeccomp(tools: Tools): Promise<{ layer: Layer; filter: Buffer | null }> {
  const layer = { name: 'seccomp', essential: true } as const;
  try {
    const { stdout } = await run(tools.seccompPython, ['-I', FILTER_SCRIPT], {
      encoding: 'buffer',
      timeout: 10_000,
    });
    if (stdout.length === 0 || stdout.length % 8 !== 0) throw new Error('the filter builder wrote no filter');
    return {
      layer: { ...layer, active: true, detail: `seccomp-bpf filter, ${stdout.length / 8} instructions` },
      filter: stdout,
    };
  } catch (e) {
    const why = failure(e);
    return {
      layer: {
        ...layer,
        active: false,
        detail: /No module named 'seccomp'/.test(why)
          ? 'the seccomp filter needs libseccomp bindings: apt-get install python3-seccomp'
          : `cannot build the seccomp filter (${why}); apt-get install python3-seccomp`,
      },
      filter: null,
    };
  }
}

export async function detectIsolation(tools: Tools, opts: IsolationOptions): Promise<Isolation> {
  const [namespaces, seccomp] = await Promise.all([probeNamespaces(tools), buildSeccomp(tools)]);
  const rlimits: Layer = {
    name: 'rlimits',
    essential: true,
    active: existsSync(tools.prlimit) && existsSync(tools.setpriv),
    detail:
      existsSync(tools.prlimit) && existsSync(tools.setpriv)
        ? 'address space, data, CPU, files, file size and processes limited on every process of the box'
        : `${tools.prlimit} and ${tools.setpriv} are needed (util-linux)`,
  };

  let uids: BoxUids | null = null;
  let uidDetail = 'needs root (every box shares the grader’s uid)';
  if (process.getuid?.() === 0 && rlimits.active) {
    try {
      uids = BoxUids.open(opts.lockDir, opts.uidBase, opts.uidCount);
      uidDetail = `uids ${opts.uidBase}–${opts.uidBase + opts.uidCount - 1}, one per running box`;
    } catch (e) {
      uidDetail = `cannot lock box uids (${(e as Error).message})`;
    }
  }

  let cgroups: Cgroups | null = null;
  let cgroupDetail = 'turned off (SANDBOX_CGROUPS=off)';
  if (opts.cgroups === 'auto') {
    const found = Cgroups.detect();
    if (found instanceof Cgroups) {
      cgroups = found;
      cgroupDetail = `cgroup v${found.version}: memory and pids limited per box`;
    } else {
      cgroupDetail = found.reason;
    }
  }

  const layers: Layer[] = [
    namespaces,
    seccomp.layer,
    rlimits,
    { name: 'box uids', essential: false, active: uids !== null, detail: uidDetail },
    { name: 'cgroups', essential: false, active: cgroups !== null, detail: cgroupDetail },
  ];
  const missing = layers.find((l) => l.essential && !l.active);
  return {
    layers,
    refusal: missing
      ? `Python grading is turned off on this grader: the sandbox's ${missing.name} layer is missing (${missing.detail}). This submission does not count as an attempt.`
      : null,
    seccomp: seccomp.filter,
    cgroups,
    uids,
  };
}
