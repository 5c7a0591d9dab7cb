import type { FastifyInstance } from 'fastify';
import type { Database } from '../db/client.ts';
import { recordWritePositions } from '../db/replicas.ts';

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * With read replicas: once a signed-in user's write has succeeded, and before the response leaves, the
 * primary's WAL position is stored for that user, so their next reads — on any instance — wait for a
 * replica that has replayed it (src/db/replicas.ts). Without DATABASE_READ_URL this is not registered.
 */
export function registerReadYourWrites(app: FastifyInstance, database: Database) {
  if (!database.reads.enabled) return;
  app.addHook('onSend', async (request, reply, payload) => {
    if (READS.has(request.method) || reply.statusCode >= 300 || !request.callerPromise) return payload;
    const caller = await request.callerPromise.catch(() => null);
    if (!caller) return payload;
    try {
      await recordWritePositions(database.db, [caller.id]);
    } catch (err) {
      // The write itself succeeded; at worst this user's next read is served by a replica a few ms behind.
      request.log.warn({ err: (err as Error).message }, 'could not record the write position');
    }
    return payload;
  });
}
