import { and, eq, sql } from 'drizzle-orm';
import type { Tx } from '../../db/client.ts';
import { runs } from '../../db/schema/index.ts';
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

export async function insertRun(
  tx: Tx,
  values: {
    courseId: string;
    exerciseId: string;
    userId: string;
    code: string;
    stdin: string | null;
    allTests: boolean;
  },
): Promise<RunRow & { courseId: string }> {
  const [row] = await tx
    .insert(runs)
    .values(values)
    .returning({ ...runFields, courseId: runs.courseId });
  return row!;
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

/**
 * Runs the user started in the last `seconds`, and when the oldest of them leaves that window; null
 * when another run of theirs is being started right now. One at a time per user until the transaction
 * ends, so a burst cannot all count the same 19 rows and pass together; a try-lock, so a parallel one
 * is refused at once instead of holding a pooled connection while it waits (submitterLock, likewise).
 */
export async function recentRuns(
  tx: Tx,
  userId: string,
  seconds: number,
): Promise<{ count: number; retryAfterSeconds: number } | null> {
  const taken = await tx.execute<{ taken: boolean }>(
    sql`select pg_try_advisory_xact_lock(hashtextextended(${`lab:runs:${userId}`}, 0)) as taken`,
  );
  if (taken.rows[0]?.taken !== true) return null;
  const [row] = await tx
    .select({
      count: sql<number>`count(*)::int`,
      retryAfterSeconds: sql<number>`coalesce(ceil(extract(epoch from min(${runs.createdAt})
        + make_interval(secs => ${seconds}) - now())), 1)::int`,
    })
    .from(runs)
    .where(and(eq(runs.userId, userId), sql`${runs.createdAt} > now() - make_interval(secs => ${seconds})`));
  return { count: row?.count ?? 0, retryAfterSeconds: Math.max(1, row?.retryAfterSeconds ?? 1) };
}
