import { Type } from '@sinclair/typebox';
import type { AppDeps, TypedApp } from '../../http/app-deps.ts';
import { requireCaller } from '../../http/auth.ts';
import { attachment, downloadName } from '../../http/download-name.ts';
import { sendJson } from '../../http/raw-json.ts';
import { errors } from '../../http/schemas.ts';
import { presentCourse } from '../courses/course.presenter.ts';
import { CourseParams, CourseSchema } from '../courses/course.schemas.ts';
import * as service from './course-content.service.ts';
import { CopyCourseBody, CourseDocument } from './course-document.schemas.ts';

const CourseResponse = Type.Object({ course: CourseSchema });
export const IMPORT_BODY_LIMIT = 16 * 1024 * 1024;

export function courseContentRoutes(app: TypedApp, { database }: AppDeps) {
  // Whole courses at once: heavy routes, on the heavy pool.
  const db = database.heavyDb;
  const tags = ['courses'];

  app.post(
    '/courses/:courseId/copy',
    {
      config: { heavy: true },
      schema: {
        tags,
        description:
          'Staff. A copy of the lessons and exercises (tests, settings, reference solutions); you are its instructor.',
        params: CourseParams,
        body: CopyCourseBody,
        response: { 201: CourseResponse, ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const caller = await requireCaller(request);
      const course = await service.copyCourse(db, caller, request.params.courseId, request.body.title);
      return reply.status(201).send({ course: presentCourse(course) });
    },
  );

  app.get(
    '/courses/:courseId/export',
    {
      config: { heavy: true },
      schema: {
        tags,
        description:
          'Staff. The course document: everything needed to recreate the content (POST /courses/import).',
        params: CourseParams,
        response: { 200: CourseDocument, ...errors(401, 403, 404) },
      },
    },
    async (request, reply) => {
      const caller = await requireCaller(request);
      const doc = await service.exportCourse(db, caller, request.params.courseId);
      // Opened directly, the document downloads under a name that says what it is.
      reply.header(
        'content-disposition',
        attachment(downloadName(doc.course.title, 'export', 'json', new Date())),
      );
      return sendJson(reply, doc);
    },
  );

  app.post(
    '/courses/import',
    {
      config: { heavy: true },
      // A whole course's content, bigger than any other request: up to 16 MiB (v1.1 note in docs/api.md).
      bodyLimit: IMPORT_BODY_LIMIT,
      schema: {
        tags,
        description:
          'A new course from a course document (at most 16 MiB); you are its instructor. An invalid document creates nothing.',
        body: CourseDocument,
        response: { 201: CourseResponse, ...errors(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const caller = await requireCaller(request);
      const course = await service.importCourse(db, caller, request.body, request.rawBody);
      return reply.status(201).send({ course: presentCourse(course) });
    },
  );
}
