import { and, eq, sql } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.ts';
import {
  courseMembers,
  courses,
  exerciseExceptions,
  exercises,
  lessons,
  submissions,
} from '../../db/schema/index.ts';
import type { Role } from '../courses/course.policy.ts';
import { attemptsLeft, effectiveDue, isPublished } from './exercise-rules.ts';

/** An exercise as staff read it: these columns of `exercises`. */
export type ExerciseRow = Pick<
  typeof exercises.$inferSelect,
  | 'id'
  | 'lessonId'
  | 'courseId'
  | 'title'
  | 'prompt'
  | 'language'
  | 'entrypoint'
  | 'starterCode'
  | 'tests'
  | 'maxScore'
  | 'dueAt'
  | 'maxAttempts'
  | 'limits'
  | 'referenceSolution'
  | 'publishedAt'
  | 'latePolicy'
  | 'createdAt'
  | 'updatedAt'
>;

export const exerciseFields = {
  id: exercises.id,
  lessonId: exercises.lessonId,
  courseId: exercises.courseId,
  title: exercises.title,
  prompt: exercises.prompt,
  language: exercises.language,
  entrypoint: exercises.entrypoint,
  starterCode: exercises.starterCode,
  tests: exercises.tests,
  maxScore: exercises.maxScore,
  dueAt: exercises.dueAt,
  maxAttempts: exercises.maxAttempts,
  limits: exercises.limits,
  referenceSolution: exercises.referenceSolution,
  publishedAt: exercises.publishedAt,
  latePolicy: exercises.latePolicy,
  createdAt: exercises.createdAt,
  updatedAt: exercises.updatedAt,
};

export type ExerciseValues = Omit<ExerciseRow, 'id' | 'lessonId' | 'courseId' | 'createdAt' | 'updatedAt'>;

export async function insertExercise(
  tx: Tx,
  values: Omit<ExerciseValues, 'publishedAt'> & {
    publishedAt?: Date | null;
    lessonId: string;
    courseId: string;
  },
): Promise<ExerciseRow> {
  const [row] = await tx.insert(exercises).values(values).returning(exerciseFields);
  return row!;
}

/** The caller's role, and whether the course is archived, for a write to this exercise. */
export interface ExerciseForUpdate extends ExerciseRow {
  role: Role | null;
  archived: boolean;
}

/** For a read-modify-write: the row is locked so concurrent edits do not overwrite each other. */
export async function selectExerciseForUpdate(
  tx: Tx,
  exerciseId: string,
  userId: string,
): Promise<ExerciseForUpdate | null> {
  const [row] = await tx
    .select({
      ...exerciseFields,
      role: courseMembers.role,
      archived: sql<boolean>`${courses.archivedAt} is not null`,
    })
    .from(exercises)
    .innerJoin(courses, eq(courses.id, exercises.courseId))
    .leftJoin(
      courseMembers,
      and(eq(courseMembers.courseId, exercises.courseId), eq(courseMembers.userId, userId)),
    )
    .where(eq(exercises.id, exerciseId))
    .for('update', { of: exercises });
  return row ?? null;
}

export async function updateExercise(
  tx: Tx,
  exerciseId: string,
  values: ExerciseValues,
): Promise<ExerciseRow> {
  const [row] = await tx
    .update(exercises)
    .set({ ...values, updatedAt: sql`now()` })
    .where(eq(exercises.id, exerciseId))
    .returning(exerciseFields);
  return row!;
}

export async function countSubmissions(tx: Tx, exerciseId: string): Promise<number> {
  const [row] = await tx
    .select({ n: sql<number>`count(*)::int` })
    .from(submissions)
    .where(eq(submissions.exerciseId, exerciseId));
  return row?.n ?? 0;
}

export async function deleteExercise(tx: Tx, exerciseId: string) {
  await tx.delete(exercises).where(eq(exercises.id, exerciseId));
}

/** The exercise as one caller sees it: their role, whether students may see it, their deadline and attempts. */
export type ExerciseDetailRow = ExerciseRow & {
  role: Role | null;
  /** The exercise and its lesson are published. */
  visible: boolean;
  /** The caller's own due date (their exception's, else the exercise's). */
  effectiveDueAt: Date | null;
  /** Attempts the caller has left; null = no limit. */
  attemptsLeft: number | null;
};

/**
 * The exercise, the caller's role, its publication, and the caller's effective due date and attempts
 * left, in one round trip; prepared for the exercise page.
 */
export function prepareExerciseDetail(db: Db) {
  const userId = sql.placeholder('userId');
  const stmt = db
    .select({
      ...exerciseFields,
      role: courseMembers.role,
      visible: sql<boolean>`${isPublished(sql`${exercises.publishedAt}`)} and ${isPublished(sql`${lessons.publishedAt}`)}`,
      effectiveDueAt:
        sql<Date | null>`${effectiveDue(sql`${exercises.dueAt}`, sql`${exerciseExceptions.dueAt}`)}`.mapWith(
          (v: string | null) => (v === null ? null : new Date(v)),
        ),
      attemptsLeft: attemptsLeft(
        sql`${exercises.maxAttempts}`,
        sql`${exerciseExceptions.extraAttempts}`,
        sql`(select count(*) from submissions s
              where s.exercise_id = ${exercises.id} and s.user_id = ${userId} and s.counts_as_attempt)`,
      ),
    })
    .from(exercises)
    .innerJoin(lessons, eq(lessons.id, exercises.lessonId))
    .leftJoin(
      courseMembers,
      and(eq(courseMembers.courseId, exercises.courseId), eq(courseMembers.userId, userId)),
    )
    .leftJoin(
      exerciseExceptions,
      and(eq(exerciseExceptions.exerciseId, exercises.id), eq(exerciseExceptions.userId, userId)),
    )
    .where(eq(exercises.id, sql.placeholder('exerciseId')))
    .prepare('exercise_detail');
  return async (exerciseId: string, caller: string): Promise<ExerciseDetailRow | null> => {
    const [row] = await stmt.execute({ exerciseId, userId: caller });
    return row ?? null;
  };
}
