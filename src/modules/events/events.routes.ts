import { Type } from '@sinclair/typebox';
import type { AppDeps, TypedApp } from '../../http/app-deps.ts';
import { requireCaller } from '../../http/auth.ts';
import { errors } from '../../http/schemas.ts';
import { parseCursor } from '../../realtime/event-cursor.ts';
import { deliverable, type EventHub, SseStream } from '../../realtime/event-hub.ts';
import { selectVisibleEventsAfter } from '../../realtime/events.queries.ts';
import { overloaded } from '../../shared/errors.ts';

const BACKLOG_LIMIT = 1000;

export function eventRoutes(app: TypedApp, { config, database }: AppDeps, hub: EventHub) {
  app.get(
    '/events',
    {
      schema: {
        tags: ['events'],
        description:
          'Server-Sent Events: `submission.updated` for your submissions and those of courses you teach. ' +
          'Send the last `id:` received back as Last-Event-ID to resume (an opaque cursor).',
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String()) }),
        response: { 200: Type.String({ description: 'text/event-stream' }), ...errors(401, 503) },
      },
    },
    async (request, reply) => {
      const caller = await requireCaller(request);
      if (hub.size >= config.MAX_SSE_STREAMS)
        throw overloaded('Too many open event streams here; retry shortly.', 5);
      // Not a cursor (e.g. from an older stream format): the stream starts from now.
      const cursor = parseCursor(request.headers['last-event-id']);

      reply.hijack();
      const stream = new SseStream(reply.raw, caller.id, config.SSE_HEARTBEAT_MS, (s) => hub.remove(s), {
        via: caller.via,
        id: caller.credentialId,
      });
      hub.add(stream);
      if (cursor === null) return;
      // Subscribe first and hold live events, then read the backlog: nothing falls in between.
      stream.resume(cursor);
      try {
        const backlog = await selectVisibleEventsAfter(database.db, caller.id, cursor, BACKLOG_LIMIT);
        stream.release(deliverable(backlog, request.log), hub.openIds());
      } catch (err) {
        request.log.warn({ err: (err as Error).message }, 'could not read the event backlog');
        stream.end(2000);
      }
    },
  );
}
