import underPressure from '@fastify/under-pressure';
import type { FastifyInstance, FastifyReply } from 'fastify';
import client from 'prom-client';
import { type DeadlineEntry, DeadlineList } from '../lib/deadline-list.ts';
import { overloaded } from '../shared/errors.ts';
import type { AppDeps } from './app-deps.ts';
import type { OnRequestStep, OnResponseStep } from './request-steps.ts';

const EXEMPT = new Set(['/healthz', '/readyz', '/metrics']);

declare module 'fastify' {
  interface FastifyReply {
    /** This request's place among the requests in flight (request timeout), until it is answered. */
    deadlineEntry: DeadlineEntry<FastifyReply> | null;
  }
}

/**
 * Load shedding and bounded request time, as two per-request steps (http/request-steps.ts):
 * - @fastify/under-pressure samples event-loop delay and heap every 200 ms; past MAX_EVENT_LOOP_DELAY_MS
 *   or MAX_HEAP_USED_BYTES a request is answered 503 `overloaded` at once (when it arrives, before any
 *   body parsing or database work), which is what keeps the 503s fast under 5× load. The plugin only
 *   samples: the decision is read from its samples on a timer of the same period, so a request reads one
 *   variable instead of running the plugin's own hook.
 * - A request still unanswered after REQUEST_TIMEOUT_MS gets 503 instead of hanging (the handler's late
 *   result is dropped).
 * The signals are exported as Prometheus gauges.
 */
export async function registerOverload(
  app: FastifyInstance,
  deps: AppDeps,
): Promise<{ onRequest: OnRequestStep; onResponse: OnResponseStep }> {
  const { config, metrics } = deps;
  const shed = new client.Counter({
    name: 'lab_shed_requests_total',
    help: 'Requests answered 503 overloaded before running, by reason',
    labelNames: ['reason'] as const,
    registers: [metrics.registry],
  });
  const timeouts = new client.Counter({
    name: 'lab_request_timeouts_total',
    help: 'Requests answered 503 because they ran longer than REQUEST_TIMEOUT_MS',
    registers: [metrics.registry],
  });

  // No thresholds given to the plugin: it samples and adds no hook of its own.
  await app.register(underPressure, { sampleInterval: SAMPLE_MS });
  const usage = () => (app as unknown as { memoryUsage(): Usage }).memoryUsage();
  const pressure = { reason: null as PressureReason | null };
  const sampler = setInterval(() => {
    pressure.reason = pressureReason(usage(), config.MAX_EVENT_LOOP_DELAY_MS, config.MAX_HEAP_USED_BYTES);
  }, SAMPLE_MS);
  sampler.unref();

  const gauge = (name: string, help: string, read: () => number) =>
    new client.Gauge({
      name,
      help,
      registers: [metrics.registry],
      collect() {
        this.set(read());
      },
    });
  gauge(
    'lab_event_loop_delay_ms',
    'Mean event-loop delay over the last 200 ms sample (shedding signal)',
    () => finite(usage().eventLoopDelay),
  );
  gauge('lab_event_loop_utilization', 'Event-loop utilisation (0..1)', () =>
    finite(usage().eventLoopUtilized),
  );
  gauge('lab_heap_used_bytes', 'V8 heap in use (shedding signal)', () => finite(usage().heapUsed));
  gauge('lab_rss_bytes', 'Resident set size', () => finite(usage().rssBytes));
  gauge('lab_under_pressure', '1 while this instance sheds load', () => (pressure.reason === null ? 0 : 1));
  gauge('lab_overload_max_event_loop_delay_ms', 'Configured shedding threshold (0 = off)', () =>
    Number(config.MAX_EVENT_LOOP_DELAY_MS),
  );

  // Requests in flight in arrival order, so in deadline order (lib/deadline-list.ts says why not
  // a Map). One interval answers the overdue ones: a timer per request cost a setTimeout, a clearTimeout
  // and an abort listener on every request (docs/perf/lesson-read-profile.md). Answered within a quarter
  // of the limit (≤ 250 ms).
  const limitMs = config.REQUEST_TIMEOUT_MS;
  const inFlight = new DeadlineList<FastifyReply>();
  app.decorateReply('deadlineEntry', null);
  const sweep = setInterval(
    () => {
      for (const reply of inFlight.takeDue(performance.now())) {
        // A stream (SSE) that already started is not a hung request; a client that left needs no answer.
        if (reply.sent || reply.raw.headersSent || reply.raw.destroyed) continue;
        timeouts.inc();
        reply.send(overloaded(`The request took longer than ${limitMs} ms; retry shortly.`));
      }
    },
    Math.max(10, Math.min(250, limitMs / 4)),
  );
  sweep.unref();
  app.addHook('onClose', (_app, done) => {
    clearInterval(sweep);
    clearInterval(sampler);
    done();
  });
  return {
    onRequest: (request, reply) => {
      const reason = pressure.reason;
      // Operations endpoints answer even while shedding: the load balancer and Prometheus need them most then.
      if (reason !== null && !EXEMPT.has(request.url.split('?')[0]!)) {
        shed.inc({ reason });
        return overloaded('The server is overloaded; retry shortly.');
      }
      reply.deadlineEntry = inFlight.add(reply, performance.now() + limitMs);
      return undefined;
    },
    onResponse: (_request, reply) => {
      if (reply.deadlineEntry) inFlight.remove(reply.deadlineEntry);
      reply.deadlineEntry = null;
    },
  };
}

type PressureReason = 'eventLoopDelay' | 'heapUsedBytes';
interface Usage {
  eventLoopDelay: number;
  eventLoopUtilized: number;
  heapUsed: number;
  rssBytes: number;
}
const SAMPLE_MS = 200;

/** Why this instance sheds now (a 0 threshold is off), from under-pressure's last sample; null = it does not. */
export function pressureReason(u: Usage, maxDelayMs: number, maxHeapBytes: number): PressureReason | null {
  // A sample with no event-loop measurement (the loop was busy loading modules for the whole interval)
  // reads as Infinity: that is start-up, not load, and must not refuse the first requests.
  if (maxDelayMs > 0 && Number.isFinite(u.eventLoopDelay) && u.eventLoopDelay > maxDelayMs)
    return 'eventLoopDelay';
  if (maxHeapBytes > 0 && u.heapUsed > maxHeapBytes) return 'heapUsedBytes';
  return null;
}

const finite = (n: number | undefined) => (Number.isFinite(n) ? (n as number) : 0);
