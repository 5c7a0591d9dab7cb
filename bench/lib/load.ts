import type { EventEmitter } from 'node:events';
import autocannon from 'autocannon';
import type { Progress } from './progress.ts';
import { round } from './stats.ts';

export interface LoadResult {
  /** Successful (2xx) responses per second: errors and 503s do not count as served. */
  rps: number;
  /** Every response, whatever its status (what autocannon calls requests). */
  requests: number;
  /** 2xx responses. */
  ok: number;
  non2xx: number;
  /** Connection errors and timeouts (autocannon counts timeouts among errors). */
  errors: number;
  timeouts: number;
  /** non2xx + errors: everything that was not a successful response, counted against every target. */
  failed: number;
  durationS: number;
  connections: number;
  latency: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  /** Percentile → ms, for the distribution chart. */
  curve: { percentile: number; ms: number }[];
}

export interface LoadOptions {
  url: string;
  connections: number;
  durationS: number;
  headers?: Record<string, string>;
  method?: 'GET' | 'POST';
  label: string;
  progress?: Progress;
  /** Stop after this many requests (else after durationS). */
  amount?: number;
}

const CURVE_KEYS: [number, string][] = [
  [1, 'p1'],
  [10, 'p10'],
  [25, 'p25'],
  [50, 'p50'],
  [75, 'p75'],
  [90, 'p90'],
  [97.5, 'p97_5'],
  [99, 'p99'],
  [99.9, 'p99_9'],
];

/**
 * One closed-loop autocannon run on loopback (each connection sends its next request when the previous
 * one is answered), bounded by duration, with a progress bar ticking every second. Rate-limited runs
 * use open-load.ts instead: autocannon's `overallRate` sends each connection's share of a second in a
 * burst at the start of the second, and its coordinated-omission correction assumes an expected interval
 * of `Math.ceil(1 / rate)` = 1 ms whatever the rate (autocannon 9.0.0, lib/run.js).
 */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  if (!/^https?:\/\/(127\.0\.0\.1|localhost)[:/]/.test(opts.url))
    throw new Error(`refusing to load a non-loopback address: ${opts.url}`);
  const bar = opts.progress?.phase(opts.label, opts.durationS, 's');
  // Without a callback autocannon returns its tracker (an EventEmitter) that is also a promise of the result.
  const instance = autocannon({
    url: opts.url,
    connections: opts.connections,
    duration: opts.durationS,
    headers: opts.headers,
    method: opts.method ?? 'GET',
    amount: opts.amount,
    timeout: 10,
  }) as unknown as EventEmitter & Promise<autocannon.Result>;
  let seconds = 0;
  let lastCount = 0;
  let count = 0;
  instance.on('response', () => {
    count += 1;
  });
  instance.on('tick', () => {
    seconds += 1;
    bar?.update(seconds, `${count - lastCount} req/s`);
    lastCount = count;
  });
  const r = await instance;
  bar?.done();
  const lat = r.latency as unknown as Record<string, number>;
  const ok = (r as unknown as Record<string, number>)['2xx'] ?? 0;
  return {
    rps: round(ok / r.duration, 1),
    requests: r.requests.total,
    ok,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    failed: r.non2xx + r.errors,
    durationS: round(r.duration, 2),
    connections: opts.connections,
    latency: {
      p50: lat.p50!,
      p90: lat.p90!,
      p99: lat.p99!,
      p999: lat.p99_9!,
      max: lat.max!,
      mean: lat.mean!,
    },
    curve: CURVE_KEYS.map(([percentile, key]) => ({ percentile, ms: lat[key] ?? 0 })),
  };
}
