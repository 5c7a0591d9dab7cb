import { and, asc, eq, sql } from 'drizzle-orm';
import type { Tx } from '../../db/client.ts';
import { courseMembers, exerciseExceptions, users } from '../../db/schema/index.ts';
import type { Role } from '../courses/course.policy.ts';

/** An exception: its columns, with the student's name and email where listed. */
export type ExceptionRow = Pick<
  typeof exerciseExceptions.$inferSelect,
  'userId' | 'dueAt' | 'extraAttempts'
> &
  Partial<Pick<typeof users.$inferSelect, 'name' | 'email'>>;

/** The member's role in the course (null: not a member). */
export async function selectMemberRole(tx: Tx, courseId: string, userId: string): Promise<Role | null> {
  const [row] = await tx
    .select({ role: courseMembers.role })
    .from(courseMembers)
    .where(and(eq(courseMembers.courseId, courseId), eq(courseMembers.userId, userId)));
  return row?.role ?? null;
}

export async function upsertException(
  tx: Tx,
  values: {
    exerciseId: string;
    userId: string;
    courseId: string;
    dueAt?: Date | null;
    extraAttempts?: number;
  },
): Promise<ExceptionRow> {
  const set: Record<string, unknown> = { updatedAt: sql`now()` };
  if (values.dueAt !== undefined) set.dueAt = values.dueAt;
  if (values.extraAttempts !== undefined) set.extraAttempts = values.extraAttempts;
  const [row] = await tx
    .insert(exerciseExceptions)
    .values({
      exerciseId: values.exerciseId,
      userId: values.userId,
      courseId: values.courseId,
      dueAt: values.dueAt ?? null,
      extraAttempts: values.extraAttempts ?? 0,
    })
    .onConflictDoUpdate({ target: [exerciseExceptions.exerciseId, exerciseExceptions.userId], set })
    .returning({
      userId: exerciseExceptions.userId,
      dueAt: exerciseExceptions.dueAt,
      extraAttempts: exerciseExceptions.extraAttempts,
    });
  return row!;
}

export async function deleteException(tx: Tx, exerciseId: string, userId: string): Promise<boolean> {
  const rows = await tx
    .delete(exerciseExceptions)
    .where(and(eq(exerciseExceptions.exerciseId, exerciseId), eq(exerciseExceptions.userId, userId)))
    .returning({ userId: exerciseExceptions.userId });
  return rows.length > 0;
}

/** An exercise's exceptions with the students' names, by name. */
export async function selectExceptions(tx: Tx, exerciseId: string): Promise<ExceptionRow[]> {
  return tx
    .select({
      userId: exerciseExceptions.userId,
      dueAt: exerciseExceptions.dueAt,
      extraAttempts: exerciseExceptions.extraAttempts,
      name: users.name,
      email: users.email,
    })
    .from(exerciseExceptions)
    .innerJoin(users, eq(users.id, exerciseExceptions.userId))
    .where(eq(exerciseExceptions.exerciseId, exerciseId))
    .orderBy(asc(sql`lower(${users.name})`), asc(users.id));
}
