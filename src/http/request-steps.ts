import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppError } from '../shared/errors.ts';

/** Run when a request arrives: an error to answer with (the error handler shapes it), or nothing. */
export type OnRequestStep = (request: FastifyRequest, reply: FastifyReply) => AppError | undefined;
/** Run once the response has been sent (or the client has gone). */
export type OnResponseStep = (request: FastifyRequest, reply: FastifyReply) => void;

/**
 * Lab's per-request steps as one onRequest and one onResponse hook, run in the order given: each
 * Fastify hook costs the hook runner's closure, call and `next` on every request, which plain function
 * calls in a loop do not (docs/perf/lesson-read-profile.md). A step that answers an error stops the
 * steps after it, as a failing hook stopped the hooks after it.
 */
export function registerRequestSteps(
  app: FastifyInstance,
  steps: { onRequest: OnRequestStep[]; onResponse: OnResponseStep[] },
) {
  const onRequest = [...steps.onRequest];
  const onResponse = [...steps.onResponse];
  app.addHook('onRequest', (request, reply, done) => {
    for (let i = 0; i < onRequest.length; i++) {
      const err = onRequest[i]!(request, reply);
      if (err !== undefined) return done(err);
    }
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    for (let i = 0; i < onResponse.length; i++) onResponse[i]!(request, reply);
    done();
  });
}
