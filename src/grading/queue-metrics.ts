import client from 'prom-client';
import type { Db } from '../db/client.ts';
import { queueStats } from './queue.ts';

/** Grading queue depth and the age of the oldest job, read from Postgres on each scrape. */
export function registerQueueMetrics(registry: client.Registry, db: Db) {
  let last = { depth: 0, oldestSeconds: 0 };
  const read = async () => {
    last = await queueStats(db).catch(() => last);
    return last;
  };
  new client.Gauge({
    name: 'lab_grading_queue_depth',
    help: 'Grading jobs waiting or running',
    registers: [registry],
    async collect() {
      this.set((await read()).depth);
    },
  });
  new client.Gauge({
    name: 'lab_grading_queue_oldest_seconds',
    help: 'Age of the oldest grading job (0 when the queue is empty)',
    registers: [registry],
    collect() {
      // Read together with the depth above, one query per scrape.
      this.set(last.oldestSeconds);
    },
  });
}

/** Submit→result latency, observed by graders when they record a result. */
export function createGradingLatency(registry: client.Registry) {
  return new client.Histogram({
    name: 'lab_grading_latency_seconds',
    help: 'Time from submission to recorded result',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [registry],
  });
}
