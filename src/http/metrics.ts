import type { FastifyInstance } from 'fastify';
import client from 'prom-client';
import type { Database } from '../db/client.ts';
import { DurationHistogram, type DurationSeries } from './duration-histogram.ts';
import type { OnResponseStep } from './request-steps.ts';

export interface Metrics {
  registry: client.Registry;
  httpDuration: DurationHistogram;
}

/** One registry per app (tests build many apps in one process). */
export function createMetrics(database: Database): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
  const httpDuration = new DurationHistogram(
    'lab_http_request_duration_seconds',
    'HTTP request latency by route and status',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registry,
  );
  const replica = database.reads.replica;
  const pools = [
    ['light', database.pool],
    ['heavy', database.heavyPool],
    ...(replica
      ? ([
          ['read', replica.pool],
          ['read_heavy', replica.heavyPool],
        ] as const)
      : []),
  ] as const;
  registry.registerMetric(database.reads.reads);
  for (const [name, pool] of pools) {
    new client.Gauge({
      name: `lab_db_pool_${name}_connections`,
      help: `Connections of the ${name} pool by state`,
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        this.set({ state: 'in_use' }, pool.totalCount - pool.idleCount);
        this.set({ state: 'idle' }, pool.idleCount);
        this.set({ state: 'waiting' }, pool.waitingCount);
      },
    });
  }
  return { registry, httpDuration };
}

/** The request-duration histogram's observation, a step run after every response. */
export function observeDuration(metrics: Metrics): OnResponseStep {
  // The series of each method, route and status, by a key cheaper to build than the histogram's own
  // (which it makes once per label set, in labels()).
  const children = new Map<string, DurationSeries>();
  return (request, reply) => {
    // The route pattern, never the raw URL, so ids do not explode the label set.
    const route = request.routeOptions.url ?? 'unmatched';
    const key = `${request.method} ${reply.statusCode} ${route}`;
    let child = children.get(key);
    if (child === undefined) {
      child = metrics.httpDuration.labels({
        method: request.method,
        route,
        status: String(reply.statusCode),
      });
      children.set(key, child);
    }
    child.observe(reply.elapsedTime / 1000);
  };
}

export function registerMetrics(app: FastifyInstance, metrics: Metrics) {
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
