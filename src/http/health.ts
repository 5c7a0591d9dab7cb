import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Database } from '../db/client.ts';
import { isDatabaseUnavailable } from '../db/errors.ts';
import type { BoundedPool } from '../db/pool.ts';

export interface Lifecycle {
  draining: boolean;
}

/** A success of the pool's own traffic this recent proves the database without a probe. */
const RECENT_MS = 1000;
/**
 * The longest /readyz waits for a probe (or any request) to prove the database: under HAProxy's check
 * timeout (its `inter`, 500 ms, in deploy/haproxy.cfg), so a slow answer is a clear "not yet".
 */
export const PROBE_WAIT_MS = 250;

/**
 * Whether the database answers, judged first by the pool's own traffic (PoolHealth): a probe queued
 * behind that traffic measured the queue, not the database, and after a failover, when retried requests
 * fill every pool, it took longer than HAProxy's check timeout on every instance at once, so HAProxy
 * answered "No instance is ready" for seconds after the database was back (test/fault/ha.test.ts).
 */
export class DatabaseReadiness {
  private probing: Promise<boolean | null> | null = null;

  constructor(private readonly pool: BoundedPool) {}

  async check(): Promise<boolean> {
    const { health } = this.pool;
    if (health.okAt >= health.failedAt && health.okAt > 0) {
      if (Date.now() - health.okAt < RECENT_MS) return true;
      // Every connection is busy and the last of them to finish succeeded: a probe would only wait.
      if (this.pool.idleCount === 0 && this.pool.totalCount >= (this.pool.options.max ?? 0)) return true;
    }
    // The probe, or any request of the pool's own that succeeds meanwhile; a probe that could not tell
    // leaves the answer to that wait.
    const verdict = this.probe().then((known) => known ?? new Promise<boolean>(() => {}));
    return Promise.race([verdict, health.nextOk(PROBE_WAIT_MS)]);
  }

  /**
   * One `select 1` at a time: true, false when the database itself failed, null when it failed for
   * another reason (it tells nothing about reachability). Always settles, so the next check probes anew.
   */
  private probe(): Promise<boolean | null> {
    this.probing ??= this.pool
      .query('select 1')
      .then(
        () => true,
        (err: unknown) => (isDatabaseUnavailable(err) ? false : null),
      )
      .finally(() => {
        this.probing = null;
      });
    return this.probing;
  }
}

export function registerHealth(app: FastifyInstance, database: Database, lifecycle: Lifecycle) {
  const readiness = new DatabaseReadiness(database.pool);
  let wasReady = true;
  const changed = (log: FastifyBaseLogger, ready: boolean) => {
    if (ready === wasReady) return;
    wasReady = ready;
    if (ready) log.info('ready: the database answers again');
    else log.warn('not ready: the database is unavailable');
  };
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (request, reply) => {
    if (lifecycle.draining) return reply.status(503).header('retry-after', '1').send({ status: 'draining' });
    const ready = await readiness.check();
    changed(request.log, ready);
    if (ready) return { status: 'ready' };
    return reply.status(503).header('retry-after', '2').send({ status: 'database unavailable' });
  });
}
