import { and, eq, sql } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.ts';
import { courseMembers, exercises } from '../../db/schema/index.ts';
import type { Role } from '../courses/course.policy.ts';
import type { ExerciseRow } from './exercise.presenter.ts';

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
  createdAt: exercises.createdAt,
  updatedAt: exercises.updatedAt,
};

export type ExerciseValues = Omit<ExerciseRow, 'id' | 'lessonId' | 'courseId' | 'createdAt' | 'updatedAt'>;

export async function insertExercise(
  tx: Tx,
  values: ExerciseValues & { lessonId: string; courseId: string },
): Promise<ExerciseRow> {
  const [row] = await tx.insert(exercises).values(values).returning(exerciseFields);
  return row!;
}

/** For a read-modify-write: the row is locked so concurrent edits do not overwrite each other. */
export async function selectExerciseForUpdate(
  tx: Tx,
  exerciseId: string,
  userId: string,
): Promise<(ExerciseRow & { role: Role | null }) | null> {
  const [row] = await tx
    .select({ ...exerciseFields, role: courseMembers.role })
    .from(exercises)
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

/** The exercise and the caller's role in its course, one round trip; prepared for the exercise page. */
export function prepareExerciseDetail(db: Db) {
  const stmt = db
    .select({ ...exerciseFields, role: courseMembers.role })
    .from(exercises)
    .leftJoin(
      courseMembers,
      and(
        eq(courseMembers.courseId, exercises.courseId),
        eq(courseMembers.userId, sql.placeholder('userId')),
      ),
    )
    .where(eq(exercises.id, sql.placeholder('exerciseId')))
    .prepare('exercise_detail');
  return async (
    exerciseId: string,
    userId: string,
  ): Promise<(ExerciseRow & { role: Role | null }) | null> => {
    const [row] = await stmt.execute({ exerciseId, userId });
    return row ?? null;
  };
}
