import { Type } from '@sinclair/typebox';
import { perDb } from '../../db/replicas.ts';
import type { AppDeps, TypedApp } from '../../http/app-deps.ts';
import { requireCaller } from '../../http/auth.ts';
import { chunkStream } from '../../http/chunk-stream.ts';
import { attachment, downloadName } from '../../http/download-name.ts';
import { errors } from '../../http/schemas.ts';
import { authorize, can, isStaff } from '../courses/course.policy.ts';
import { CourseParams } from '../courses/course.schemas.ts';
import { prepareSelectRole, selectMembership } from '../courses/membership.queries.ts';
import { presentProgress } from './gradebook.presenter.ts';
import { gradebookCsvChunks, gradebookJsonChunks, selectProgress } from './gradebook.queries.ts';
import { GRADEBOOK_JSON_END } from './gradebook.render.ts';
import { type Gradebook, GradebookResponse, Score } from './gradebook.schemas.ts';

const ProgressResponse = Type.Object({
  exercises: Type.Array(
    Type.Object({
      id: Type.String(),
      title: Type.String(),
      maxScore: Type.Number(),
      bestScore: Score,
      attempts: Type.Integer(),
      /** v1.1: the caller's own due date and attempts left (null = no limit). */
      dueAt: Type.Union([Type.String(), Type.Null()]),
      attemptsLeft: Type.Union([Type.Integer(), Type.Null()]),
      late: Type.Boolean(),
    }),
  ),
  total: Type.Number(),
  maxTotal: Type.Number(),
});

export function gradebookRoutes(app: TypedApp, { database }: AppDeps) {
  const { reads } = database;
  // Gradebook, CSV and progress tolerate a few ms of lag: on a replica when configured, unless it has
  // not replayed the caller's last write yet (src/db/replicas.ts).
  const roleOf = perDb(prepareSelectRole);
  const tags = ['gradebook'];

  app.get(
    '/courses/:courseId/gradebook',
    {
      // Big courses make this the slowest read: it runs on the heavy pool under the heavy limit.
      config: { heavy: true },
      schema: {
        tags,
        params: CourseParams,
        querystring: Type.Object(
          { format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')])) },
          { additionalProperties: false },
        ),
        response: { 200: GradebookResponse, ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const caller = await requireCaller(request);
      const { courseId } = request.params;
      const lsn = caller.writeLsn ?? null;
      const csv = request.query.format === 'csv';
      // The title names the CSV file; it comes with the caller's role.
      const { role, title } = await reads.run(lsn, (rdb) => selectMembership(rdb, courseId, caller.id));
      authorize(role, can.seeStaffData);
      // A cursor hands the students over a batch at a time and each batch is written as text before the
      // next is read, so a big course never holds the event loop for long; the stream reads ahead (http/chunk-stream.ts), so
      // the heavy connection is held for Postgres's time, not for a slow client's download. The first
      // batch is awaited before replying: a failure up to then still gets the API error shape.
      const connect = () => reads.connect(lsn, { heavy: true });
      const chunks = csv ? gradebookCsvChunks(connect, courseId) : gradebookJsonChunks(connect, courseId);
      const first = await chunks.next();
      if (reply.sent) {
        // Answered meanwhile (the request timeout): nobody will read the rest, so free the connection.
        await chunks.return(undefined);
        return reply;
      }
      const body = chunkStream(chunks, first, csv ? null : GRADEBOOK_JSON_END);
      if (csv)
        reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', attachment(downloadName(title, 'gradebook', 'csv', new Date())));
      else reply.type('application/json; charset=utf-8');
      // A stream is sent as is; the response schema documents the JSON shape but does not apply to it.
      return reply.send(body as unknown as Gradebook);
    },
  );

  app.get(
    '/courses/:courseId/progress',
    {
      schema: { tags, params: CourseParams, response: { 200: ProgressResponse, ...errors(401, 404) } },
    },
    async (request) => {
      const caller = await requireCaller(request);
      const { courseId } = request.params;
      return reads.run(caller.writeLsn ?? null, async (rdb) => {
        const role = await roleOf(rdb)(courseId, caller.id);
        authorize(role, can.view);
        return presentProgress(await selectProgress(rdb, courseId, caller.id, isStaff(role)));
      });
    },
  );
}
