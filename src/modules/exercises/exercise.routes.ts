import { Type } from '@sinclair/typebox';
import { perDb } from '../../db/replicas.ts';
import type { AppDeps, TypedApp } from '../../http/app-deps.ts';
import { requireCaller } from '../../http/auth.ts';
import { sendJson } from '../../http/raw-json.ts';
import { errors, isUuid } from '../../http/schemas.ts';
import { requireVisible } from '../courses/course.policy.ts';
import { LessonParams } from '../lessons/lesson.schemas.ts';
import { presentExercise } from './exercise.presenter.ts';
import { prepareExerciseDetail } from './exercise.queries.ts';
import {
  CreateExerciseBody,
  DeleteExerciseQuery,
  ExerciseParams,
  ExerciseSchema,
  PatchExerciseBody,
} from './exercise.schemas.ts';
import * as service from './exercise.service.ts';

const ExerciseResponse = Type.Object({ exercise: ExerciseSchema });

export function exerciseRoutes(app: TypedApp, { database }: AppDeps) {
  const { db, reads } = database;
  const exerciseDetail = perDb(prepareExerciseDetail);
  const tags = ['exercises'];

  app.post(
    '/lessons/:lessonId/exercises',
    {
      schema: {
        tags,
        params: LessonParams,
        body: CreateExerciseBody,
        response: { 201: ExerciseResponse, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const caller = await requireCaller(request);
      const r = await service.createExercise(
        db,
        caller,
        request.params.lessonId,
        request.body,
        request.rawBody,
      );
      return sendJson(reply.status(201), { exercise: presentExercise(r.exercise, r.role) });
    },
  );

  app.get(
    '/exercises/:exerciseId',
    {
      schema: { tags, params: ExerciseParams, response: { 200: ExerciseResponse, ...errors(401, 404) } },
    },
    async (request, reply) => {
      const caller = await requireCaller(request);
      const { exerciseId } = request.params;
      // On a replica when configured, unless it has not replayed this user's last write yet.
      const row = requireVisible(
        isUuid(exerciseId)
          ? await reads.run(caller.writeLsn ?? null, (rdb) => exerciseDetail(rdb)(exerciseId, caller.id))
          : null,
        'Exercise',
      );
      return sendJson(reply, { exercise: presentExercise(row, row.role, row) });
    },
  );

  app.patch(
    '/exercises/:exerciseId',
    {
      schema: {
        tags,
        params: ExerciseParams,
        body: PatchExerciseBody,
        response: { 200: ExerciseResponse, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const caller = await requireCaller(request);
      const r = await service.updateExercise(
        db,
        caller,
        request.params.exerciseId,
        request.body,
        request.rawBody,
      );
      return sendJson(reply, { exercise: presentExercise(r.exercise, r.role) });
    },
  );

  app.delete(
    '/exercises/:exerciseId',
    {
      schema: {
        tags,
        description:
          'Staff. An exercise with submissions only with ?force=true (its submissions go too); else 409 has_submissions.',
        params: ExerciseParams,
        querystring: DeleteExerciseQuery,
        response: errors(400, 401, 403, 404, 409),
      },
    },
    async (request, reply) => {
      const caller = await requireCaller(request);
      await service.deleteExercise(db, caller, request.params.exerciseId, request.query.force === true);
      return reply.status(204).send();
    },
  );
}
