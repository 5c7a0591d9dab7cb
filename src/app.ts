import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyReply } from 'fastify';
import type { Config } from './config.ts';
import { JOBS_CHANNEL } from './contracts/channels.ts';
import type { Database } from './db/client.ts';
import { registerQueueMetrics } from './grading/queue-metrics.ts';
import type { AppDeps, TypedApp } from './http/app-deps.ts';
import { registerAuth } from './http/auth.ts';
import { csrfCheck } from './http/csrf.ts';
import { registerDbRetry } from './http/db-retry.ts';
import { bodyLengthLimit, clientErrorHandler, registerErrorHandler } from './http/error-handler.ts';
import { type Lifecycle, registerHealth } from './http/health.ts';
import { registerHeavyLimiter } from './http/heavy.ts';
import { lifecycleHeaders } from './http/lifecycle.ts';
import { createMetrics, observeDuration, registerMetrics } from './http/metrics.ts';
import { registerOverload } from './http/overload.ts';
import { createIpLimits } from './http/rate-limits.ts';
import { registerReadYourWrites } from './http/read-your-writes.ts';
import { registerRequestSteps } from './http/request-steps.ts';
import { ErrorBody } from './http/schemas.ts';
import { registerStatic } from './http/static.ts';
import { firstUnstorableField } from './http/storable-text.ts';
import { requireParamSchemas, unstorableText, validatorCompiler } from './http/validation.ts';
import { coalesced } from './lib/coalesced.ts';
import { authRoutes } from './modules/auth/auth.routes.ts';
import { courseContentRoutes } from './modules/course-content/course-content.routes.ts';
import { courseRoutes } from './modules/courses/course.routes.ts';
import { eventRoutes } from './modules/events/events.routes.ts';
import { exceptionRoutes } from './modules/exceptions/exception.routes.ts';
import { exerciseRoutes } from './modules/exercises/exercise.routes.ts';
import { gradebookRoutes } from './modules/gradebook/gradebook.routes.ts';
import { lessonRoutes } from './modules/lessons/lesson.routes.ts';
import { runRoutes } from './modules/runs/run.routes.ts';
import { submissionRoutes } from './modules/submissions/submission.routes.ts';
import { startEventHub } from './realtime/realtime.ts';

// Re-exported for src/modules/{auth,lessons}/*.routes.ts until they import src/http/app-deps.ts
// (a known exception in .dependency-cruiser.cjs); then delete this line.

export const BODY_LIMIT = 1024 * 1024;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,200}$/;

/** Builds the app from a config and a database; never listens (server.ts does, tests use inject). */
export async function buildApp(config: Config, database: Database, opts: { logger?: boolean } = {}) {
  const app = Fastify({
    logger: opts.logger === false ? false : { level: config.LOG_LEVEL },
    bodyLimit: BODY_LIMIT,
    trustProxy: config.TRUST_PROXY,
    // Accept the caller's X-Request-Id (from a load balancer) when it is sane; otherwise make one.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    requestTimeout: config.REQUEST_TIMEOUT_MS * 2,
    clientErrorHandler,
    // Requests already on an open connection while closing are served (drain sends Connection: close).
    return503OnClosing: false,
    // A URL the router cannot decode (bad %-escape) never reaches the error handler; without this
    // Fastify answers it in its own body shape instead of API.md's.
    frameworkErrors: (err, _request, reply) => {
      const message = err.code === 'FST_ERR_BAD_URL' ? 'is not a valid URL' : 'has a path segment too long';
      return (reply as unknown as FastifyReply)
        .status(400)
        .type('application/json; charset=utf-8')
        .send({
          error: {
            code: 'validation_failed',
            message: `url ${message}`,
            details: [{ field: 'url', message }],
          },
        });
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const lifecycle: Lifecycle = { draining: false };
  const metrics = createMetrics(database);
  const deps: AppDeps = {
    config,
    database,
    lifecycle,
    metrics,
    ipLimits: createIpLimits(database.pool, config),
    wakeGraders: () => {},
  };
  app.decorate('deps', deps);

  app.setValidatorCompiler(validatorCompiler);
  requireParamSchemas(app);
  app.addSchema(ErrorBody);
  registerErrorHandler(app);
  registerDbRetry(app, { retryMs: config.DB_RETRY_MS, registry: metrics.registry });

  // Only JSON bodies are accepted (API.md: anything else is 415), so drop Fastify's text/plain parser.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') return done(null, undefined);
    let value: unknown;
    try {
      value = JSON.parse(body as string);
    } catch {
      return done(Object.assign(new SyntaxError('invalid json'), { statusCode: 400 }), undefined);
    }
    const bad = firstUnstorableField(value);
    if (bad) return done(unstorableText(bad), undefined);
    // Kept for the routes that read part of the body as written (exercise tests: lib/json-text.ts).
    request.rawBody = body as string;
    done(null, value);
  });
  app.decorateRequest('rawBody', undefined);
  // Querystrings and path parameters are checked by the validator (http/validation.ts). Per-request
  // hooks are in callback style: no promise per hook per request (docs/perf/lesson-read-profile.md).

  const callers = registerAuth(app, database.db, database.reads.enabled, metrics.registry);
  registerReadYourWrites(app, database);
  registerHealth(app, database, lifecycle);
  registerMetrics(app, metrics);
  registerQueueMetrics(metrics.registry, database.db);
  const eventHub = await startEventHub(app, deps, callers.tap, metrics.registry);
  // Sent after a submit's commit, not inside it: a NOTIFY in a writing transaction serialises commits
  // (announceEvent in grading/queue.ts has the figures).
  deps.wakeGraders = coalesced(() => eventHub.notify(JOBS_CHANNEL, ''));
  const overload = await registerOverload(app, deps);
  registerHeavyLimiter(app, deps);
  // Every request's own steps, in this order, as one hook each way (http/request-steps.ts).
  registerRequestSteps(app, {
    onRequest: [lifecycleHeaders(lifecycle), bodyLengthLimit(app), csrfCheck(config), overload.onRequest],
    onResponse: [observeDuration(metrics), overload.onResponse],
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'Lab API', version: '1.0.0', description: 'Generated from the route schemas.' },
      components: {
        securitySchemes: {
          cookie: { type: 'apiKey', in: 'cookie', name: 'lab_session' },
          bearer: { type: 'http', scheme: 'bearer' },
        },
      },
      security: [{ cookie: [] }, { bearer: [] }],
    },
  });
  app.get('/docs', { schema: { hide: true } }, async () => app.swagger());

  await app.register(
    async (api) => {
      const typed = api as unknown as TypedApp;
      authRoutes(typed, deps);
      submissionRoutes(typed, deps);
      eventRoutes(typed, deps, eventHub);
      runRoutes(typed, deps, eventHub);
      exceptionRoutes(typed, deps);
      courseRoutes(typed, deps);
      courseContentRoutes(typed, deps);
      lessonRoutes(typed, deps);
      exerciseRoutes(typed, deps);
      gradebookRoutes(typed, deps);
    },
    { prefix: '/api/v1' },
  );

  // The browser app (web/dist) at `/`, after the API so unknown /api paths keep their JSON 404.
  await registerStatic(app);

  return app;
}
