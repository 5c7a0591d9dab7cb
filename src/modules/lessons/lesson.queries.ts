import { and, eq, type SQL, sql } from 'drizzle-orm';
import type pg from 'pg';
import type { Db, Tx } from '../../db/client.ts';
import { courseMembers, courses, lessons } from '../../db/schema/index.ts';
import type { Role } from '../courses/course.policy.ts';
import { isPublished } from '../exercises/exercise-rules.ts';
import type { LessonRow } from './lesson.presenter.ts';

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

/** An ISO-8601 UTC text with milliseconds, exactly as Date#toISOString writes it (null stays null). */
const isoText = (ts: SQL) => sql`to_char(${ts} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

export interface LessonPageRow {
  role: Role | null;
  visible: boolean;
  /** The 200 response body of GET /lessons/:id, as JSON text (see prepareLessonPage). */
  body: string;
}

/**
 * The lesson page in one round trip: the caller's role (null = outsider), whether the lesson is
 * published, and the response body itself as JSON text, built by Postgres: `{lesson, exercises}` in
 * the shapes of lesson.presenter.ts (timestamps as toISOString writes them), students seeing the
 * published exercises only. No row mapping or serialising in Node (measured: docs/perf/).
 */
export function prepareLessonPage(db: Db) {
  const role = courseMembers.role;
  const query = db
    .select({
      role,
      visible: isPublished(sql`${lessons.publishedAt}`),
      body: sql<string>`json_build_object(
        'lesson', json_build_object(
          'id', ${lessons.id}, 'courseId', ${lessons.courseId}, 'title', ${lessons.title},
          'body', ${lessons.body}, 'position', ${lessons.position},
          'publishedAt', ${isoText(sql`${lessons.publishedAt}`)}),
        'exercises', (
          select coalesce(json_agg(json_build_object(
            'id', e.id, 'title', e.title, 'language', e.language, 'maxScore', e.max_score,
            'dueAt', ${isoText(sql`e.due_at`)}, 'publishedAt', ${isoText(sql`e.published_at`)}
          ) order by e.created_at, e.id), '[]'::json)
          from exercises e
          where e.lesson_id = ${lessons.id}
            and (${role} in ('instructor', 'ta') or ${isPublished(sql`e.published_at`)}))
      )::text`,
    })
    .from(lessons)
    .leftJoin(
      courseMembers,
      and(eq(courseMembers.courseId, lessons.courseId), eq(courseMembers.userId, sql.placeholder('userId'))),
    )
    .where(eq(lessons.id, sql.placeholder('lessonId')))
    .toSQL();
  // Written by Drizzle once, run as a named (prepared) statement straight on the pool: the hottest read
  // skips Drizzle's per-call work (parameter binding, tracing, row mapping), measured at ~3 % of the
  // request's CPU (docs/perf/lesson-read-profile.md).
  const order = query.params.map((p) => (p as { name?: string }).name);
  const text = query.sql;
  return async (lessonId: string, userId: string): Promise<LessonPageRow | null> => {
    const values = order.map((name) => (name === 'userId' ? userId : lessonId));
    const { rows } = await (db as Db & { $client: pg.Pool | pg.PoolClient }).$client.query<
      [Role | null, boolean, string]
    >({
      name: 'lesson_page',
      text,
      values,
      rowMode: 'array',
    });
    const row = rows[0];
    return row ? { role: row[0], visible: row[1], body: row[2] } : null;
  };
}
