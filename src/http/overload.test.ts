import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTestApp } from '../../test/app.ts';
import { gate, until } from '../../test/wait.ts';
import { buildApp } from '../app.ts';
import { loadConfig } from '../config.ts';

const ctx = withTestApp();
let shedding: Awaited<ReturnType<typeof buildApp>>;
let timing: Awaited<ReturnType<typeof buildApp>>;
// The hung handler of /slow: released after the test, so only the request timeout can answer it.
const hung = gate();
const UNDER_PRESSURE = /^lab_under_pressure 1$/m;

beforeAll(async () => {
  // Any heap is "too much": every request but the operations endpoints is shed.
  const tiny = loadConfig({}, { DATABASE_URL: ctx.url, LOG_LEVEL: 'silent', MAX_HEAP_USED_BYTES: 1 });
  shedding = await buildApp(tiny, ctx.database, { logger: false });
  await shedding.ready();
  // Not shedding on event-loop delay (a loaded test machine has some): this app tests the timeout alone.
  const quick = loadConfig(
    {},
    { DATABASE_URL: ctx.url, LOG_LEVEL: 'silent', REQUEST_TIMEOUT_MS: 100, MAX_EVENT_LOOP_DELAY_MS: 0 },
  );
  timing = await buildApp(quick, ctx.database, { logger: false });
  timing.get('/slow', async () => {
    await hung.promise;
    return { late: true };
  });
  timing.get('/stream', (_request, reply) => {
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
    reply.raw.write(': hello\n\n');
    setTimeout(() => reply.raw.end(), 300);
    return reply;
  });
  await timing.ready();
  // under-pressure samples every 200 ms: wait for the first sample that sees the heap over the limit.
  // Anchored to the sample line: the HELP line reads "lab_under_pressure 1 while …" and would match at once.
  await until(
    async () => UNDER_PRESSURE.test((await shedding.inject({ method: 'GET', url: '/metrics' })).body),
    'the shedding app to be under pressure',
  );
});
afterAll(async () => {
  hung.open();
  await shedding?.close();
  await timing?.close();
});

describe('load shedding', () => {
  it('answers 503 overloaded + Retry-After in the error shape past MAX_HEAP_USED_BYTES', async () => {
    const res = await shedding.inject({ method: 'GET', url: '/api/v1/me' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('2');
    expect(res.json()).toEqual({
      error: { code: 'overloaded', message: 'The server is overloaded; retry shortly.' },
    });
  });

  it('keeps /healthz, /readyz and /metrics answering, and exports the signals', async () => {
    expect((await shedding.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await shedding.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    const m = await shedding.inject({ method: 'GET', url: '/metrics' });
    expect(m.statusCode).toBe(200);
    expect(m.body).toMatch(/lab_shed_requests_total\{reason="heapUsedBytes"\} [1-9]/);
    expect(m.body).toMatch(UNDER_PRESSURE);
    expect(m.body).toMatch(/lab_heap_used_bytes \d+/);
    expect(m.body).toMatch(/lab_event_loop_delay_ms [\d.]+/);
    expect(m.body).toMatch(/lab_rss_bytes \d+/);
  });
});

describe('request timeout', () => {
  it('answers 503 overloaded at REQUEST_TIMEOUT_MS instead of hanging', async () => {
    const started = Date.now();
    const res = await timing.inject({ method: 'GET', url: '/slow' });
    expect(Date.now() - started).toBeLessThan(350);
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('overloaded');
    expect(res.json().error.message).toContain('100 ms');
    const m = await timing.inject({ method: 'GET', url: '/metrics' });
    expect(m.body).toMatch(/lab_request_timeouts_total 1/);
    expect(m.body).toMatch(/^lab_under_pressure 0$/m);
  });

  it('leaves a stream that already started alone', async () => {
    const res = await timing.inject({ method: 'GET', url: '/stream' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe(': hello\n\n');
  });
});
