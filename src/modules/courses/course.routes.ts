import { Type } from '@sinclair/typebox';
import { perDb } from '../../db/replicas.ts';
import type { AppDeps, TypedApp } from '../../http/app-deps.ts';
import { requireCaller } from '../../http/auth.ts';
import { errors, isUuid, Page, PageQuery } from '../../http/schemas.ts';
import { AppError } from '../../shared/errors.ts';
import { requireVisible } from './course.policy.ts';
import { presentCourse, presentLessonSummary, presentMember } from './course.presenter.ts';
import { prepareCourseDetail } from './course.queries.ts';
import {
  CourseParams,
  CourseSchema,
  CreateCourseBody,
  JoinBody,
  LessonSummarySchema,
  MemberParams,
  MemberSchema,
  PatchCourseBody,
  PutMemberBody,
} from './course.schemas.ts';
import * as service from './course.service.ts';

const CourseResponse = Type.Object({ course: CourseSchema });

export function courseRoutes(app: TypedApp, { database, ipLimits }: AppDeps) {
  const { db, reads } = database;
  // Course pages and lists tolerate a few ms of lag: replicas when configured (read-your-writes).
  const courseDetail = perDb(prepareCourseDetail);
  const tags = ['courses'];

  app.post(
    '/courses',
    { schema: { tags, body: CreateCourseBody, response: { 201: CourseResponse, ...errors(400, 401, 403) } } },
    async (request, reply) => {
      const caller = await requireCaller(request);
      const course = await service.createCourse(db, caller, request.body);
      return reply.status(201).send({ course: presentCourse(course) });
    },
  );

  app.get(
    '/courses',
    { schema: { tags, querystring: PageQuery, response: { 200: Page(CourseSchema), ...errors(400, 401) } } },
    async (request) => {
      const caller = await requireCaller(request);
      return reads.run(caller.writeLsn ?? null, (rdb) => service.listMyCourses(rdb, caller, request.query));
    },
  );

  app.post(
    '/courses/join',
    {
      schema: {
        tags,
        body: JoinBody,
        response: { 200: CourseResponse, ...errors(400, 401, 403, 404, 409, 429) },
      },
    },
    async (request) => {
      const caller = await requireCaller(request);
      // Only wrong codes count: a class joining from one school's address is not guessing.
      await ipLimits.joinFailure.check(request.ip);
      try {
        return { course: presentCourse(await service.join(db, caller, request.body.joinCode)) };
      } catch (err) {
        if (err instanceof AppError && err.code === 'invalid_join_code')
          await ipLimits.joinFailure.consume(request.ip);
        throw err;
      }
    },
  );

  app.get(
    '/courses/:courseId',
    {
      schema: {
        tags,
        params: CourseParams,
        response: {
          200: Type.Object({ course: CourseSchema, lessons: Type.Array(LessonSummarySchema) }),
          ...errors(401, 404),
        },
      },
    },
    async (request) => {
      const caller = await requireCaller(request);
      const { courseId } = request.params;
      const row = requireVisible(
        isUuid(courseId)
          ? await reads.run(caller.writeLsn ?? null, (rdb) => courseDetail(rdb)(courseId, caller.id))
          : null,
        'Course',
      );
      return { course: presentCourse(row), lessons: row.lessons.map(presentLessonSummary) };
    },
  );

  app.patch(
    '/courses/:courseId',
    {
      schema: {
        tags,
        params: CourseParams,
        body: PatchCourseBody,
        response: { 200: CourseResponse, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const caller = await requireCaller(request);
      const course = await service.updateCourse(db, caller, request.params.courseId, request.body);
      return { course: presentCourse(course) };
    },
  );

  app.get(
    '/courses/:courseId/members',
    {
      schema: {
        tags,
        params: CourseParams,
        querystring: PageQuery,
        response: { 200: Page(MemberSchema), ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const caller = await requireCaller(request);
      return service.listMembers(db, caller, request.params.courseId, request.query);
    },
  );

  app.put(
    '/courses/:courseId/members/:userId',
    {
      schema: {
        tags,
        params: MemberParams,
        body: PutMemberBody,
        response: { 200: Type.Object({ member: MemberSchema }), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const caller = await requireCaller(request);
      const { courseId, userId } = request.params;
      const member = await service.setMemberRole(db, caller, courseId, userId, request.body.role);
      return { member: presentMember(member) };
    },
  );

  app.post(
    '/courses/:courseId/join-code',
    {
      schema: {
        tags,
        description: 'Instructor. A new join code; the old one stops working.',
        params: CourseParams,
        response: { 200: CourseResponse, ...errors(401, 403, 404) },
      },
    },
    async (request) => {
      const caller = await requireCaller(request);
      return { course: presentCourse(await service.regenerateJoinCode(db, caller, request.params.courseId)) };
    },
  );

  app.delete(
    '/courses/:courseId/members/:userId',
    {
      schema: {
        tags,
        description: 'Instructor. The member loses access; their submissions are kept. 409 last_instructor.',
        params: MemberParams,
        response: errors(401, 403, 404, 409),
      },
    },
    async (request, reply) => {
      const caller = await requireCaller(request);
      await service.removeMember(db, caller, request.params.courseId, request.params.userId);
      return reply.status(204).send();
    },
  );
}
