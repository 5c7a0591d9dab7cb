import { describe, expect, it } from 'vitest';
import { anon, withTestApp } from '../../test/app.ts';

const ctx = withTestApp();

describe('HTTP conventions', () => {
  it('unknown routes are 404 in the error shape', async () => {
    const res = await anon(ctx.app, 'GET', '/nope');
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('not_found');
  });

  it('malformed JSON is 400 invalid_json', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: '{"email": ',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('invalid_json');
  });

  it('a non-JSON body is 415', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: 'email=a',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('unsupported_media_type');
    const plain = await ctx.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: '{}',
      headers: { 'content-type': 'text/plain' },
    });
    expect(plain.statusCode).toBe(415);
  });

  it('a body over 1 MiB is 413 payload_too_large, with the request id like every response', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: JSON.stringify({ email: 'a'.repeat(1024 * 1024 + 10) }),
      headers: { 'content-type': 'application/json', 'x-request-id': 'big-1' },
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('payload_too_large');
    expect(res.headers['x-request-id']).toBe('big-1');
  });

  it('echoes a sane X-Request-Id and makes one otherwise', async () => {
    const given = await ctx.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'abc-123' },
    });
    expect(given.headers['x-request-id']).toBe('abc-123');
    const made = await ctx.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'bad id\u0000' },
    });
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('/healthz and /readyz are 200; /metrics has route histograms and pool gauges', async () => {
    expect((await ctx.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await ctx.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    const m = await ctx.app.inject({ method: 'GET', url: '/metrics' });
    expect(m.body).toContain('lab_http_request_duration_seconds_bucket');
    expect(m.body).toContain('route="/readyz"');
    expect(m.body).toContain('lab_db_pool_light_connections{state="idle"}');
    expect(m.body).toContain('nodejs_eventloop_lag');
  });

  it('/readyz is 503 while draining', async () => {
    ctx.app.deps.lifecycle.draining = true;
    const res = await ctx.app.inject({ method: 'GET', url: '/readyz' });
    ctx.app.deps.lifecycle.draining = false;
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
  });

  it('/docs is an OpenAPI document of the /api/v1 routes', async () => {
    const doc = (await ctx.app.inject({ method: 'GET', url: '/docs' })).json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toContain('/api/v1/auth/register');
    expect(Object.keys(doc.paths).every((p: string) => p.startsWith('/api/v1/'))).toBe(true);
  });
});
