import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DurationHistogram } from './duration-histogram.ts';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const NAME = 'lab_http_request_duration_seconds';
const HELP = 'HTTP request latency by route and status';

// Durations on, between and past the bounds, in two label sets (one with characters that need escaping).
const observations: [Record<'method' | 'route' | 'status', string>, number][] = [
  [{ method: 'GET', route: '/api/v1/lessons/:lessonId', status: '200' }, 0.0004],
  [{ method: 'GET', route: '/api/v1/lessons/:lessonId', status: '200' }, 0.001],
  [{ method: 'GET', route: '/api/v1/lessons/:lessonId', status: '200' }, 0.0031],
  [{ method: 'GET', route: '/api/v1/lessons/:lessonId', status: '200' }, 0.0031],
  [{ method: 'GET', route: '/api/v1/lessons/:lessonId', status: '200' }, 12],
  [{ method: 'POST', route: 'un"matched\\\n', status: '503' }, 0.75],
  [{ method: 'POST', route: 'un"matched\\\n', status: '503' }, 10],
];

function both() {
  const ours = new client.Registry();
  const theirs = new client.Registry();
  const histogram = new DurationHistogram(NAME, HELP, BUCKETS, ours);
  const reference = new client.Histogram({
    name: NAME,
    help: HELP,
    labelNames: ['method', 'route', 'status'] as const,
    buckets: BUCKETS,
    registers: [theirs],
  });
  return { ours, theirs, histogram, reference };
}

describe('DurationHistogram', () => {
  it('exports exactly what prom-client’s Histogram exports for the same observations', async () => {
    const { ours, theirs, histogram, reference } = both();
    expect(await ours.metrics()).toBe(await theirs.metrics());
    for (const [labels, seconds] of observations) {
      histogram.labels(labels).observe(seconds);
      reference.labels(labels).observe(seconds);
    }
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain(
      `${NAME}_bucket{le="0.005",method="GET",route="/api/v1/lessons/:lessonId",status="200"} 4`,
    );
    // JSON (getMetricsAsJSON) too, but for prom-client's empty exemplar slots.
    const withoutExemplars = (json: client.MetricObjectWithValues<client.MetricValue<string>>[]) =>
      JSON.parse(JSON.stringify(json, (k, v) => (k === 'exemplar' ? undefined : v)));
    expect(withoutExemplars(await ours.getMetricsAsJSON())).toEqual(
      withoutExemplars(await theirs.getMetricsAsJSON()),
    );
  });

  it('keeps one series per label set, ignores a non-finite duration, and resets', async () => {
    const { ours, histogram } = both();
    const a = histogram.labels({ method: 'GET', route: '/x', status: '200' });
    expect(histogram.labels({ method: 'GET', route: '/x', status: '200' })).toBe(a);
    a.observe(Number.NaN);
    a.observe(Number.POSITIVE_INFINITY);
    a.observe(0.002);
    expect([a.count, a.sum]).toEqual([1, 0.002]);
    histogram.reset();
    expect(await ours.metrics()).not.toContain(`${NAME}_count`);
  });
});
