import { Type } from '@sinclair/typebox';
import type { AppDeps, TypedApp } from '../../http/app-deps.ts';
import { requireCaller } from '../../http/auth.ts';
import { errors } from '../../http/schemas.ts';
import { ExerciseParams } from '../exercises/exercise.schemas.ts';
import { ExceptionParams, ExceptionSchema, PutExceptionBody } from './exception.schemas.ts';
import * as service from './exception.service.ts';

export function exceptionRoutes(app: TypedApp, { database }: AppDeps) {
  const { db } = database;
  const tags = ['exceptions'];

  app.put(
    '/exercises/:exerciseId/exceptions/:userId',
    {
      schema: {
        tags,
        description: "A student's own due date and extra attempts for this exercise (staff).",
        params: ExceptionParams,
        body: PutExceptionBody,
        response: { 200: Type.Object({ exception: ExceptionSchema }), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const caller = await requireCaller(request);
      const { exerciseId, userId } = request.params;
      return { exception: await service.putException(db, caller, exerciseId, userId, request.body) };
    },
  );

  app.delete(
    '/exercises/:exerciseId/exceptions/:userId',
    { schema: { tags, params: ExceptionParams, response: errors(401, 403, 404, 409) } },
    async (request, reply) => {
      const caller = await requireCaller(request);
      await service.deleteException(db, caller, request.params.exerciseId, request.params.userId);
      return reply.status(204).send();
    },
  );

  app.get(
    '/exercises/:exerciseId/exceptions',
    {
      schema: {
        tags,
        params: ExerciseParams,
        response: { 200: Type.Object({ items: Type.Array(ExceptionSchema) }), ...errors(401, 403, 404) },
      },
    },
    async (request) => {
      const caller = await requireCaller(request);
      return { items: await service.listExceptions(db, caller, request.params.exerciseId) };
    },
  );
}
