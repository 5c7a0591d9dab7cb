import { Type } from '@sinclair/typebox';
import type { AppDeps, TypedApp } from '../../http/app-deps.ts';
import { requireCaller } from '../../http/auth.ts';
import { errors, Id, Page } from '../../http/schemas.ts';
import {
  CreateSubmissionBody,
  ListSubmissionsQuery,
  SubmissionResponse,
  SubmissionSchema,
} from './submission.schemas.ts';
import * as service from './submission.service.ts';

const ExerciseParams = Type.Object({ exerciseId: Id });

export function submissionRoutes(app: TypedApp, deps: AppDeps) {
  const { config, database } = deps;
  const { db, heavyDb } = database;

  app.post(
    '/exercises/:exerciseId/submissions',
    {
      config: { idempotencyKey: true },
      schema: {
        tags: ['submissions'],
        params: ExerciseParams,
        headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String()) }),
        body: CreateSubmissionBody,
        response: {
          200: SubmissionResponse,
          202: SubmissionResponse,
          ...errors(400, 401, 403, 404, 409, 429),
        },
      },
    },
    async (request, reply) => {
      const caller = await requireCaller(request);
      const r = await service.submit(
        db,
        () => deps.wakeGraders(),
        {
          exerciseId: request.params.exerciseId,
          userId: caller.id,
          code: request.body.code,
          idempotencyKey: request.headers['idempotency-key'],
        },
        { perMinute: config.SUBMISSIONS_PER_MINUTE },
      );
      return reply.status(r.created ? 202 : 200).send({ submission: r.submission });
    },
  );

  app.get(
    '/submissions/:submissionId',
    {
      schema: {
        tags: ['submissions'],
        params: Type.Object({ submissionId: Id }),
        response: { 200: SubmissionResponse, ...errors(401, 404) },
      },
    },
    async (request) => {
      const caller = await requireCaller(request);
      return { submission: await service.getSubmission(db, request.params.submissionId, caller.id) };
    },
  );

  app.get(
    '/exercises/:exerciseId/submissions',
    {
      schema: {
        tags: ['submissions'],
        params: ExerciseParams,
        querystring: ListSubmissionsQuery,
        response: { 200: Page(SubmissionSchema), ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const caller = await requireCaller(request);
      const { limit, cursor, userId } = request.query;
      return service.listSubmissions(db, {
        exerciseId: request.params.exerciseId,
        userId: caller.id,
        filterUserId: userId,
        cursor,
        limit,
      });
    },
  );

  app.post(
    '/exercises/:exerciseId/regrade',
    {
      config: { heavy: true },
      schema: {
        tags: ['submissions'],
        params: ExerciseParams,
        response: { 202: Type.Object({ queued: Type.Integer() }), ...errors(401, 403, 404) },
      },
    },
    async (request, reply) => {
      const caller = await requireCaller(request);
      const queued = await service.regrade(
        heavyDb,
        () => deps.wakeGraders(),
        request.params.exerciseId,
        caller.id,
      );
      return reply.status(202).send({ queued });
    },
  );
}
