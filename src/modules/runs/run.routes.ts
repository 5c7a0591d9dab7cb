import type { AppDeps, TypedApp } from '../../http/app-deps.ts';
import { requireCaller } from '../../http/auth.ts';
import { errors } from '../../http/schemas.ts';
import type { EventHub } from '../../realtime/event-hub.ts';
import { ExerciseParams } from '../exercises/exercise.schemas.ts';
import { CreateRunBody, RunParams, RunResponse } from './run.schemas.ts';
import * as service from './run.service.ts';

export function runRoutes(app: TypedApp, deps: AppDeps, hub: EventHub) {
  const { config, database } = deps;
  const { db } = database;
  const tags = ['runs'];

  app.post(
    '/exercises/:exerciseId/runs',
    {
      schema: {
        tags,
        description:
          'Runs the visible tests (staff: all tests), or with `stdin` the program once on that input. No attempt is ' +
          "used. 200 when done within the exercise's limits + 5 s, else 202 with status queued and a later run.updated event.",
        params: ExerciseParams,
        body: CreateRunBody,
        response: { 200: RunResponse, 202: RunResponse, ...errors(400, 401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => {
      const caller = await requireCaller(request);
      const r = await service.startRun(
        db,
        hub,
        () => deps.wakeGraders(),
        caller,
        { exerciseId: request.params.exerciseId, ...request.body },
        { maxGradingMs: config.GRADING_MAX_SUBMISSION_MS, requestTimeoutMs: config.REQUEST_TIMEOUT_MS },
      );
      return reply.status(r.done ? 200 : 202).send({ run: r.run });
    },
  );

  app.get(
    '/runs/:runId',
    { schema: { tags, params: RunParams, response: { 200: RunResponse, ...errors(401, 404) } } },
    async (request) => {
      const caller = await requireCaller(request);
      return { run: await service.getRun(db, caller, request.params.runId) };
    },
  );
}
