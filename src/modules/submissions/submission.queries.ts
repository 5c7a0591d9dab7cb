import { Type } from '@sinclair/typebox';
import { and, desc, eq, sql } from 'drizzle-orm';
import type { Tx } from '../../db/client.ts';
import { afterCursor, type Cursor, cursorKey } from '../../db/paging.ts';
import { Col, rowsOf, selectRows } from '../../db/rows.ts';
import { courseMembers, exercises, submissions } from '../../db/schema/index.ts';
import { queueJobsFor } from '../../grading/queue.ts';
import { isUuid } from '../../http/schemas.ts';
import type { Role } from '../courses/course.policy.ts';
import { visibleTestNames } from '../exercises/exercise-access.queries.ts';
import { creditAt, credited, effectiveDue } from '../exercises/exercise-rules.ts';

/** A submission as the API shows it: these columns of `submissions`. */
export type SubmissionRow = Pick<
  typeof submissions.$inferSelect,
  | 'id'
  | 'exerciseId'
  | 'userId'
  | 'code'
  | 'status'
  | 'score'
  | 'rawScore'
  | 'credit'
  | 'message'
  | 'late'
  | 'createdAt'
  | 'gradedAt'
  | 'results'
>;

export const submissionColumns = {
  id: submissions.id,
  exerciseId: submissions.exerciseId,
  userId: submissions.userId,
  code: submissions.code,
  status: submissions.status,
  score: submissions.score,
  rawScore: submissions.rawScore,
  credit: submissions.credit,
  message: submissions.message,
  late: submissions.late,
  createdAt: submissions.createdAt,
  gradedAt: submissions.gradedAt,
  results: submissions.results,
};

export async function selectOptionalSubmissionByKey(
  tx: Tx,
  userId: string,
  exerciseId: string,
  idempotencyKey: string,
): Promise<(SubmissionRow & { bodyHash: string }) | null> {
  const [row] = await tx
    .select({ ...submissionColumns, bodyHash: submissions.bodyHash })
    .from(submissions)
    .where(
      and(
        eq(submissions.userId, userId),
        eq(submissions.exerciseId, exerciseId),
        eq(submissions.idempotencyKey, idempotencyKey),
      ),
    )
    .limit(1);
  return row ?? null;
}

const gateRows = rowsOf(
  Type.Object({
    locked: Col.bool,
    recent: Col.int,
    retryAfter: Col.int,
    attempts: Col.int,
    priorHash: Col.nullable(Col.text),
    id: Col.nullable(Col.uuid),
    exerciseId: Col.nullable(Col.uuid),
    userId: Col.nullable(Col.uuid),
    code: Col.nullable(Col.text),
    status: Col.nullable(Col.text),
    score: Col.nullable(Col.float),
    rawScore: Col.nullable(Col.float),
    credit: Col.nullable(Col.float),
    message: Col.nullable(Col.text),
    late: Col.nullable(Col.bool),
    createdAt: Col.nullable(Col.timestamp),
    gradedAt: Col.nullable(Col.timestamp),
    results: Col.json,
  }),
  'submit',
);

/** What the submit statement found: the gate's figures, an earlier submission with the key, and the new row. */
export interface SubmitOutcome {
  /** false: another submit of this user to this exercise held the lock; nothing was inserted. */
  locked: boolean;
  /** The user's submissions (any exercise) in the window, and seconds until the oldest leaves it. */
  recent: number;
  retryAfterSeconds: number;
  /** Attempts used at this exercise (infrastructure errors excluded). */
  attempts: number;
  /** The body hash of an earlier submission with this Idempotency-Key (nothing was inserted), else null. */
  priorHash: string | null;
  /** The submission inserted, queued with its grading job; null when a check refused it. */
  inserted: SubmissionRow | null;
}

/**
 * A submit in one statement and one round trip, its own transaction: the gate (lab_submit_gate: the
 * submitter's try-lock, then the limits counted after it), an earlier submission with the same
 * Idempotency-Key, and, only when every check passes, the submission and its grading job (a job exists
 * iff its submission does). The checks are the caller's too: it reads which one refused from the
 * figures returned, in the order the API answers them. No NOTIFY here: the service wakes the graders
 * after the commit (AppDeps.wakeGraders), so this commit does not wait on Postgres's notify lock.
 */
export async function insertSubmissionIfAllowed(
  db: Tx,
  values: {
    courseId: string;
    exerciseId: string;
    userId: string;
    code: string;
    late: boolean;
    credit: number;
    idempotencyKey: string | null;
    bodyHash: string;
  },
  limits: { windowSeconds: number; perWindow: number; allowedAttempts: number | null; archived: boolean },
): Promise<SubmitOutcome> {
  const { courseId, exerciseId, userId } = values;
  const [row] = await selectRows(
    db,
    gateRows,
    sql`
    with gate as (
      select locked, recent, retry_after, attempts
        from lab_submit_gate(${userId}::uuid, ${exerciseId}::uuid, ${limits.windowSeconds}::int)
    ), prior as (
      select body_hash from submissions
       where user_id = ${userId} and exercise_id = ${exerciseId} and idempotency_key = ${values.idempotencyKey}::text
       limit 1
    ), sub as (
      insert into submissions (course_id, exercise_id, user_id, code, late, credit, idempotency_key, body_hash)
      select ${courseId}, ${exerciseId}, ${userId}, ${values.code}, ${values.late}, ${values.credit},
             ${values.idempotencyKey}::text, ${values.bodyHash}
        from gate
       where gate.locked and not exists (select 1 from prior) and not ${limits.archived}::boolean
         and gate.recent < ${limits.perWindow}::int
         and (${limits.allowedAttempts}::int is null or gate.attempts < ${limits.allowedAttempts}::int)
      returning id, course_id, exercise_id, user_id, code, status, score, raw_score, credit, message, late,
                created_at, graded_at, results
    ), job as (
      ${queueJobsFor(sql`sub`)}
    )
    select gate.locked, gate.recent, gate.retry_after as "retryAfter", gate.attempts,
           prior.body_hash as "priorHash",
           sub.id, sub.exercise_id as "exerciseId", sub.user_id as "userId", sub.code, sub.status::text as status,
           sub.score, sub.raw_score as "rawScore", sub.credit, sub.message, sub.late,
           sub.created_at as "createdAt", sub.graded_at as "gradedAt", sub.results
      from gate left join prior on true left join sub on true`,
  );
  if (!row) throw new Error('the submit gate returned no row');
  return {
    locked: row.locked,
    recent: row.recent,
    retryAfterSeconds: row.retryAfter,
    attempts: row.attempts,
    priorHash: row.priorHash,
    inserted: row.id === null ? null : insertedRow(row),
  };
}

function insertedRow(r: ReturnType<typeof gateRows>[number]): SubmissionRow {
  return {
    id: r.id as string,
    exerciseId: r.exerciseId as string,
    userId: r.userId as string,
    code: r.code as string,
    status: r.status as SubmissionRow['status'],
    score: r.score,
    rawScore: r.rawScore,
    credit: r.credit as number,
    message: r.message,
    late: r.late as boolean,
    createdAt: new Date(r.createdAt as string),
    gradedAt: r.gradedAt === null ? null : new Date(r.gradedAt),
    results: r.results as SubmissionRow['results'],
  };
}

/** A submission with the caller's role in its course; null when there is no such submission. */
export async function selectOptionalSubmissionWithRole(
  tx: Tx,
  submissionId: string,
  userId: string,
): Promise<{ submission: SubmissionRow; role: Role | null; visibleTests: string[] } | null> {
  if (!isUuid(submissionId)) return null;
  const [row] = await tx
    .select({ submission: submissionColumns, role: courseMembers.role, visibleTests: visibleTestNames })
    .from(submissions)
    .innerJoin(exercises, eq(exercises.id, submissions.exerciseId))
    .leftJoin(
      courseMembers,
      and(eq(courseMembers.courseId, submissions.courseId), eq(courseMembers.userId, userId)),
    )
    .where(eq(submissions.id, submissionId))
    .limit(1);
  return row ?? null;
}

export type PagedSubmission = SubmissionRow & { cursorKey: string };

/** Newest first. cursorKey keeps created_at's microseconds, which a JS Date would drop. */
export async function selectSubmissionsPage(
  tx: Tx,
  opts: { exerciseId: string; userId: string | null; cursor: Cursor | null; limit: number },
): Promise<PagedSubmission[]> {
  return tx
    .select({ ...submissionColumns, cursorKey: cursorKey(submissions.createdAt) })
    .from(submissions)
    .where(
      and(
        eq(submissions.exerciseId, opts.exerciseId),
        opts.userId ? eq(submissions.userId, opts.userId) : undefined,
        afterCursor(submissions.createdAt, submissions.id, opts.cursor, 'desc'),
      ),
    )
    .orderBy(desc(submissions.createdAt), desc(submissions.id))
    .limit(opts.limit + 1);
}

/**
 * Lateness, credit and credited score of an exercise's submissions (one student's, or everyone's),
 * from their own time and the exercise's due date, late policy and exceptions as they are now: after
 * an extension is granted or a policy changed, past submissions follow.
 */
export async function recomputeCredit(tx: Tx, exerciseId: string, userId: string | null) {
  const due = effectiveDue(sql`e.due_at`, sql`x.due_at`);
  await tx.execute(sql`
    with next as (
      select s.id,
             coalesce(s.created_at > ${due}, false) as late,
             ${creditAt(sql`s.created_at`, sql`e.due_at`, due, sql`e.late_policy`)} as credit
        from submissions s
        join exercises e on e.id = s.exercise_id
        left join exercise_exceptions x on x.exercise_id = s.exercise_id and x.user_id = s.user_id
       where s.exercise_id = ${exerciseId} ${userId ? sql`and s.user_id = ${userId}` : sql``}
    )
    update submissions s
       set late = next.late, credit = next.credit,
           score = case when s.raw_score is null then s.score else ${credited(sql`s.raw_score`, sql`next.credit`)} end
      from next
     where s.id = next.id`);
}
