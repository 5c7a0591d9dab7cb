import { asc, eq } from 'drizzle-orm';
import type { Tx } from '../../db/client.ts';
import { courses, exercises, lessons } from '../../db/schema/index.ts';
import type { ExerciseValues } from '../exercises/exercise.queries.ts';
import { exerciseFields } from '../exercises/exercise.queries.ts';

/** A course's content, as a copy or an export carries it: no members, no submissions. */
export interface CourseContent {
  title: string;
  description: string;
  lessons: Array<{
    title: string;
    body: string;
    position: number;
    publishedAt: Date | null;
    exercises: ExerciseValues[];
  }>;
}

/** The course's lessons (by position, then creation) and their exercises (by creation), in two statements. */
export async function selectCourseContent(tx: Tx, courseId: string): Promise<CourseContent | null> {
  const [course] = await tx
    .select({ title: courses.title, description: courses.description })
    .from(courses)
    .where(eq(courses.id, courseId));
  if (!course) return null;
  const lessonRows = await tx
    .select({
      id: lessons.id,
      title: lessons.title,
      body: lessons.body,
      position: lessons.position,
      publishedAt: lessons.publishedAt,
    })
    .from(lessons)
    .where(eq(lessons.courseId, courseId))
    .orderBy(asc(lessons.position), asc(lessons.createdAt), asc(lessons.id));
  const exerciseRows = await tx
    .select(exerciseFields)
    .from(exercises)
    .where(eq(exercises.courseId, courseId))
    .orderBy(asc(exercises.createdAt), asc(exercises.id));
  return {
    ...course,
    lessons: lessonRows.map(({ id, ...l }) => ({
      ...l,
      exercises: exerciseRows
        .filter((e) => e.lessonId === id)
        .map(({ id: _id, lessonId: _l, courseId: _c, createdAt: _ca, updatedAt: _u, ...values }) => values),
    })),
  };
}

/**
 * Writes content into a course. Rows get creation times one millisecond apart, in the given order:
 * lessons with equal positions and a lesson's exercises (listed by creation) keep their order.
 */
export async function insertCourseContent(tx: Tx, courseId: string, content: CourseContent['lessons']) {
  const base = Date.now();
  let n = 0;
  const next = () => new Date(base + n++);
  for (const lesson of content) {
    const [row] = await tx
      .insert(lessons)
      .values({
        courseId,
        title: lesson.title,
        body: lesson.body,
        position: lesson.position,
        publishedAt: lesson.publishedAt,
        createdAt: next(),
      })
      .returning({ id: lessons.id });
    for (const exercise of lesson.exercises)
      await tx
        .insert(exercises)
        .values({ ...exercise, courseId, lessonId: row!.id, createdAt: next(), updatedAt: next() });
  }
}
