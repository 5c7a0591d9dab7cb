import { and, eq, sql } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.ts';
import { courseMembers, courses } from '../../db/schema/index.ts';
import { isUuid } from '../../http/schemas.ts';
import type { Role } from './course.policy.ts';

/** The caller's role in a course, or null when they are not a member (or the id is not ours). */
export async function selectRole(tx: Tx, courseId: string, userId: string): Promise<Role | null> {
  if (!isUuid(courseId)) return null;
  const [row] = await tx
    .select({ role: courseMembers.role })
    .from(courseMembers)
    .where(and(eq(courseMembers.courseId, courseId), eq(courseMembers.userId, userId)))
    .limit(1);
  return row?.role ?? null;
}

export function prepareSelectRole(db: Db) {
  const stmt = db
    .select({ role: courseMembers.role })
    .from(courseMembers)
    .where(
      and(
        eq(courseMembers.courseId, sql.placeholder('courseId')),
        eq(courseMembers.userId, sql.placeholder('userId')),
      ),
    )
    .prepare('select_role');
  return async (courseId: string, userId: string): Promise<Role | null> => {
    if (!isUuid(courseId)) return null;
    const [row] = await stmt.execute({ courseId, userId });
    return row?.role ?? null;
  };
}

/**
 * The caller's role in a course (null: not a member, or no such course), whether it is archived and
 * its title, in one statement.
 */
export async function selectMembership(
  tx: Tx,
  courseId: string,
  userId: string,
): Promise<{ role: Role | null; archived: boolean; title: string }> {
  if (!isUuid(courseId)) return { role: null, archived: false, title: '' };
  const [row] = await tx
    .select({
      role: courseMembers.role,
      archived: sql<boolean>`${courses.archivedAt} is not null`,
      title: courses.title,
    })
    .from(courses)
    .leftJoin(courseMembers, and(eq(courseMembers.courseId, courses.id), eq(courseMembers.userId, userId)))
    .where(eq(courses.id, courseId))
    .limit(1);
  return { role: row?.role ?? null, archived: row?.archived ?? false, title: row?.title ?? '' };
}
