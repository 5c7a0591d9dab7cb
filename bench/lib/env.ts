import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { API_NODE_FLAGS } from '../../src/cluster/node-flags.ts';
import { type EmbeddedHandle, freePort, startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { runMigrations } from '../../src/db/migrate.ts';
import { type CpuAccount, CpuAccounts, type CpuMethod } from './cpu-account.ts';
import { postgresCpuMs, selfCpuMs } from './procstat.ts';

export const ROOT =
  process.env.BENCH_LAB_ROOT ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BENCH_DB = 'lab_bench';
export const BARE_ROLE = 'lab_bench_bare';

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGb: number;
  node: string;
  postgres: string;
  pgbench: string | null;
  platform: string;
  /** 1, 5 and 15 minute load averages when the run started (other work on a shared machine). */
  loadAverage: number[];
  /** dist (compiled, as production runs) or source (tsx; a checkout from before the build step). */
  labRuntime?: 'dist' | 'source';
}

/** A spawned process (Lab API instance, grader, baseline server) that the bench owns and stops. */
export interface Proc {
  name: string;
  pid: number;
  url?: string;
  child: ChildProcess;
  stderrTail: () => string;
  /**
   * CPU ms so far of this process and everything it started (threads, sandboxes, their children),
   * from its own cgroup where the bench may make one, else from its /proc tree (see cpu-account.ts).
   */
  cpuMs(): number;
  cpuMethod: CpuMethod;
  stop(): Promise<void>;
}

/** Everything the scenarios run against: one Postgres (embedded unless given), an admin pool, processes. */
export class BenchEnv {
  readonly procs = new Set<Proc>();
  /** Per-process CPU accounts (cgroups when the bench may make them). */
  readonly cpu = CpuAccounts.detect();
  private readonly self: CpuAccount = this.cpu.create('bench');
  private embedded: EmbeddedHandle | null = null;
  private tmpDir: string | null = null;
  admin!: pg.Pool;
  databaseUrl!: string;
  /** Where the bare baseline connects: same database, its own role when the bench owns Postgres. */
  bareDatabaseUrl!: string;
  postmasterPid: number | null = null;
  pgStatStatements = false;
  /** Set when the bench targets an already running Lab (`--url`). */
  externalUrl: string | null = null;
  /** The role Lab connects as: pg_stat_statements keys its statements by it. */
  get labRole(): string {
    return new URL(this.databaseUrl).username;
  }
  /** What Lab's processes run: the compiled dist/ (as in production) or, in an older checkout, the sources. */
  labRuntime: 'dist' | 'source' = 'source';
  /** Per started instance: ms between /readyz 200 and the first API request not shed. */
  readonly startupShedMs: number[] = [];

  static async start(opts: { databaseUrl?: string; externalUrl?: string; log: (s: string) => void }) {
    const env = new BenchEnv();
    env.externalUrl = opts.externalUrl ?? null;
    if (opts.databaseUrl) {
      env.databaseUrl = opts.databaseUrl;
      env.bareDatabaseUrl = opts.databaseUrl;
    } else {
      env.tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-bench-'));
      fs.chmodSync(env.tmpDir, 0o777);
      const dataDir = path.join(env.tmpDir, 'data');
      opts.log('starting embedded Postgres');
      let handle = await startEmbeddedPostgres({ dataDir, persistent: true, maxConnections: 300 });
      // pg_stat_statements tells where Postgres time goes per statement; it must be preloaded, so restart once.
      const c = new pg.Client({ connectionString: handle.url() });
      await c.connect();
      await c.query(`alter system set shared_preload_libraries = 'pg_stat_statements'`);
      await c.query(`alter system set pg_stat_statements.track = 'all'`);
      await c.query(`create database ${BENCH_DB}`);
      // The baseline server connects as its own role so pg_stat_statements keeps its statements apart
      // from Lab's (it keys statistics by role, and the statements are otherwise the same).
      await c.query(`create role ${BARE_ROLE} login superuser password 'lab'`);
      await c.end();
      await handle.stop();
      handle = await startEmbeddedPostgres({ dataDir, persistent: true, maxConnections: 300 });
      env.embedded = handle;
      env.databaseUrl = handle.url(BENCH_DB);
      const bare = new URL(env.databaseUrl);
      bare.username = BARE_ROLE;
      env.bareDatabaseUrl = bare.toString();
      const pidText = fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8');
      env.postmasterPid = Number(pidText.split('\n')[0]);
    }
    // From here on, the bench process and whatever it starts itself (pgbench, strace, sandboxes of the
    // layers scenario) share one account: the load generator's CPU. Postgres, started above, stays out.
    env.self.adopt(process.pid);
    env.labRuntime = buildLab(opts.log);
    env.admin = new pg.Pool({ connectionString: env.databaseUrl, max: 4, application_name: 'lab:bench' });
    env.admin.on('error', () => {});
    if (!env.externalUrl) {
      opts.log('migrating');
      await runMigrations(env.databaseUrl);
    }
    try {
      await env.admin.query('create extension if not exists pg_stat_statements');
      await env.admin.query('select pg_stat_statements_reset()');
      env.pgStatStatements = true;
    } catch {
      env.pgStatStatements = false;
    }
    return env;
  }

  /**
   * CPU ms so far of the bench process (the load generator in most scenarios) and of the processes it
   * started itself other than Lab's and Postgres (pgbench, strace, the layers scenario's boxes).
   */
  benchCpuMs(): number {
    // Without cgroups, the bench's own CPU only: its process tree also holds Lab and Postgres.
    return this.self.method === 'proc-tree' ? selfCpuMs() : this.self.cpuMs(process.pid);
  }

  /** Postgres CPU ms so far (all backends), or null when Postgres is not ours to observe. */
  pgCpuMs(): number | null {
    return this.postmasterPid ? postgresCpuMs(this.postmasterPid) : null;
  }

  async machine(): Promise<Machine> {
    const { rows } = await this.admin.query<{ v: string }>("select current_setting('server_version') as v");
    let pgbench: string | null = null;
    try {
      pgbench = execFileSync('pgbench', ['--version'], { encoding: 'utf8' }).trim();
    } catch {
      pgbench = null;
    }
    return {
      cores: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGb: Math.round(os.totalmem() / 1e9),
      node: process.version,
      postgres: rows[0]!.v,
      pgbench,
      platform: `${os.type()} ${os.release()}`,
      loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
      labRuntime: this.labRuntime,
    };
  }

  /** Starts a Node process (`node <args>`) and waits until GET <url><readyPath> answers 200. */
  async spawnNode(
    name: string,
    args: string[],
    extraEnv: Record<string, string>,
    ready?: { port: number; path: string },
    opts: { ipc?: boolean } = {},
  ): Promise<Proc> {
    const account: CpuAccount = this.cpu.create(name);
    const cmd = account.wrap(process.execPath, args);
    const child = spawn(cmd.file, cmd.args, {
      cwd: ROOT,
      env: { ...process.env, ...extraEnv },
      stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-4000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const proc: Proc = {
      name,
      pid: child.pid!,
      url: ready ? `http://127.0.0.1:${ready.port}` : undefined,
      child,
      stderrTail: () => tail,
      cpuMs: () => account.cpuMs(child.pid!),
      cpuMethod: account.method,
      stop: async () => {
        this.procs.delete(proc);
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise<void>((r) => child.once('exit', () => r()));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
          await exited;
          clearTimeout(timer);
        }
        account.remove();
      },
    };
    this.procs.add(proc);
    if (ready) {
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${tail}`);
        try {
          const res = await fetch(`${proc.url}${ready.path}`);
          if (res.status === 200) break;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline) {
          await proc.stop();
          throw new Error(`${name} not ready within 60 s:\n${tail}`);
        }
        await sleep(200);
      }
    }
    return proc;
  }

  /** The environment of a bench Lab instance: Lab's defaults except what is said here. */
  labEnv(index: number, instances: number, extra: Record<string, string> = {}): Record<string, string> {
    return {
      DATABASE_URL: this.databaseUrl,
      HOST: '127.0.0.1',
      // Everything else is Lab's default configuration (pools, limits, shedding); only per-request
      // log lines are off, since the baseline writes none either.
      LOG_LEVEL: 'warn',
      // Synthetic students submit and register far faster than real ones; the abuse limits
      // (issue 9) would measure themselves instead of Lab.
      SUBMISSIONS_PER_MINUTE: '1000000',
      REGISTRATIONS_PER_HOUR: '1000000',
      JOIN_FAILURES_PER_HOUR: '1000000',
      INSTANCES: String(instances),
      INSTANCE_NAME: `bench-api-${index}`,
      LAB_RUNTIME: this.labRuntime,
      ...extra,
    };
  }

  /**
   * Lab's effective configuration as Lab itself parses it from a bench instance's environment
   * (`lab doctor`: defaults resolved, secrets masked), its sandbox layers, and Postgres's settings from
   * pg_settings: what the report states about the set-up is read from the system, not written down.
   */
  async settings(): Promise<{
    lab: Record<string, unknown>;
    sandboxes: string[];
    postgres: Record<string, string>;
    cpuAccounting: string;
  }> {
    const lab: Record<string, unknown> = {};
    const sandboxes: string[] = [];
    try {
      const out = execFileSync(process.execPath, ['bin/lab.mjs', 'doctor'], {
        cwd: ROOT,
        env: { ...process.env, ...this.labEnv(1, 1) },
        encoding: 'utf8',
        timeout: 60_000,
      });
      let section = '';
      for (const line of out.split('\n')) {
        if (!line.startsWith(' ')) section = line;
        const m = /^ {2}([A-Z][A-Z0-9_]+)\s+(.+)$/.exec(line);
        if (section.startsWith('Configuration') && m) {
          try {
            lab[m[1]!] = JSON.parse(m[2]!);
          } catch {
            lab[m[1]!] = m[2];
          }
        }
        if (section.startsWith('Sandboxes') && line.trim()) sandboxes.push(line.trim());
      }
    } catch (err) {
      lab.error = `lab doctor failed: ${(err as Error).message.split('\n')[0]}`;
    }
    const { rows } = await this.admin.query<{ name: string; setting: string; unit: string | null }>(
      `select name, setting, unit from pg_settings
       where name in ('max_connections', 'shared_buffers', 'work_mem', 'synchronous_commit', 'fsync',
                      'max_wal_size', 'shared_preload_libraries', 'jit', 'max_worker_processes')`,
    );
    const postgres = Object.fromEntries(
      rows.map((r) => [r.name, r.unit ? `${r.setting} ${r.unit}` : r.setting]),
    );
    const cpuAccounting = this.cpu.method + (this.cpu.fallbackReason ? ` (${this.cpu.fallbackReason})` : '');
    return { lab, sandboxes, postgres, cpuAccounting };
  }

  /**
   * A Lab API instance (`node bin/lab.mjs serve`), with the V8 flags production API servers run with
   * (src/cluster/node-flags.ts) unless `v8Flags` says otherwise; `nodeArgs` are added to them.
   */
  async startLab(
    index: number,
    instances: number,
    extra: Record<string, string> = {},
    nodeArgs: readonly string[] = [],
    v8Flags: readonly string[] = API_NODE_FLAGS,
  ): Promise<Proc> {
    const port = await freePort();
    const proc = await this.spawnNode(
      `lab-api-${index}`,
      [...v8Flags, ...nodeArgs, 'bin/lab.mjs', 'serve'],
      { ...this.labEnv(index, instances, extra), PORT: String(port) },
      { port, path: '/readyz' },
    );
    // A fresh instance may shed API requests (503) for a moment after /readyz turns 200, while its
    // event-loop delay sample still holds the start-up cost; measure from when it really serves.
    const t0 = Date.now();
    while (Date.now() - t0 < 10_000) {
      const res = await fetch(`${proc.url}/api/v1/me`).catch(() => null);
      if (res && res.status !== 503) break;
      await sleep(50);
    }
    this.startupShedMs.push(Date.now() - t0);
    return proc;
  }

  /**
   * A grader process (`node bin/lab.mjs grader`), returned once it claims jobs: a grader opens its
   * LISTEN connection (named after INSTANCE_NAME) after warming its sandboxes and starts claiming as soon
   * as that connection is up, so that backend, seen in pg_stat_activity, is the readiness signal.
   */
  async startGrader(index: number, extra: Record<string, string> = {}): Promise<Proc> {
    const name = `bench-grader-${index}`;
    const proc = await this.spawnNode(`lab-grader-${index}`, ['bin/lab.mjs', 'grader'], {
      DATABASE_URL: this.databaseUrl,
      LOG_LEVEL: 'warn',
      INSTANCE_NAME: name,
      LAB_RUNTIME: this.labRuntime,
      ...extra,
    });
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (proc.child.exitCode !== null) throw new Error(`grader exited:\n${proc.stderrTail()}`);
      const { rows } = await this.admin.query(
        // The listener's last statement once connected (src/db/listener.ts): right before claims start.
        `select count(*)::int as n from pg_stat_activity
          where application_name = $1 and query ilike 'select pg_backend_pid()%'`,
        [`lab:${name}`],
      );
      if (rows[0].n > 0) return proc;
      if (Date.now() > deadline) {
        await proc.stop();
        throw new Error(`grader ${name} did not connect within 60 s:\n${proc.stderrTail()}`);
      }
      await sleep(50);
    }
  }

  async stopAll() {
    await Promise.all([...this.procs].map((p) => p.stop()));
  }

  async close() {
    await this.stopAll();
    this.cpu.close();
    await this.admin?.end().catch(() => {});
    if (this.embedded) await this.embedded.stop().catch(() => {});
    if (this.tmpDir) fs.rmSync(this.tmpDir, { recursive: true, force: true });
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True if `lab <command>` exists in src/cli.ts (routes and roles appear while others build them). */
export function cliHas(command: string): boolean {
  const cli = fs.readFileSync(path.join(ROOT, 'src/cli.ts'), 'utf8');
  return cli.includes(`'${command}'`);
}

/**
 * Lab is measured as production runs it: compiled (`npm run build`, dist/), not through tsx, whose
 * transform adds per-closure helpers (esbuild's keepNames) to hot paths. A checkout from before the
 * build step (BENCH_LAB_ROOT) runs its sources.
 */
function buildLab(log: (s: string) => void): 'dist' | 'source' {
  const script = path.join(ROOT, 'scripts/build.mjs');
  if (!fs.existsSync(script)) return 'source';
  log('building the server (dist/) unless up to date');
  execFileSync(process.execPath, [script, '--server', '--if-needed'], { cwd: ROOT, stdio: 'ignore' });
  return 'dist';
}
