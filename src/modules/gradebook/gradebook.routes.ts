import { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import { perDb } from '../../db/replicas.ts';
import type { AppDeps, TypedApp } from '../../http/app-deps.ts';
import { requireCaller } from '../../http/auth.ts';
import { attachment, downloadName } from '../../http/download-name.ts';
import { errors } from '../../http/schemas.ts';
import { authorize, can, isStaff } from '../courses/course.policy.ts';
import { CourseParams } from '../courses/course.schemas.ts';
import { prepareSelectRole, selectMembership } from '../courses/membership.queries.ts';
import { presentGradebook, presentProgress } from './gradebook.presenter.ts';
import { gradebookCsvChunks, selectGradebook, selectProgress } from './gradebook.queries.ts';

const Score = Type.Union([Type.Number(), Type.Null()]);

const GradebookResponse = Type.Object({
  exercises: Type.Array(
    Type.Object({
      id: Type.String(),
      title: Type.String(),
      maxScore: Type.Number(),
      publishedAt: Type.Union([Type.String(), Type.Null()]),
    }),
  ),
  rows: Type.Array(
    Type.Object({
      user: Type.Object({ id: Type.String(), name: Type.String(), email: Type.String() }),
      scores: Type.Record(Type.String(), Score),
      /** v1.1: the best submission was late. */
      late: Type.Record(Type.String(), Type.Boolean()),
      /** v1.1: attempts used. */
      attempts: Type.Record(Type.String(), Type.Integer()),
      total: Type.Number(),
    }),
  ),
});

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
      if (request.query.format !== 'csv') {
        authorize(await reads.run(lsn, (rdb) => roleOf(rdb)(courseId, caller.id)), can.seeStaffData);
        return presentGradebook(
          await reads.run(lsn, (rdb) => selectGradebook(rdb, courseId), { heavy: true }),
        );
      }
      // The title names the file; it comes with the caller's role.
      const { role, title } = await reads.run(lsn, (rdb) => selectMembership(rdb, courseId, caller.id));
      authorize(role, can.seeStaffData);
      // Postgres renders the lines and a cursor hands them over a batch at a time, so a big course never
      // holds the event loop for long. The first batch is awaited before replying: a failure up to then
      // still gets the API error shape instead of a truncated 200.
      const chunks = gradebookCsvChunks(() => reads.connect(lsn, { heavy: true }), courseId);
      const first = await chunks.next();
      if (reply.sent) {
        // Answered meanwhile (the request timeout): nobody will read the rest, so free the connection.
        await chunks.return(undefined);
        return reply;
      }
      const body = new Readable({
        // Called again only once the previous chunk is taken: the socket's backpressure paces the cursor.
        read() {
          chunks.next().then(
            (next) => this.push(next.done ? null : next.value),
            (err: Error) => this.destroy(err),
          );
        },
        // Also when the client goes away mid-download: the generator's cleanup ends the transaction.
        destroy(err, callback) {
          chunks.return(undefined).then(
            () => callback(err),
            (cleanupErr: Error) => callback(err ?? cleanupErr),
          );
        },
      });
      body.push(first.done ? null : first.value);
      return (
        reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', attachment(downloadName(title, 'gradebook', 'csv', new Date())))
          // A stream is sent as is; the JSON response schema does not apply to it.
          .send(body as unknown as ReturnType<typeof presentGradebook>)
      );
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
