import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import pRetry from 'p-retry';
import client from 'prom-client';
import { isDatabaseUnavailable, isOutcomeUnknown } from '../db/errors.ts';

const READS = new Set(['GET', 'HEAD']);

/**
 * Whether a request whose handler failed with `err` may simply run again: only when the database was
 * unavailable (a failover: the primary went away, is read-only for a moment (25006), or is shutting
 * down (57P01/57P03)) and running again cannot do anything twice — a read; a write whose statement
 * certainly did not commit; or a write to a route that deduplicates on the Idempotency-Key it carries.
 */
export function isRetrySafe(request: FastifyRequest, err: unknown): boolean {
  if (!isDatabaseUnavailable(err)) return false;
  if (READS.has(request.method)) return true;
  if (!isOutcomeUnknown(err)) return true;
  return !!request.routeOptions.config?.idempotencyKey && request.headers['idempotency-key'] !== undefined;
}

/** 50 ms doubling to 500 ms (p-retry's schedule below, without jitter): the wait after `attempt` failed. */
const delayAfter = (attempt: number) => Math.min(50 * 2 ** (attempt - 1), 500);

/**
 * Every route handler is retried (50 ms doubling to 500 ms, for up to DB_RETRY_MS) when it failed
 * because the database was unavailable and a retry is safe (isRetrySafe); then the error handler answers
 * 503 + Retry-After. A Patroni switchover (~2 s) or the read-only moment after a promotion is thus ridden
 * through; a crash failover (~ttl) ends in 503s that clients retry. Must be registered before the routes.
 */
export function registerDbRetry(app: FastifyInstance, opts: { retryMs: number; registry: client.Registry }) {
  const retried = new client.Counter({
    name: 'lab_db_retries_total',
    help: 'Route handlers run again because the database was unavailable (failover, restart)',
    registers: [opts.registry],
  });
  if (opts.retryMs <= 0) return;
  app.addHook('onRoute', (route) => {
    const handler = route.handler as RouteHandlerMethod;
    // The first run is a plain call: the retry machinery (a deadline, p-retry's promise chain) is set up
    // only once that run has failed, not on every request.
    route.handler = function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
      const started = Date.now();
      const first = handler.call(this, request, reply) as unknown;
      if (!(first instanceof Promise)) return first;
      return first.catch((err: unknown) => retryAfter(this, handler, request, reply, err, started));
    };
  });

  function retryAfter(
    app: FastifyInstance,
    handler: RouteHandlerMethod,
    request: FastifyRequest,
    reply: FastifyReply,
    firstErr: unknown,
    started: number,
  ) {
    const deadline = started + opts.retryMs;
    return pRetry(
      async (attempt) => {
        // The first attempt only replays the failure above, so the schedule and its checks apply to it.
        if (attempt === 1) throw firstErr;
        retried.inc();
        // The caller lookup is memoised per request: a failed one must be looked up again.
        request.callerPromise = undefined;
        return handler.call(app, request, reply);
      },
      {
        forever: true,
        factor: 2,
        minTimeout: delayAfter(1),
        maxTimeout: delayAfter(Number.POSITIVE_INFINITY),
        randomize: false,
        shouldRetry: (err) => {
          const delayMs = delayAfter(err.attemptNumber);
          const gone = reply.sent || reply.raw.headersSent || request.raw.destroyed;
          if (gone || Date.now() + delayMs > deadline || !isRetrySafe(request, err)) return false;
          request.log.warn({ err: err.message, delayMs }, 'database unavailable; retrying');
          return true;
        },
      },
    );
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route deduplicates on the Idempotency-Key header (the same key returns the original), so a
     * request carrying one may be retried even when its commit's outcome is unknown.
     */
    idempotencyKey?: boolean;
  }
}
