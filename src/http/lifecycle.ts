import type { FastifyInstance } from 'fastify';
import type { Lifecycle } from './health.ts';
import type { OnRequestStep } from './request-steps.ts';

/**
 * Headers every response carries, set when the request arrives (a header set then survives to the
 * error handler; an onSend hook would cost a hook run per response). The first step of every request:
 * - `X-Request-Id`: the id the logs carry (the caller's own when it gave a sane one);
 * - while draining, `Connection: close`, so a load balancer's kept-alive connection to this instance is
 *   not reused: its next request opens a new connection, which goes to an instance that is still ready.
 */
export function lifecycleHeaders(lifecycle: Lifecycle): OnRequestStep {
  return (request, reply) => {
    reply.header('x-request-id', request.id);
    if (lifecycle.draining) reply.header('connection', 'close');
    return undefined;
  };
}

export interface DrainOptions {
  graceMs: number;
  /** Longest wait for in-flight requests after the grace period; then remaining connections are cut. */
  closeTimeoutMs: number;
  log?: (msg: string) => void;
}

/**
 * The SIGTERM sequence of an API instance: /readyz turns 503 at once; keep serving for graceMs so the
 * load balancer notices (longer than its check interval × fall); then stop accepting, finish in-flight
 * requests (app.close runs preClose/onClose hooks: SSE streams are told to reconnect elsewhere).
 */
export async function drain(app: FastifyInstance, opts: DrainOptions): Promise<void> {
  const log = opts.log ?? (() => {});
  app.deps.lifecycle.draining = true;
  log(`draining: /readyz is 503; serving ${opts.graceMs} ms more`);
  if (opts.graceMs > 0) await new Promise((r) => setTimeout(r, opts.graceMs));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), opts.closeTimeoutMs);
  });
  const closing = app.close().then(() => 'closed' as const);
  const result = await Promise.race([closing, timedOut]);
  clearTimeout(timer);
  if (result === 'timeout') {
    log('in-flight requests did not finish in time; closing their connections');
    app.server.closeAllConnections();
    await Promise.race([closing, new Promise((r) => setTimeout(r, 2000).unref())]);
  }
}
