import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTestApp } from '../../test/app.ts';
import { until } from '../../test/wait.ts';
import { buildApp } from '../app.ts';
import { loadConfig } from '../config.ts';
import { Limiter } from './heavy.ts';

const ctx = withTestApp();
let app: Awaited<ReturnType<typeof buildApp>>;
const gates: (() => void)[] = [];

beforeAll(async () => {
  const config = loadConfig({}, { DATABASE_URL: ctx.url, LOG_LEVEL: 'silent', HEAVY_CONCURRENCY: 1 });
  app = await buildApp(config, ctx.database, { logger: false });
  app.get(
    '/slow-heavy',
    { config: { heavy: true } },
    () => new Promise((r) => gates.push(() => r({ ok: true }))),
  );
  app.get('/slow-light', () => new Promise((r) => gates.push(() => r({ ok: true }))));
  await app.ready();
});
afterAll(() => app.close());

const heavyGauge = async (state: 'running' | 'queued') => {
  const m = await app.inject({ method: 'GET', url: '/metrics' });
  return Number(new RegExp(`lab_heavy_requests\\{state="${state}"\\} (\\d+)`).exec(m.body)?.[1]);
};
const handlersWaiting = (n: number) => until(() => gates.length === n, `${n} handlers waiting`);

describe('heavy-route limiter', () => {
  it('runs HEAVY_CONCURRENCY at once, queues 4×, answers 503 overloaded + Retry-After past that', async () => {
    const inflight = Array.from({ length: 5 }, () => app.inject({ method: 'GET', url: '/slow-heavy' }));
    // All five have reached the limiter: one runs, four wait.
    await until(async () => (await heavyGauge('queued')) === 4, 'four heavy requests queued');
    expect(await heavyGauge('running')).toBe(1);
    expect(gates.length).toBe(1);
    const refused = await app.inject({ method: 'GET', url: '/slow-heavy' });
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBe('2');
    expect(refused.json().error.code).toBe('overloaded');
    // Light routes are not limited by heavy ones.
    const light = app.inject({ method: 'GET', url: '/slow-light' });
    await handlersWaiting(2);
    gates.splice(1, 1)[0]!();
    expect((await light).statusCode).toBe(200);
    const m = await app.inject({ method: 'GET', url: '/metrics' });
    expect(m.body).toContain('lab_heavy_requests{state="queued"} 4');
    for (let i = 0; i < 5; i++) {
      // One at a time: the next handler starts only once the previous one has released its slot.
      await handlersWaiting(1);
      gates.shift()!();
    }
    const results = await Promise.all(inflight);
    expect(results.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200]);
  });
});

describe('heavy-route limiter over real sockets', () => {
  it('holds the slot until the response is sent, not only until the request body is read', async () => {
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const first = fetch(`${address}/slow-heavy`);
    await handlersWaiting(1);
    const second = fetch(`${address}/slow-heavy`);
    // The first handler is still running, so the second must be waiting for the slot.
    await until(async () => (await heavyGauge('queued')) === 1, 'the second request queued');
    expect(gates.length).toBe(1);
    gates.shift()!();
    expect((await first).status).toBe(200);
    await handlersWaiting(1);
    gates.shift()!();
    expect((await second).status).toBe(200);
  });
});

describe('Limiter', () => {
  it('refuses a waiter that waited longer than maxWaitMs, and a release is idempotent', async () => {
    const limiter = new Limiter(1, 1, 30);
    const release = await limiter.acquire();
    await expect(limiter.acquire()).rejects.toMatchObject({ statusCode: 503, code: 'overloaded' });
    expect(limiter.queued).toBe(0);
    release();
    release();
    expect(limiter.active).toBe(0);
    const again = await limiter.acquire();
    again();
  });
});
