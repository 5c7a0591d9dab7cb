import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, testPool } from '../../test/db.ts';
import type { BoundedPool } from '../db/pool.ts';
import { DatabaseReadiness } from './health.ts';

let url: string;
let drop: () => Promise<void>;
const pools: BoundedPool[] = [];

const poolFor = (connectionString: string, max = 2) => {
  const pool = testPool(connectionString, 'lab:health-test', { max });
  pools.push(pool);
  return pool;
};

/** A URL whose port nothing listens on: connections are refused. */
async function refusedUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `postgres://lab:lab@127.0.0.1:${port}/lab`;
}

beforeAll(async () => {
  ({ url, drop } = await createTestDatabase());
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await drop?.();
});

describe('pool health: what the pool’s own traffic shows', () => {
  it('a checkout that ends well is ok; a refused connection and a terminated session are failures; an SQL error is neither', async () => {
    const pool = poolFor(url);
    await pool.query('select 1');
    expect(pool.health.okAt).toBeGreaterThan(0);
    expect(pool.health.failedAt).toBe(0);

    const okAt = pool.health.okAt;
    await expect(pool.query('select 1 / 0')).rejects.toThrow(/division by zero/);
    expect(pool.health.failedAt).toBe(0);
    expect(pool.health.okAt).toBe(okAt);

    const client = await pool.connect();
    const { rows } = (await client.query('select pg_backend_pid() as pid')) as { rows: { pid: number }[] };
    const killer = poolFor(url, 1);
    // Its rejection is expected before the kill below returns: the assertion is attached first.
    const running = expect(client.query('select pg_sleep(5)')).rejects.toThrow(/terminating connection/);
    await killer.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
    await running;
    client.release();
    expect(pool.health.failedAt).toBeGreaterThan(0);
    // Released without an error by its holder, it still did not end well: not counted as ok.
    expect(pool.health.okAt).toBe(okAt);

    const refused = poolFor(await refusedUrl());
    await expect(refused.query('select 1')).rejects.toThrow();
    expect(refused.health.failedAt).toBeGreaterThan(0);
    expect(refused.health.okAt).toBe(0);
  });
});

describe('readiness: the database judged by traffic first, a probe otherwise', () => {
  it('probes an idle pool: ready when Postgres answers, not when it refuses', async () => {
    expect(await new DatabaseReadiness(poolFor(url)).check()).toBe(true);
    const refused = poolFor(await refusedUrl());
    expect(await new DatabaseReadiness(refused).check()).toBe(false);
    expect(await new DatabaseReadiness(refused).check()).toBe(false);
  });

  it('a probe that fails for another reason than an unreachable database does not stick: the next check probes anew', async () => {
    const adminUrl = inject('pgAdminUrl');
    const name = `lab_t_ready_${Date.now()}`;
    const missing = new URL(adminUrl);
    missing.pathname = `/${name}`;
    const pool = poolFor(missing.toString());
    const readiness = new DatabaseReadiness(pool);
    // "database does not exist": the server answered, so the probe tells nothing; nothing else proves it.
    expect(await readiness.check()).toBe(false);
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      await admin.query(`create database ${name}`);
      expect(await readiness.check()).toBe(true);
    } finally {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    }
  });

  it('ready after a failure once the database answers again', async () => {
    const pool = poolFor(url);
    await pool.query('select 1');
    pool.health.failed();
    expect(pool.health.failedAt).toBeGreaterThanOrEqual(pool.health.okAt);
    expect(await new DatabaseReadiness(pool).check()).toBe(true);
    expect(pool.health.okAt).toBeGreaterThanOrEqual(pool.health.failedAt);
  });

  it('a busy pool whose last checkout succeeded is ready at once, without queueing a probe behind its traffic', async () => {
    const pool = poolFor(url, 2);
    await pool.query('select 1');
    // The success is older than the "recent" window: only the busy rule can answer without a probe.
    pool.health.okAt = Date.now() - 5000;
    let slowDone = 0;
    const slow = [1, 2, 3].map(() => pool.query('select pg_sleep(0.6)').then(() => (slowDone += 1)));
    await expect
      .poll(() => pool.idleCount === 0 && pool.totalCount === 2 && pool.waitingCount === 1)
      .toBe(true);
    expect(await new DatabaseReadiness(pool).check()).toBe(true);
    expect(slowDone).toBe(0);
    await Promise.all(slow);
  });

  it('with the last outcome a failure and every connection busy, a request that succeeds meanwhile proves the database', async () => {
    const pool = poolFor(url, 1);
    const busy = pool.query('select pg_sleep(0.1)');
    await expect.poll(() => pool.idleCount === 0 && pool.totalCount === 1).toBe(true);
    // Queued before the probe and longer than its wait: the probe cannot be what answers.
    const long = pool.query('select pg_sleep(1)');
    await expect.poll(() => pool.waitingCount === 1).toBe(true);
    pool.health.failed();
    const started = pool.health.failedAt;
    expect(await new DatabaseReadiness(pool).check()).toBe(true);
    expect(pool.health.okAt).toBeGreaterThanOrEqual(started);
    await Promise.all([busy, long]);
  });

  it('with the last outcome a failure and nothing proving the database within the wait, not ready', async () => {
    const pool = poolFor(url, 1);
    const long = pool.query('select pg_sleep(0.8)');
    await expect.poll(() => pool.idleCount === 0 && pool.totalCount === 1).toBe(true);
    pool.health.failed();
    expect(await new DatabaseReadiness(pool).check()).toBe(false);
    await long;
  });
});
