import { Type } from '@sinclair/typebox';
import { and, eq, sql } from 'drizzle-orm';
import type { Tx } from '../../db/client.ts';
import { Col, rowsOf, selectRows } from '../../db/rows.ts';
import { runs } from '../../db/schema/index.ts';
import { queueJobsFor } from '../../grading/queue.ts';
import { isUuid } from '../../http/schemas.ts';

/** A run as its author reads it: these columns of `runs`. */
export type RunRow = Pick<
  typeof runs.$inferSelect,
  'id' | 'exerciseId' | 'userId' | 'status' | 'message' | 'results' | 'output' | 'createdAt'
>;

const runFields = {
  id: runs.id,
  exerciseId: runs.exerciseId,
  userId: runs.userId,
  status: runs.status,
  message: runs.message,
  results: runs.results,
  output: runs.output,
  createdAt: runs.createdAt,
};

const startRows = rowsOf(
  Type.Object({
    locked: Col.bool,
    recent: Col.int,
    retryAfter: Col.int,
    id: Col.nullable(Col.uuid),
    exerciseId: Col.nullable(Col.uuid),
    userId: Col.nullable(Col.uuid),
    status: Col.nullable(Col.text),
    message: Col.nullable(Col.text),
    results: Col.json,
    output: Col.nullable(Col.text),
    createdAt: Col.nullable(Col.timestamp),
  }),
  'run start',
);

/**
 * Starts a run in one statement and one round trip, its own transaction: the gate (lab_run_gate: one
 * run of a user starting at a time, a try-lock, then their runs in the window counted after it), and,
 * when the lock was taken and the count is under `perWindow`, the run and its grading job (a job exists
 * iff its run does). `locked` false: another run of theirs was being started; `run` null: refused.
 */
export async function insertRunIfAllowed(
  db: Tx,
  values: {
    courseId: string;
    exerciseId: string;
    userId: string;
    code: string;
    stdin: string | null;
    allTests: boolean;
  },
  limits: { windowSeconds: number; perWindow: number },
): Promise<{ locked: boolean; recent: number; retryAfterSeconds: number; run: RunRow | null }> {
  const [row] = await selectRows(
    db,
    startRows,
    sql`
    with gate as (
      select locked, recent, retry_after from lab_run_gate(${values.userId}::uuid, ${limits.windowSeconds}::int)
    ), run as (
      insert into runs (course_id, exercise_id, user_id, code, stdin, all_tests)
      select ${values.courseId}, ${values.exerciseId}, ${values.userId}, ${values.code}, ${values.stdin}::text,
             ${values.allTests}::boolean
        from gate
       where gate.locked and gate.recent < ${limits.perWindow}::int
      returning id, course_id, exercise_id, user_id, status, message, results, output, created_at
    ), job as (
      ${queueJobsFor(sql`run`, 'run')}
    )
    select gate.locked, gate.recent, gate.retry_after as "retryAfter",
           run.id, run.exercise_id as "exerciseId", run.user_id as "userId", run.status::text as status,
           run.message, run.results, run.output, run.created_at as "createdAt"
      from gate left join run on true`,
  );
  if (!row) throw new Error('the run gate returned no row');
  const run: RunRow | null =
    row.id === null
      ? null
      : {
          id: row.id,
          exerciseId: row.exerciseId as string,
          userId: row.userId as string,
          status: row.status as RunRow['status'],
          message: row.message,
          results: row.results as RunRow['results'],
          output: row.output,
          createdAt: new Date(row.createdAt as string),
        };
  return { locked: row.locked, recent: row.recent, retryAfterSeconds: row.retryAfter, run };
}

/** The caller's own run; null for anyone else's (or no such run). */
export async function selectOwnRun(tx: Tx, runId: string, userId: string): Promise<RunRow | null> {
  if (!isUuid(runId)) return null;
  const [row] = await tx
    .select(runFields)
    .from(runs)
    .where(and(eq(runs.id, runId), eq(runs.userId, userId)));
  return row ?? null;
}
