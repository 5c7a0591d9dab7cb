import { and, eq, sql } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.ts';
import { courseMembers, courses, lessons } from '../../db/schema/index.ts';
import type { Role } from '../courses/course.policy.ts';
import { isPublished } from '../exercises/exercise-rules.ts';
import type { ExerciseSummaryRow, LessonRow } from './lesson.presenter.ts';

const lessonFields = {
  id: lessons.id,
  courseId: lessons.courseId,
  title: lessons.title,
  body: lessons.body,
  position: lessons.position,
  publishedAt: lessons.publishedAt,
};

/** Without a position the lesson goes after the last one, computed in the same statement. */
export async function insertLesson(
  tx: Tx,
  values: { courseId: string; title: string; body: string; position?: number; publishedAt: Date | null },
): Promise<LessonRow> {
  const position =
    values.position ??
    sql`(select coalesce(max(${lessons.position}) + 1, 0) from ${lessons} where ${lessons.courseId} = ${values.courseId})`;
  const [row] = await tx
    .insert(lessons)
    .values({
      courseId: values.courseId,
      title: values.title,
      body: values.body,
      position,
      publishedAt: values.publishedAt,
    })
    .returning(lessonFields);
  return row!;
}

/** A lesson with the caller's role in its course (null role = outsider); null when there is no such lesson. */
export async function selectLessonWithRole(
  tx: Tx,
  lessonId: string,
  userId: string,
): Promise<(LessonRow & { role: Role | null; archived: boolean }) | null> {
  const [row] = await tx
    .select({
      ...lessonFields,
      role: courseMembers.role,
      archived: sql<boolean>`${courses.archivedAt} is not null`,
    })
    .from(lessons)
    .innerJoin(courses, eq(courses.id, lessons.courseId))
    .leftJoin(
      courseMembers,
      and(eq(courseMembers.courseId, lessons.courseId), eq(courseMembers.userId, userId)),
    )
    .where(eq(lessons.id, lessonId));
  return row ?? null;
}

export async function updateLesson(
  tx: Tx,
  lessonId: string,
  values: { title?: string; body?: string; position?: number; publishedAt?: Date | null },
): Promise<LessonRow> {
  const [row] = await tx.update(lessons).set(values).where(eq(lessons.id, lessonId)).returning(lessonFields);
  return row!;
}

export async function deleteLesson(tx: Tx, lessonId: string) {
  await tx.delete(lessons).where(eq(lessons.id, lessonId));
}

export type LessonDetailRow = LessonRow & {
  role: Role | null;
  visible: boolean;
  exercises: ExerciseSummaryRow[];
};

/** Lesson, caller's role and exercise list in one round trip; prepared for the lesson page. */
export function prepareLessonDetail(db: Db) {
  const stmt = db
    .select({
      ...lessonFields,
      role: courseMembers.role,
      // Students see the published exercises only (and, through the route, only a published lesson).
      exercises: sql<ExerciseSummaryRow[]>`(
        select coalesce(json_agg(json_build_object(
          'id', e.id, 'title', e.title, 'language', e.language, 'maxScore', e.max_score, 'dueAt', e.due_at,
          'publishedAt', e.published_at
        ) order by e.created_at, e.id), '[]'::json)
        from exercises e
        where e.lesson_id = ${lessons.id}
          and (${courseMembers.role} in ('instructor', 'ta') or ${isPublished(sql`e.published_at`)}))`,
      visible: isPublished(sql`${lessons.publishedAt}`),
    })
    .from(lessons)
    .leftJoin(
      courseMembers,
      and(eq(courseMembers.courseId, lessons.courseId), eq(courseMembers.userId, sql.placeholder('userId'))),
    )
    .where(eq(lessons.id, sql.placeholder('lessonId')))
    .prepare('lesson_detail');
  return async (lessonId: string, userId: string): Promise<LessonDetailRow | null> => {
    const [row] = await stmt.execute({ lessonId, userId });
    return row ?? null;
  };
}
