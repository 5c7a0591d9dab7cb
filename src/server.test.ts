import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { withTestApp } from '../test/app.ts';
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

async function appWithSlowRoute(ms: number) {
  const config = loadConfig({}, { DATABASE_URL: ctx.url, LOG_LEVEL: 'silent' });
  const app = await buildApp(config, ctx.database, { logger: false });
  app.get('/slow', () => new Promise((r) => setTimeout(() => r({ done: true }), ms)));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, port: (app.server.address() as AddressInfo).port };
}

describe('drain (SIGTERM sequence)', () => {
  it('turns /readyz 503 at once, keeps serving during the grace period, finishes in-flight requests', async () => {
    const { app, port } = await appWithSlowRoute(600);
    const inflight = get(port, '/slow');
    await new Promise((r) => setTimeout(r, 50));
    const drained = drain(app, { graceMs: 300, closeTimeoutMs: 5000 });
    const ready = await get(port, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.headers.connection).toBe('close');
    // Still serving during the grace period, each response telling the client not to reuse the connection.
    const health = await get(port, '/healthz');
    expect(health.status).toBe(200);
    expect(health.headers.connection).toBe('close');
    expect(await inflight).toMatchObject({ status: 200, body: '{"done":true}' });
    await drained;
    await expect(get(port, '/healthz')).rejects.toThrow();
  });

  it('cuts connections still busy after closeTimeoutMs', async () => {
    const { app, port } = await appWithSlowRoute(5000);
    const inflight = get(port, '/slow').catch((err) => err as Error);
    await new Promise((r) => setTimeout(r, 50));
    const logs: string[] = [];
    const started = Date.now();
    await drain(app, { graceMs: 0, closeTimeoutMs: 200, log: (m) => logs.push(m) });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await inflight).toBeInstanceOf(Error);
    expect(logs.join('\n')).toContain('did not finish in time');
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
