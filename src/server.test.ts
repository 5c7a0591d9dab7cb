import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { withTestApp } from '../test/app.ts';
import { gate } from '../test/wait.ts';
import { buildApp } from './app.ts';
import { loadConfig } from './config.ts';
import { drain } from './http/lifecycle.ts';
import { serve } from './server.ts';

const ctx = withTestApp();

function get(
  port: number,
  path: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

/** An app whose GET /slow runs until the test lets it finish (`finish`); `started` tells when it runs. */
async function appWithSlowRoute() {
  const config = loadConfig({}, { DATABASE_URL: ctx.url, LOG_LEVEL: 'silent' });
  const app = await buildApp(config, ctx.database, { logger: false });
  const started = gate();
  const finished = gate();
  app.get('/slow', async () => {
    started.open();
    await finished.promise;
    return { done: true };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    app,
    port: (app.server.address() as AddressInfo).port,
    started: started.promise,
    finish: finished.open,
  };
}

describe('drain (SIGTERM sequence)', () => {
  it('turns /readyz 503 at once, keeps serving during the grace period, finishes in-flight requests', async () => {
    const { app, port, started, finish } = await appWithSlowRoute();
    const inflight = get(port, '/slow');
    await started;
    const drained = drain(app, { graceMs: 300, closeTimeoutMs: 5000 });
    const ready = await get(port, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.headers.connection).toBe('close');
    // Still serving during the grace period, each response telling the client not to reuse the connection.
    const health = await get(port, '/healthz');
    expect(health.status).toBe(200);
    expect(health.headers.connection).toBe('close');
    // The request that was running when the drain began still completes.
    finish();
    expect(await inflight).toMatchObject({ status: 200, body: '{"done":true}' });
    await drained;
    await expect(get(port, '/healthz')).rejects.toThrow();
  });

  it('cuts connections still busy after closeTimeoutMs', async () => {
    const { app, port, started, finish } = await appWithSlowRoute();
    const inflight = get(port, '/slow').catch((err) => err as Error);
    await started;
    const logs: string[] = [];
    const drainStart = Date.now();
    await drain(app, { graceMs: 0, closeTimeoutMs: 200, log: (m) => logs.push(m) });
    expect(Date.now() - drainStart).toBeLessThan(3000);
    expect(await inflight).toBeInstanceOf(Error);
    expect(logs.join('\n')).toContain('did not finish in time');
    finish();
  });
});

describe('serve', () => {
  it('checks the budget, listens, and stops cleanly (idempotent stop)', async () => {
    const config = loadConfig(
      {},
      {
        DATABASE_URL: ctx.url,
        PORT: 0,
        LOG_LEVEL: 'silent',
        SHUTDOWN_GRACE_MS: 0,
        INSTANCE_NAME: 'serve-test',
      },
    );
    const { app, stop } = await serve(config, ctx.url);
    const port = (app.server.address() as AddressInfo).port;
    expect((await get(port, '/readyz')).status).toBe(200);
    await Promise.all([stop(), stop()]);
    expect(app.deps.lifecycle.draining).toBe(true);
  });

  it('refuses to start when the fleet does not fit', async () => {
    const config = loadConfig({}, { DATABASE_URL: ctx.url, PORT: 0, LOG_LEVEL: 'silent', DB_POOL_MAX: 200 });
    await expect(serve(config, ctx.url)).rejects.toThrow(/does not fit/);
  });
});
