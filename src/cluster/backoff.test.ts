import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.ts';

describe('Backoff', () => {
  it('doubles from the base up to the cap, and starts over after a stable run', () => {
    const b = new Backoff(100, 1000, 5000);
    expect([b.next(0), b.next(10), b.next(10), b.next(10), b.next(10), b.next(10)]).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
    expect(b.next(6000)).toBe(100);
    expect(b.next(10)).toBe(200);
  });
});
