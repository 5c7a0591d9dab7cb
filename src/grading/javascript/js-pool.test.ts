import { describe, expect, it, vi } from 'vitest';
import type { SandboxJob } from '../sandbox.types.ts';
import { JsPool } from './js-pool.ts';

const job = (code: string, timeMs = 300, totalMs = 30_000): SandboxJob => ({
  code,
  entrypoint: 'f',
  tests: [
    { kind: 'call', argsJson: '[1]' },
    { kind: 'call', argsJson: '[2]' },
  ],
  timeMs,
  memoryMb: 16,
  totalMs,
});

describe('JsPool', () => {
  it('queues jobs beyond its size, stops a job at its first timeout and replaces the killed worker', async () => {
    const pool = new JsPool(1);
    try {
      const hang = 'function f(n) { if (n === 1) Array(2 ** 32 - 1).indexOf(1); return n; }';
      const [a, b] = await Promise.all([
        pool.run(job(hang)),
        pool.run(job('function f(n) { return n * 10; }')),
      ]);
      // The builtin never checks the interrupt handler: the watchdog terminated the worker.
      expect(a).toEqual({
        kind: 'ran',
        outcomes: [
          { kind: 'timeout', durationMs: 300 },
          { kind: 'skipped', reason: 'timeout' },
        ],
      });
      expect(b).toMatchObject({ kind: 'ran', outcomes: [{ json: '10' }, { json: '20' }] });
      expect(pool.replaced).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('stops a job at its total budget, however the time limits add up', async () => {
    const pool = new JsPool(1);
    try {
      // A started worker: what is timed is the job, not the worker's start.
      await pool.warm();
      const slow = 'function f(n) { const end = Date.now() + 250; while (Date.now() < end); return n; }';
      const started = performance.now();
      const run = await pool.run(job(slow, 1000, 400));
      expect(performance.now() - started).toBeLessThan(1000);
      expect(run).toMatchObject({
        kind: 'ran',
        outcomes: [
          { kind: 'value', json: '1' },
          { kind: 'skipped', reason: 'total' },
        ],
      });
    } finally {
      await pool.close();
    }
  });

  it("refuses work once closed: the running job and the queued one end as the platform's failure", async () => {
    const pool = new JsPool(1);
    await pool.warm();
    const spin = 'function f(n) { const end = Date.now() + 5000; while (Date.now() < end); return n; }';
    const running = pool.run(job(spin, 10_000));
    const queued = pool.run(job('function f(n) { return n; }'));
    // The only worker is busy with the first job, the second waits for it.
    await vi.waitFor(() => expect(pool.queued).toBe(1), { timeout: 5000, interval: 5 });
    await pool.close();
    const platform = { kind: 'error', infrastructure: true };
    expect(await running).toMatchObject({ ...platform, message: expect.stringMatching(/exited/) });
    expect(await queued).toMatchObject({ ...platform, message: expect.stringMatching(/closed/) });
    expect(await pool.run(job('function f() {}'))).toMatchObject({
      ...platform,
      message: expect.stringMatching(/closed/),
    });
  });
});
