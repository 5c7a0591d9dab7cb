import { Type } from '@sinclair/typebox';
import { and, eq, sql } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.ts';
import { afterCursor, cursorKey, type PageArgs } from '../../db/paging.ts';
import { Col, rowsOf, selectRows } from '../../db/rows.ts';
import { courseMembers, courses, users } from '../../db/schema/index.ts';
import { isPublished } from '../exercises/exercise-rules.ts';
import type { Role } from './course.policy.ts';
import { RoleSchema } from './course.schemas.ts';

/** A course as its members read it: the columns of `courses` below, and the caller's role in it. */
export type CourseRow = Pick<
  typeof courses.$inferSelect,
  'id' | 'title' | 'description' | 'joinCode' | 'archivedAt' | 'createdAt'
> & { role: Role };

/** A member of a course: their membership and their user's name and email. */
export type MemberRow = Pick<typeof courseMembers.$inferSelect, 'userId' | 'role' | 'joinedAt'> &
  Pick<typeof users.$inferSelect, 'name' | 'email'>;

/** A lesson of the course page, aggregated by Postgres (json_build_object): publishedAt is a string. */
export interface LessonSummaryRow {
  id: string;
  title: string;
  position: number;
  exerciseCount: number;
  publishedAt: string | null;
}

const courseFields = {
  id: courses.id,
  title: courses.title,
  description: courses.description,
  joinCode: courses.joinCode,
  archivedAt: courses.archivedAt,
  createdAt: courses.createdAt,
};

export async function insertCourse(
  tx: Tx,
  values: { title: string; description: string; joinCode: string },
): Promise<Omit<CourseRow, 'role'>> {
  const [row] = await tx.insert(courses).values(values).returning(courseFields);
  return row!;
}

export async function insertMember(tx: Tx, courseId: string, userId: string, role: Role) {
  await tx.insert(courseMembers).values({ courseId, userId, role });
}

const joinRows = rowsOf(Type.Object({ id: Col.uuid, archived: Col.bool }), 'join by code');

/**
 * Adds the caller as a student of the course with this code unless already a member, or unless the
 * course is archived; `course` is the caller's membership afterwards (null: not a member), `found`
 * false for an unknown code.
 */
export async function joinByCode(
  tx: Tx,
  joinCode: string,
  userId: string,
): Promise<{ found: boolean; archived: boolean; course: CourseRow | null }> {
  const [row] = await selectRows(
    tx,
    joinRows,
    sql`
    with c as (select id, archived_at is not null as archived from ${courses} where join_code = ${joinCode}),
    ins as (
      insert into ${courseMembers} (course_id, user_id, role)
      select id, ${userId}, 'student' from c where not archived
      on conflict do nothing
    )
    select id, archived from c`,
  );
  if (!row) return { found: false, archived: false, course: null };
  return { found: true, archived: row.archived, course: await selectCourseAsMember(tx, row.id, userId) };
}

export async function selectCourseAsMember(
  tx: Tx,
  courseId: string,
  userId: string,
): Promise<CourseRow | null> {
  const [row] = await tx
    .select({ ...courseFields, role: courseMembers.role })
    .from(courses)
    .innerJoin(courseMembers, and(eq(courseMembers.courseId, courses.id), eq(courseMembers.userId, userId)))
    .where(eq(courses.id, courseId));
  return row ?? null;
}

export async function updateCourse(
  tx: Tx,
  courseId: string,
  values: { title?: string; description?: string; archivedAt?: Date | null; joinCode?: string },
): Promise<Omit<CourseRow, 'role'>> {
  if (Object.values(values).every((v) => v === undefined)) {
    const [row] = await tx.select(courseFields).from(courses).where(eq(courses.id, courseId));
    return row!;
  }
  const [row] = await tx.update(courses).set(values).where(eq(courses.id, courseId)).returning(courseFields);
  return row!;
}

/** The caller's courses with their role, in the order they joined. */
export async function selectMyCourses(tx: Tx, userId: string, page: PageArgs) {
  return tx
    .select({ ...courseFields, role: courseMembers.role, sortKey: cursorKey(courseMembers.joinedAt) })
    .from(courseMembers)
    .innerJoin(courses, eq(courses.id, courseMembers.courseId))
    .where(
      and(
        eq(courseMembers.userId, userId),
        afterCursor(courseMembers.joinedAt, courseMembers.courseId, page.after, 'asc'),
      ),
    )
    .orderBy(courseMembers.joinedAt, courseMembers.courseId)
    .limit(page.limit + 1);
}

export type CourseDetailRow = CourseRow & { lessons: LessonSummaryRow[] };

const staffRole = sql`${courseMembers.role} in ('instructor', 'ta')`;

/**
 * The course, the caller's role and the lesson list with exercise counts in one round trip; no row
 * when the caller is not a member. Prepared: it is on the hot path of every course page.
 */
export function prepareCourseDetail(db: Db) {
  const stmt = db
    .select({
      ...courseFields,
      role: courseMembers.role,
      // Students see published lessons, and count the published exercises in them; staff see all.
      lessons: sql<LessonSummaryRow[]>`(
        select coalesce(json_agg(json_build_object(
          'id', l.id, 'title', l.title, 'position', l.position, 'publishedAt', l.published_at,
          'exerciseCount', (select count(*)::int from exercises e
                             where e.lesson_id = l.id and (${staffRole} or ${isPublished(sql`e.published_at`)}))
        ) order by l.position, l.created_at, l.id), '[]'::json)
        from lessons l
        where l.course_id = ${courses.id} and (${staffRole} or ${isPublished(sql`l.published_at`)}))`,
    })
    .from(courses)
    .innerJoin(
      courseMembers,
      and(eq(courseMembers.courseId, courses.id), eq(courseMembers.userId, sql.placeholder('userId'))),
    )
    .where(eq(courses.id, sql.placeholder('courseId')))
    .prepare('course_detail');
  return async (courseId: string, userId: string): Promise<CourseDetailRow | null> => {
    const [row] = await stmt.execute({ courseId, userId });
    return row ?? null;
  };
}

const memberFields = {
  userId: courseMembers.userId,
  name: users.name,
  email: users.email,
  role: courseMembers.role,
  joinedAt: courseMembers.joinedAt,
};

export async function selectMembers(tx: Tx, courseId: string, page: PageArgs) {
  return tx
    .select({ ...memberFields, sortKey: cursorKey(courseMembers.joinedAt) })
    .from(courseMembers)
    .innerJoin(users, eq(users.id, courseMembers.userId))
    .where(
      and(
        eq(courseMembers.courseId, courseId),
        afterCursor(courseMembers.joinedAt, courseMembers.userId, page.after, 'asc'),
      ),
    )
    .orderBy(courseMembers.joinedAt, courseMembers.userId)
    .limit(page.limit + 1);
}

/**
 * Locks the course row against concurrent role changes (NO KEY UPDATE does not block members joining),
 * then reads the caller's role, the target's role and the instructor count. The read is a separate
 * statement on purpose: under READ COMMITTED each statement takes a fresh snapshot, so it sees what a
 * concurrent role change committed while we waited for the lock. Two instructors stepping down at once
 * are serialised here, and the second gets last_instructor.
 */
const roleChangeRows = rowsOf(
  Type.Object({
    caller_role: Col.nullable(RoleSchema),
    target_role: Col.nullable(RoleSchema),
    instructors: Col.int,
  }),
  'role change',
);

export async function lockCourseForRoleChange(
  tx: Tx,
  courseId: string,
  callerId: string,
  targetId: string | null,
) {
  await tx.execute(sql`select 1 from ${courses} where id = ${courseId} for no key update`);
  const [r] = await selectRows(
    tx,
    roleChangeRows,
    sql`
    select
      (select role from ${courseMembers} where course_id = ${courseId} and user_id = ${callerId}) as caller_role,
      (select role from ${courseMembers} where course_id = ${courseId} and user_id = ${targetId}) as target_role,
      (select count(*)::int from ${courseMembers} where course_id = ${courseId} and role = 'instructor') as instructors`,
  );
  return { callerRole: r!.caller_role, targetRole: r!.target_role, instructors: r!.instructors };
}

const memberRows = rowsOf(
  Type.Object({
    user_id: Col.uuid,
    name: Col.text,
    email: Col.text,
    role: RoleSchema,
    joined_at: Col.timestamp,
  }),
  'member',
);

export async function updateMemberRole(
  tx: Tx,
  courseId: string,
  userId: string,
  role: Role,
): Promise<MemberRow> {
  const [r] = await selectRows(
    tx,
    memberRows,
    sql`
    update ${courseMembers} m set role = ${role}
    from ${users} u
    where m.course_id = ${courseId} and m.user_id = ${userId} and u.id = m.user_id
    returning m.user_id, u.name, u.email, m.role, m.joined_at`,
  );
  return {
    userId: r!.user_id,
    name: r!.name,
    email: r!.email,
    role: r!.role,
    joinedAt: new Date(r!.joined_at),
  };
}

/** A member leaves the course (their submissions stay); false when they were not a member. */
export async function deleteMember(tx: Tx, courseId: string, userId: string): Promise<boolean> {
  const rows = await tx
    .delete(courseMembers)
    .where(and(eq(courseMembers.courseId, courseId), eq(courseMembers.userId, userId)))
    .returning({ userId: courseMembers.userId });
  return rows.length > 0;
}
