import { describe, expect, it } from 'vitest';
import type { SandboxJob } from '../sandbox.types.ts';
import { JsPool } from './js-pool.ts';

const job = (code: string, timeMs = 300): SandboxJob => ({
  code,
  entrypoint: 'f',
  tests: [
    { kind: 'call', args: [1] },
    { kind: 'call', args: [2] },
  ],
  timeMs,
  memoryMb: 16,
});

describe('JsPool', () => {
  it('queues jobs beyond its size and replaces a worker the watchdog killed', async () => {
    const pool = new JsPool(1);
    try {
      const hang = 'function f(n) { if (n === 1) Array(2 ** 32 - 1).indexOf(1); return n; }';
      const [a, b] = await Promise.all([
        pool.run(job(hang)),
        pool.run(job('function f(n) { return n * 10; }')),
      ]);
      expect(a).toMatchObject({
        kind: 'ran',
        outcomes: [
          { kind: 'timeout', durationMs: 300 },
          { kind: 'value', json: '2' },
        ],
      });
      expect(b).toMatchObject({ kind: 'ran', outcomes: [{ json: '10' }, { json: '20' }] });
      expect(pool.replaced).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('refuses work once closed', async () => {
    const pool = new JsPool(1);
    const first = pool.run(job('function f(n) { return n; }'));
    const waiting = pool.run(job('function f(n) { return n; }'));
    await first;
    await pool.close();
    await expect(pool.run(job('function f() {}'))).rejects.toThrow(/closed/);
    // The queued job either ran before the close or was refused: it never hangs.
    await waiting.catch((e: Error) => expect(e.message).toMatch(/closed/));
  });
});
