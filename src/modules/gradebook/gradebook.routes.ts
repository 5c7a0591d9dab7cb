import { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { AppDeps, TypedApp } from '../../app.ts';
import { perDb } from '../../db/replicas.ts';
import { requireCaller } from '../../http/auth.ts';
import { errors } from '../../http/schemas.ts';
import { authorize, can } from '../courses/course.policy.ts';
import { CourseParams } from '../courses/course.schemas.ts';
import { prepareSelectRole } from '../courses/membership.queries.ts';
import { presentGradebook, presentProgress } from './gradebook.presenter.ts';
import { gradebookCsvChunks, selectGradebook, selectProgress } from './gradebook.queries.ts';

const Score = Type.Union([Type.Number(), Type.Null()]);

const GradebookResponse = Type.Object({
  exercises: Type.Array(Type.Object({ id: Type.String(), title: Type.String(), maxScore: Type.Number() })),
  rows: Type.Array(
    Type.Object({
      user: Type.Object({ id: Type.String(), name: Type.String(), email: Type.String() }),
      scores: Type.Record(Type.String(), Score),
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
      authorize(await reads.run(lsn, (rdb) => roleOf(rdb)(courseId, caller.id)), can.seeStaffData);
      if (request.query.format !== 'csv')
        return presentGradebook(
          await reads.run(lsn, (rdb) => selectGradebook(rdb, courseId), { heavy: true }),
        );
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
          .header('content-disposition', `attachment; filename="gradebook-${courseId}.csv"`)
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
        authorize(await roleOf(rdb)(courseId, caller.id), can.view);
        return presentProgress(await selectProgress(rdb, courseId, caller.id));
      });
    },
  );
}
