import Fastify from 'fastify';
import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerDbRetry } from './db-retry.ts';
import { registerErrorHandler } from './error-handler.ts';

/** Errors as pg/Drizzle raise them during a failover. */
const readOnly = () => Object.assign(new Error('Failed query: insert'), { cause: { code: '25006' } });
const dropped = () => new Error('Connection terminated unexpectedly');
const droppedAtCommit = () => Object.assign(dropped(), { outcomeUnknown: true });

/** An app whose routes fail with `errors` in turn, then succeed; counts the runs. */
async function appFailing(errors: (() => Error)[], retryMs = 2000) {
  const app = Fastify();
  registerErrorHandler(app);
  registerDbRetry(app, { retryMs, registry: new client.Registry() });
  let runs = 0;
  const handler = async () => {
    runs += 1;
    const next = errors[runs - 1];
    if (next) throw next();
    return { ok: true, runs };
  };
  app.get('/r', handler);
  app.post('/w', handler);
  app.post('/k', { config: { idempotencyKey: true } }, handler);
  await app.ready();
  return { app, runs: () => runs };
}

describe('retry of requests that failed because the database was unavailable', () => {
  it('a read is retried through a failover and answers 200', async () => {
    const { app, runs } = await appFailing([dropped, readOnly, dropped]);
    const res = await app.inject({ method: 'GET', url: '/r' });
    expect(res.statusCode).toBe(200);
    expect(runs()).toBe(4);
  });

  it('a write refused as read-only (it did not commit) is retried', async () => {
    const { app, runs } = await appFailing([readOnly]);
    const res = await app.inject({ method: 'POST', url: '/w' });
    expect(res.statusCode).toBe(200);
    expect(runs()).toBe(2);
  });

  it('a write whose commit may have happened is not retried: 503 with Retry-After', async () => {
    const { app, runs } = await appFailing([droppedAtCommit]);
    const res = await app.inject({ method: 'POST', url: '/w' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('2');
    expect(res.json().error.code).toBe('unavailable');
    expect(runs()).toBe(1);
  });

  it('…unless the route deduplicates on the Idempotency-Key the request carries', async () => {
    const withKey = await appFailing([droppedAtCommit]);
    const res = await withKey.app.inject({ method: 'POST', url: '/k', headers: { 'idempotency-key': 'a' } });
    expect(res.statusCode).toBe(200);
    expect(withKey.runs()).toBe(2);
    const without = await appFailing([droppedAtCommit]);
    expect((await without.app.inject({ method: 'POST', url: '/k' })).statusCode).toBe(503);
    expect(without.runs()).toBe(1);
  });

  it('gives up with 503 once DB_RETRY_MS is spent, and never retries other errors', async () => {
    const down = await appFailing(Array(1000).fill(dropped), 300);
    const started = Date.now();
    const res = await down.app.inject({ method: 'GET', url: '/r' });
    expect(res.statusCode).toBe(503);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(down.runs()).toBeGreaterThan(1);
    const bug = await appFailing([() => new Error('a bug')]);
    expect((await bug.app.inject({ method: 'GET', url: '/r' })).statusCode).toBe(500);
    expect(bug.runs()).toBe(1);
  });

  it('DB_RETRY_MS=0 turns retries off', async () => {
    const { app, runs } = await appFailing([dropped], 0);
    expect((await app.inject({ method: 'GET', url: '/r' })).statusCode).toBe(503);
    expect(runs()).toBe(1);
  });
});
