import { and, eq, sql } from 'drizzle-orm';
import type pg from 'pg';
import type { Db, Tx } from '../../db/client.ts';
import { isoUtc } from '../../db/iso-text.ts';
import { courseMembers, courses, lessons } from '../../db/schema/index.ts';
import type { Role } from '../courses/course.policy.ts';
import { isPublished } from '../exercises/exercise-rules.ts';

const lessonFields = {
  id: lessons.id,
  courseId: lessons.courseId,
  title: lessons.title,
  body: lessons.body,
  position: lessons.position,
  publishedAt: lessons.publishedAt,
};

/** A lesson as the API shows it, typed from the schema. */
export type LessonRow = Pick<
  typeof lessons.$inferSelect,
  'id' | 'courseId' | 'title' | 'body' | 'position' | 'publishedAt'
>;

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

export interface LessonPageRow {
  role: Role | null;
  visible: boolean;
  id: string;
  courseId: string;
  title: string;
  body: string;
  position: number;
  /** ISO text as toISOString writes it, or null. */
  publishedAt: string | null;
  /** The `exercises` array of the response, as JSON text built by Postgres. */
  exercises: string;
}

/**
 * The lesson page in one round trip: the caller's role (null = outsider), whether the lesson is
 * published, the lesson's columns, and its exercise list as JSON text in the shape of
 * lesson.presenter.ts (timestamps as toISOString writes them), students seeing the published
 * exercises only. The lesson body is not put into JSON by Postgres: escaping up to 200 kB of Markdown
 * there halved the statement's throughput (docs/perf/lesson-read-profile.md), and the database is the
 * tier that does not scale out; Node's JSON.stringify does it (lesson.presenter.ts, lessonPageJson).
 */
export function prepareLessonPage(db: Db) {
  const role = courseMembers.role;
  const query = db
    .select({
      role,
      visible: isPublished(sql`${lessons.publishedAt}`),
      id: lessons.id,
      courseId: lessons.courseId,
      title: lessons.title,
      body: lessons.body,
      position: lessons.position,
      publishedAt: isoUtc('lessons.published_at'),
      exercises: sql<string>`(
        select coalesce(json_agg(json_build_object(
          'id', e.id, 'title', e.title, 'language', e.language, 'maxScore', e.max_score,
          'dueAt', ${isoUtc('e.due_at')}, 'publishedAt', ${isoUtc('e.published_at')}
        ) order by e.created_at, e.id), '[]'::json)
        from exercises e
        where e.lesson_id = ${lessons.id}
          and (${role} in ('instructor', 'ta') or ${isPublished(sql`e.published_at`)}))::text`,
    })
    .from(lessons)
    .leftJoin(
      courseMembers,
      and(eq(courseMembers.courseId, lessons.courseId), eq(courseMembers.userId, sql.placeholder('userId'))),
    )
    .where(eq(lessons.id, sql.placeholder('lessonId')))
    .toSQL();
  // Written by Drizzle once, run as a named (prepared) statement straight on the pool: the hottest read
  // skips Drizzle's per-call work (parameter binding, tracing, row mapping), ~3 % of the request's CPU
  // in the profile (docs/perf/lesson-read-profile.md).
  const order = query.params.map((p) => (p as { name?: string }).name);
  const text = query.sql;
  type Row = [Role | null, boolean, string, string, string, string, number, string | null, string];
  return async (lessonId: string, userId: string): Promise<LessonPageRow | null> => {
    const values = order.map((name) => (name === 'userId' ? userId : lessonId));
    const { rows } = await (db as Db & { $client: pg.Pool | pg.PoolClient }).$client.query<Row>({
      name: 'lesson_page',
      text,
      values,
      rowMode: 'array',
    });
    const r = rows[0];
    if (!r) return null;
    return {
      role: r[0],
      visible: r[1],
      id: r[2],
      courseId: r[3],
      title: r[4],
      body: r[5],
      position: r[6],
      publishedAt: r[7],
      exercises: r[8],
    };
  };
}
