import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedHandle, freePort, startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { runMigrations } from '../../src/db/migrate.ts';
import * as schema from '../../src/db/schema/index.ts';
import { DEMO, seedDemo } from '../../src/db/seed.ts';
import {
  type Fleet,
  printCounts,
  request,
  runLoad,
  sleep,
  staleSocketRetries,
  startFleet,
} from './harness.ts';

// This test stops and restarts Postgres, so it has its own embedded server rather than the shared one.
let dir: string;
let port: number;
let pgHandle: EmbeddedHandle;
let fleet: Fleet;
let token: string;
let reads: string[];

const startPg = () =>
  startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), port, persistent: true, maxConnections: 100 });

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-fault-pg-'));
  fs.chmodSync(dir, 0o777);
  port = await freePort();
  pgHandle = await startPg();
  const url = pgHandle.url('postgres');
  await runMigrations(url);
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const { courseId } = await seedDemo(drizzle(pool, { schema }));
  await pool.end();
  fleet = await startFleet({ databaseUrl: url });
  const login = await request('POST', `${fleet.lbUrl}/api/v1/auth/login`, {
    email: DEMO.student.email,
    password: DEMO.student.password,
  });
  const cookie = String(login.headers['set-cookie']![0]).split(';')[0]!;
  const tok = await request(
    'POST',
    `${fleet.lbUrl}/api/v1/auth/tokens`,
    { name: 'fault' },
    { cookie, origin: fleet.lbUrl },
  );
  token = JSON.parse(tok.body).token;
  reads = ['/api/v1/me', `/api/v1/courses/${courseId}`];
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
  await pgHandle?.stop().catch(() => {});
  fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('fault test: Postgres restarts under load', () => {
  it('(3) no process exits, requests get 503 (never 500) while it is down, service is back within 5 s', async () => {
    const load = runLoad({
      baseUrl: fleet.lbUrl,
      token,
      reads,
      concurrency: 6,
      durationMs: 10_000,
      maxRequests: 50_000,
      failurePauseMs: 20,
    });
    await sleep(1500);
    await pgHandle.stop();
    const downAt = Date.now();
    await sleep(2500);
    // Meanwhile: every instance says it cannot serve.
    const readyWhileDown = await Promise.all(
      fleet.ports.map(async (p) => (await request('GET', `http://127.0.0.1:${p}/readyz`)).status),
    );
    pgHandle = await startPg();
    const upAt = Date.now();
    // Back when a request through the load balancer succeeds and every instance is ready again.
    let recoveredAt = 0;
    while (Date.now() - upAt < 15_000) {
      const ready = await Promise.all(
        fleet.ports.map((p) => request('GET', `http://127.0.0.1:${p}/readyz`).then((r) => r.status)),
      );
      const through = await request('GET', `${fleet.lbUrl}/api/v1/me`, undefined, {
        authorization: `Bearer ${token}`,
      });
      if (through.status === 200 && ready.every((s) => s === 200)) {
        recoveredAt = Date.now();
        break;
      }
      await sleep(100);
    }
    const stats = await load;
    const exited = [...fleet.apis, ...fleet.graders, fleet.haproxy]
      .filter((p) => p.exited)
      .map((p) => p.name);
    const counts = {
      sent: stats.sent,
      succeeded: stats.succeeded,
      failed: stats.failed,
      retried: stats.retried,
      busy: stats.busy,
      staleKeepAliveResends: staleSocketRetries.count,
      lost: 0,
      byStatus: stats.byStatus,
      downForMs: upAt - downAt,
      recoveryMs: recoveredAt ? recoveredAt - upAt : null,
      lastFailureAfterPgUpMs: stats.lastFailureAt ? stats.lastFailureAt - upAt : null,
      readyWhileDown,
      exited,
      networkErrors: stats.networkErrors.map(
        (e) => `${Number(e.split(':')[0]) - downAt}ms after stop:${e.split(':').slice(1).join(':')}`,
      ),
    };
    printCounts('POSTGRES RESTART', counts);
    expect(exited).toEqual([]);
    expect(readyWhileDown).toEqual([503, 503, 503]);
    expect(stats.failed).toBeGreaterThan(0);
    // Only 200s and 503s: a database outage is never a 500 and never a dropped connection.
    expect(Object.keys(stats.byStatus).sort()).toEqual(['200', '503']);
    expect(recoveredAt).toBeGreaterThan(0);
    expect(counts.recoveryMs!).toBeLessThan(5000);
    expect(counts.lastFailureAfterPgUpMs!).toBeLessThan(5000);
    expect(stats.succeeded).toBeGreaterThan(100);
    // Whoever answered (an instance, or HAProxy with no instance ready), the 503 is in the API's shape.
    for (const sample of stats.samples)
      expect(sample).toMatch(/ 503 \{"error":\{"code":"(unavailable|overloaded)"/);
  }, 90_000);
});
