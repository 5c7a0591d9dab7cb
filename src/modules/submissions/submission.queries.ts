import { and, desc, eq, sql } from 'drizzle-orm';
import type { Tx } from '../../db/client.ts';
import { afterCursor, type Cursor, cursorKey } from '../../db/paging.ts';
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

/**
 * One submit of a user to an exercise at a time, until its transaction ends, so the attempt count and
 * the idempotency lookup cannot race with a parallel submit. A try-lock: a parallel submit is refused
 * at once (429, Retry-After: 1) instead of waiting, because a waiting submit holds a pooled connection,
 * and one student's burst of parallel submits held every connection of an instance, starving other
 * users (and after a failover, a single student's retries queued here for seconds). An expression,
 * taken by the statement that loads the exercise access (requireExerciseAccess's `lock`).
 */
export const submitterLock = (userId: string, exerciseId: string) =>
  sql`pg_try_advisory_xact_lock(hashtextextended(${`submit:${userId}:${exerciseId}`}, 0))`;

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

/**
 * What the submit limits count, in one statement (run after the submitter lock, so no parallel submit
 * of this user and exercise is missing from it): the submissions the user made to any exercise in the
 * last `seconds` and when the oldest of them leaves that window (the rate limit), and the attempts
 * used at this exercise.
 */
export async function submitterCounts(
  tx: Tx,
  userId: string,
  exerciseId: string,
  seconds: number,
): Promise<{ recent: number; retryAfterSeconds: number; attempts: number }> {
  const window = sql`make_interval(secs => ${seconds})`;
  const recent = sql`${submissions.createdAt} > now() - ${window}`;
  const here = sql`${submissions.exerciseId} = ${exerciseId}`;
  const [row] = await tx
    .select({
      recent: sql<number>`count(*) filter (where ${recent})::int`,
      retryAfterSeconds: sql<number>`coalesce(ceil(extract(epoch from
        min(${submissions.createdAt}) filter (where ${recent}) + ${window} - now())), 1)::int`,
      attempts: sql<number>`count(*) filter (where ${here} and ${submissions.countsAsAttempt})::int`,
    })
    .from(submissions)
    .where(and(eq(submissions.userId, userId), sql`(${recent} or ${here})`));
  return {
    recent: row?.recent ?? 0,
    retryAfterSeconds: Math.max(1, row?.retryAfterSeconds ?? 1),
    attempts: row?.attempts ?? 0,
  };
}

/**
 * A new submission and its grading job in one statement (one round trip less per submit): the job is
 * inserted from the submission's row (grading/queue.ts). No NOTIFY here: the service wakes the graders
 * after the commit (AppDeps.wakeGraders), so this commit does not wait on Postgres's notify lock.
 */
export async function insertQueuedSubmission(
  tx: Tx,
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
): Promise<SubmissionRow & { courseId: string }> {
  const inserted = tx.$with('sub').as(
    tx
      .insert(submissions)
      .values(values)
      .returning({ ...submissionColumns, courseId: submissions.courseId }),
  );
  const jobs = tx.$with('job', { id: sql<number>`id` }).as(queueJobsFor(sql`sub`));
  // A data-modifying CTE runs to completion whether or not the query reads it: the job is inserted.
  const [row] = await tx.with(inserted, jobs).select().from(inserted);
  if (!row) throw new Error('the submission was not inserted');
  return row;
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
