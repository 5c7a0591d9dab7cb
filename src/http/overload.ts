import underPressure from '@fastify/under-pressure';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import client from 'prom-client';
import { overloaded } from '../shared/errors.ts';
import type { AppDeps } from './app-deps.ts';

// Operations endpoints must answer even when the instance sheds load: the load balancer and Prometheus
// need them most exactly then.
const EXEMPT = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Load shedding and bounded request time:
 * - @fastify/under-pressure samples event-loop delay and heap every 200 ms; past MAX_EVENT_LOOP_DELAY_MS
 *   or MAX_HEAP_USED_BYTES a request is answered 503 `overloaded` at once (onRequest, before any body
 *   parsing or database work), which is what keeps the 503s fast under 5× load.
 * - A request still unanswered after REQUEST_TIMEOUT_MS gets 503 instead of hanging (the handler's late
 *   result is dropped).
 * The signals are exported as Prometheus gauges.
 */
export async function registerOverload(app: FastifyInstance, deps: AppDeps) {
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

  await app.register(underPressure, {
    maxEventLoopDelay: config.MAX_EVENT_LOOP_DELAY_MS,
    maxHeapUsedBytes: config.MAX_HEAP_USED_BYTES,
    sampleInterval: 200,
    pressureHandler: (
      request: FastifyRequest,
      _reply: FastifyReply,
      type: string,
      value: number | undefined,
    ) => {
      if (EXEMPT.has(request.url.split('?')[0]!)) return undefined;
      // A sample with no event-loop measurement (the loop was busy loading modules for the whole
      // interval) reads as Infinity: that is start-up, not load, and must not refuse the first requests.
      if (type === 'eventLoopDelay' && !Number.isFinite(value)) return undefined;
      shed.inc({ reason: type });
      return Promise.reject(overloaded('The server is overloaded; retry shortly.'));
    },
  });

  const usage = () => (app as unknown as { memoryUsage(): Record<string, number> }).memoryUsage();
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
  gauge('lab_under_pressure', '1 while this instance sheds load', () =>
    (app as unknown as { isUnderPressure(): boolean }).isUnderPressure() ? 1 : 0,
  );
  gauge('lab_overload_max_event_loop_delay_ms', 'Configured shedding threshold (0 = off)', () =>
    Number(config.MAX_EVENT_LOOP_DELAY_MS),
  );

  // Requests in flight → their deadline, in arrival order (so in deadline order). One interval answers
  // the overdue ones: a timer per request cost a setTimeout, a clearTimeout and an abort listener on
  // every request (docs/perf/lesson-read-profile.md). Answered within a quarter of the limit (≤ 250 ms).
  const limitMs = config.REQUEST_TIMEOUT_MS;
  const inFlight = new Map<FastifyReply, number>();
  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const [reply, deadline] of inFlight) {
        if (deadline > now) break;
        inFlight.delete(reply);
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
    done();
  });
  app.addHook('onRequest', (_request, reply, done) => {
    inFlight.set(reply, Date.now() + limitMs);
    done();
  });
  app.addHook('onResponse', (_request, reply, done) => {
    inFlight.delete(reply);
    done();
  });
}

const finite = (n: number | undefined) => (Number.isFinite(n) ? (n as number) : 0);
