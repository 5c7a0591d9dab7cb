import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { perDb } from '../../db/replicas.ts';
import type { AppDeps, TypedApp } from '../../http/app-deps.ts';
import { requireCaller } from '../../http/auth.ts';
import { errors, isUuid } from '../../http/schemas.ts';
import { notFound } from '../../shared/errors.ts';
import { canSee } from '../courses/course.policy.ts';
import { CourseParams } from '../courses/course.schemas.ts';
import { lessonPageJson, presentLesson } from './lesson.presenter.ts';
import { prepareLessonPage } from './lesson.queries.ts';
import {
  CreateLessonBody,
  ExerciseSummarySchema,
  LessonParams,
  LessonSchema,
  PatchLessonBody,
} from './lesson.schemas.ts';
import * as service from './lesson.service.ts';

const LessonResponse = Type.Object({ lesson: LessonSchema });

export function lessonRoutes(app: TypedApp, { database }: AppDeps) {
  const { db, reads } = database;
  const lessonPage = perDb(prepareLessonPage);
  const tags = ['lessons'];

  app.post(
    '/courses/:courseId/lessons',
    {
      schema: {
        tags,
        params: CourseParams,
        body: CreateLessonBody,
        response: { 201: LessonResponse, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const caller = await requireCaller(request);
      const lesson = await service.createLesson(db, caller, request.params.courseId, request.body);
      return reply.status(201).send({ lesson: presentLesson(lesson) });
    },
  );

  app.get(
    '/lessons/:lessonId',
    {
      schema: {
        tags,
        params: LessonParams,
        response: {
          200: Type.Object({ lesson: LessonSchema, exercises: Type.Array(ExerciseSummarySchema) }),
          ...errors(401, 404),
        },
      },
    },
    async (request, reply) => {
      const caller = await requireCaller(request);
      const { lessonId } = request.params;
      // On a replica when configured, unless it has not replayed this user's last write yet.
      const row = isUuid(lessonId)
        ? await reads.run(caller.writeLsn ?? null, (rdb) => lessonPage(rdb)(lessonId, caller.id))
        : null;
      if (!row || !canSee(row.role, row.visible)) throw notFound('Lesson');
      // Written as text (the schema above documents it for /docs; the serializer it compiles is skipped).
      return (reply as FastifyReply).type('application/json; charset=utf-8').send(lessonPageJson(row));
    },
  );

  app.patch(
    '/lessons/:lessonId',
    {
      schema: {
        tags,
        params: LessonParams,
        body: PatchLessonBody,
        response: { 200: LessonResponse, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const caller = await requireCaller(request);
      const lesson = await service.updateLesson(db, caller, request.params.lessonId, request.body);
      return { lesson: presentLesson(lesson) };
    },
  );

  app.delete(
    '/lessons/:lessonId',
    { schema: { tags, params: LessonParams, response: errors(401, 403, 404, 409) } },
    async (request, reply) => {
      const caller = await requireCaller(request);
      await service.deleteLesson(db, caller, request.params.lessonId);
      return reply.status(204).send();
    },
  );
}
