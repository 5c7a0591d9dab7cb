import type { FastifyReply } from 'fastify';
import { stringifyWithRaw } from '../lib/json-text.ts';

/**
 * Sends a body that embeds JSON kept as text (a test's arguments and expected value, see
 * lib/json-text.ts). The route's response schema still documents the shape in /docs, but the
 * serializer it would compile cannot write a RawJson value as written, so the text is made here.
 */
export function sendJson(reply: FastifyReply, body: unknown) {
  return reply.type('application/json; charset=utf-8').send(stringifyWithRaw(body));
}
