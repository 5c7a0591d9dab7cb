import type { EventEmitter } from 'node:events';
import autocannon from 'autocannon';
import type { Progress } from './progress.ts';
import { round } from './stats.ts';

export interface LoadResult {
  rps: number;
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
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
  /** Requests per second across all connections (open model); unset = as fast as possible. */
  overallRate?: number;
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

/** One autocannon run on loopback, bounded by duration, with a progress bar ticking every second. */
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
    overallRate: opts.overallRate,
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
  return {
    rps: round(r.requests.total / r.duration, 1),
    requests: r.requests.total,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
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
