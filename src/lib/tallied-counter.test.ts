import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { talliedCounter } from './tallied-counter.ts';

describe('talliedCounter', () => {
  it('exports each label set’s count at every scrape, and keeps counting after one', async () => {
    const registry = new client.Registry();
    const { tally } = talliedCounter({
      name: 'test_lookups_total',
      help: 'test',
      labelNames: ['result'] as const,
      registers: [registry],
    });
    const hit = tally({ result: 'hit' });
    const miss = tally({ result: 'miss' });
    tally({ result: 'never' });
    for (let i = 0; i < 5; i++) hit.inc();
    miss.inc();
    const first = await registry.metrics();
    expect(first).toMatch(/^test_lookups_total\{result="hit"\} 5$/m);
    expect(first).toMatch(/^test_lookups_total\{result="miss"\} 1$/m);
    expect(first).not.toContain('result="never"');
    hit.inc();
    const second = await registry.metrics();
    expect(second).toMatch(/^test_lookups_total\{result="hit"\} 6$/m);
    expect(second).toMatch(/^test_lookups_total\{result="miss"\} 1$/m);
  });
});
