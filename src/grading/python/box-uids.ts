import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * A distinct unprivileged uid for every box running at once on this host, as IOI's isolate gives
 * each box its own: two boxes never share a process count (RLIMIT_NPROC is per uid) nor anything
 * else a uid owns. A uid is held by a lock file naming the holding process, in a root-only folder,
 * so every grader process on the host draws from the same range; a lock whose process has died is
 * taken over (after the caller has cleaned up what that box left).
 */
export class BoxUids {
  private readonly held = new Set<number>();

  constructor(
    private readonly dir: string,
    readonly base: number,
    readonly count: number,
  ) {}

  /** Creates the lock folder (root-owned, 0700); throws when it exists but is not ours alone. */
  static open(dir: string, base: number, count: number): BoxUids {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o077) !== 0)
      throw new Error(`${dir} must be a folder owned by root with mode 0700`);
    return new BoxUids(dir, base, count);
  }

  /**
   * Takes a free uid, or null when every uid of the range is held by a live process. `stale` is
   * told about uids whose holder died, before they are handed out again.
   */
  acquire(stale: (uid: number) => void): number | null {
    for (let uid = this.base; uid < this.base + this.count; uid++) {
      if (this.held.has(uid)) continue;
      const file = path.join(this.dir, String(uid));
      if (this.tryLock(file)) {
        this.held.add(uid);
        return uid;
      }
      if (!isAlive(holderOf(file))) {
        stale(uid);
        try {
          unlinkSync(file);
        } catch {
          // another process took it over first
        }
        if (this.tryLock(file)) {
          this.held.add(uid);
          return uid;
        }
      }
    }
    return null;
  }

  release(uid: number): void {
    if (!this.held.delete(uid)) return;
    try {
      unlinkSync(path.join(this.dir, String(uid)));
    } catch {
      // already gone
    }
  }

  private tryLock(file: string): boolean {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o600);
    } catch {
      return false;
    }
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  }
}

function holderOf(file: string): number {
  try {
    return Number(readFileSync(file, 'utf8'));
  } catch {
    return Number.NaN;
  }
}

function isAlive(pid: number): boolean {
  // A lock file being written right now is empty for an instant: treat it as alive.
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
