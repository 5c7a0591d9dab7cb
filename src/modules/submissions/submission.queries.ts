import { and, desc, eq, sql } from 'drizzle-orm';
import type { Tx } from '../../db/client.ts';
import { courseMembers, exercises, submissions } from '../../db/schema/index.ts';
import type { Cursor } from '../../http/pagination.ts';
import { isUuid } from '../../http/schemas.ts';
import type { Role } from '../courses/course.policy.ts';
import type { SubmissionRow } from './submission.presenter.ts';

export const submissionColumns = {
  id: submissions.id,
  exerciseId: submissions.exerciseId,
  userId: submissions.userId,
  status: submissions.status,
  score: submissions.score,
  message: submissions.message,
  late: submissions.late,
  createdAt: submissions.createdAt,
  gradedAt: submissions.gradedAt,
  results: submissions.results,
};

export interface ExerciseAccess {
  courseId: string;
  role: Role | null;
  maxAttempts: number | null;
  /** Past dueAt by the database clock. */
  late: boolean;
  /** Names of the tests visible to students now (results of other tests are masked for them). */
  visibleTests: string[];
}

/** The names of an exercise's tests that are visible now. */
export const visibleTestNames = sql<string[]>`coalesce((
  select array_agg(t->>'name') from jsonb_array_elements(${exercises.tests}) t
   where not coalesce((t->>'hidden')::boolean, false)), '{}')`;

/** The exercise's course, the caller's role there and the submit rules, in one round trip; null = no such exercise. */
export async function selectOptionalExerciseAccess(
  tx: Tx,
  exerciseId: string,
  userId: string,
): Promise<ExerciseAccess | null> {
  if (!isUuid(exerciseId)) return null;
  const [row] = await tx
    .select({
      courseId: exercises.courseId,
      role: courseMembers.role,
      maxAttempts: exercises.maxAttempts,
      late: sql<boolean>`coalesce(${exercises.dueAt} < now(), false)`,
      visibleTests: visibleTestNames,
    })
    .from(exercises)
    .leftJoin(
      courseMembers,
      and(eq(courseMembers.courseId, exercises.courseId), eq(courseMembers.userId, userId)),
    )
    .where(eq(exercises.id, exerciseId))
    .limit(1);
  return row ?? null;
}

/**
 * Serialises submits of one user to one exercise until the transaction ends, so the attempt count
 * and the idempotency lookup cannot race with a parallel submit.
 */
export async function lockSubmitter(tx: Tx, userId: string, exerciseId: string) {
  await tx.execute(
    sql`select pg_advisory_xact_lock(hashtextextended(${`submit:${userId}:${exerciseId}`}, 0))`,
  );
}

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
 * Submissions the user made (to any exercise) in the last `seconds`, and when the oldest of them
 * leaves that window: the submit rate limit.
 */
export async function recentSubmissions(
  tx: Tx,
  userId: string,
  seconds: number,
): Promise<{ count: number; retryAfterSeconds: number }> {
  const [row] = await tx
    .select({
      count: sql<number>`count(*)::int`,
      retryAfterSeconds: sql<number>`coalesce(ceil(extract(epoch from min(${submissions.createdAt})
        + make_interval(secs => ${seconds}) - now())), 1)::int`,
    })
    .from(submissions)
    .where(
      and(
        eq(submissions.userId, userId),
        sql`${submissions.createdAt} > now() - make_interval(secs => ${seconds})`,
      ),
    );
  return { count: row?.count ?? 0, retryAfterSeconds: Math.max(1, row?.retryAfterSeconds ?? 1) };
}

export async function countAttempts(tx: Tx, userId: string, exerciseId: string): Promise<number> {
  const [row] = await tx
    .select({ n: sql<number>`count(*)::int` })
    .from(submissions)
    .where(
      and(
        eq(submissions.userId, userId),
        eq(submissions.exerciseId, exerciseId),
        eq(submissions.countsAsAttempt, true),
      ),
    );
  return row?.n ?? 0;
}

export async function insertSubmission(
  tx: Tx,
  values: {
    courseId: string;
    exerciseId: string;
    userId: string;
    code: string;
    late: boolean;
    idempotencyKey: string | null;
    bodyHash: string;
  },
): Promise<SubmissionRow & { courseId: string }> {
  const [row] = await tx
    .insert(submissions)
    .values(values)
    .returning({ ...submissionColumns, courseId: submissions.courseId });
  return row!;
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
  const conditions = [eq(submissions.exerciseId, opts.exerciseId)];
  if (opts.userId) conditions.push(eq(submissions.userId, opts.userId));
  if (opts.cursor)
    conditions.push(
      sql`(${submissions.createdAt}, ${submissions.id}) < (${String(opts.cursor.k)}::timestamptz, ${opts.cursor.id}::uuid)`,
    );
  return tx
    .select({ ...submissionColumns, cursorKey: sql<string>`${submissions.createdAt}::text` })
    .from(submissions)
    .where(and(...conditions))
    .orderBy(desc(submissions.createdAt), desc(submissions.id))
    .limit(opts.limit + 1);
}
