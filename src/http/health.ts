import type { FastifyInstance } from 'fastify';
import type { Database } from '../db/client.ts';

export interface Lifecycle {
  draining: boolean;
}

export function registerHealth(app: FastifyInstance, database: Database, lifecycle: Lifecycle) {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    if (lifecycle.draining) return reply.status(503).header('retry-after', '1').send({ status: 'draining' });
    try {
      await database.pool.query('select 1');
      return { status: 'ready' };
    } catch {
      return reply.status(503).header('retry-after', '2').send({ status: 'database unavailable' });
    }
  });
}
