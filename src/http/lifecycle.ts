import type { FastifyInstance } from 'fastify';
import type { AppDeps } from './app-deps.ts';

/**
 * While draining, every response says `Connection: close`, so a load balancer's kept-alive connection
 * to this instance is not reused: its next request opens a new connection, which goes to an instance
 * that is still ready.
 */
export function registerLifecycle(app: FastifyInstance, deps: AppDeps) {
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (deps.lifecycle.draining) reply.header('connection', 'close');
    done(null, payload);
  });
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
