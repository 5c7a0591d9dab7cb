import type { FastifyInstance } from 'fastify';
import client, { type Registry } from 'prom-client';
import type { Config } from '../config.ts';
import type { Database } from '../db/client.ts';
import type { ListenerTap } from '../db/listener.ts';
import { recordWritePositions } from '../db/replicas.ts';
import { EventHub } from './event-hub.ts';

/**
 * Starts this instance's event hub (one LISTEN connection) with the app and stops it with the app:
 * streams end in preClose, because the server's close waits for open connections and an SSE stream
 * never ends by itself.
 */
export async function startEventHub(
  app: FastifyInstance,
  { config, database }: { config: Config; database: Database },
  tap: ListenerTap | undefined,
  registry: Registry,
): Promise<EventHub> {
  const url = config.DATABASE_URL ?? database.pool.options.connectionString;
  if (!url) throw new Error('The event hub needs DATABASE_URL (or a pool with a connection string).');
  const hub = new EventHub(database.db, app.log, {
    url,
    applicationName: `lab:${config.INSTANCE_NAME || `api-${process.pid}`}:listen`,
    // Revoked or expired credentials are noticed at the latest one heartbeat later.
    sweepMs: config.SSE_HEARTBEAT_MS,
    // A grader's result is a write the author is told about: their next replica read must show it.
    beforeDeliver: database.reads.enabled ? (ids) => recordWritePositions(database.db, ids) : undefined,
    tap,
  });
  await hub.start();
  // Beside MAX_SSE_STREAMS: how close this instance is to refusing streams with 503.
  new client.Gauge({
    name: 'lab_sse_streams',
    help: 'Event streams open on this instance',
    registers: [registry],
    collect() {
      this.set(hub.size);
    },
  });
  app.addHook('preClose', async () => {
    await hub.close();
  });
  app.addHook('onClose', async () => {
    await hub.close();
  });
  return hub;
}
