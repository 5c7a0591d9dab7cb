import { and, eq, type Placeholder, sql } from 'drizzle-orm';
import { PgTransaction } from 'drizzle-orm/pg-core';
import type { Tx } from '../../db/client.ts';
import { perDb } from '../../db/replicas.ts';
import { courseMembers, courses, exerciseExceptions, exercises, lessons } from '../../db/schema/index.ts';
import { isUuid } from '../../http/schemas.ts';
import { type Role, requireVisible } from '../courses/course.policy.ts';
import { allowedAttempts, creditAt, effectiveDue, isPublished } from './exercise-rules.ts';

/** What submitting to (or running) an exercise needs to know about it and the caller, in one round trip. */
export interface ExerciseAccess {
  courseId: string;
  role: Role | null;
  /** The exercise and its lesson are published (students may see it). */
  visible: boolean;
  archived: boolean;
  /** The caller's attempts: the exercise's maximum plus their extra ones; null = no limit. */
  allowedAttempts: number | null;
  /** Now is past the caller's own due date (their exception's, else the exercise's). */
  late: boolean;
  /** The late policy's credit for a submission made now. */
  credit: number;
  /** Names of the tests visible to students now (results of other tests are masked for them). */
  visibleTests: string[];
  testCount: number;
  timeMs: number;
}

/** The names of an exercise's tests that are visible now. */
export const visibleTestNames = sql<string[]>`coalesce((
  select array_agg(t->>'name') from jsonb_array_elements(${exercises.tests}) t
   where not coalesce((t->>'hidden')::boolean, false)), '{}')`;

/** Null = no such exercise. */
export async function selectOptionalExerciseAccess(
  tx: Tx,
  exerciseId: string,
  userId: string,
): Promise<ExerciseAccess | null> {
  if (!isUuid(exerciseId)) return null;
  const [row] =
    tx instanceof PgTransaction
      ? await accessQuery(tx, exerciseId, userId)
      : await preparedAccess(tx).execute({ exerciseId, userId });
  return row ?? null;
}

/**
 * Built once per database handle and run by name: Drizzle takes ≈ 0.15 ms of CPU to build this query's
 * SQL (its dozens of fragments), and every submit reads it (docs/perf/access-build.ts). Inside a
 * transaction (regrades, exceptions) it is built per call, which is rare.
 */
const preparedAccess = perDb((db) =>
  accessQuery(db, sql.placeholder('exerciseId'), sql.placeholder('userId')).prepare('exercise_access'),
);

function accessQuery(tx: Tx, exerciseId: string | Placeholder, userId: string | Placeholder) {
  const due = effectiveDue(sql`${exercises.dueAt}`, sql`${exerciseExceptions.dueAt}`);
  return tx
    .select({
      courseId: exercises.courseId,
      role: courseMembers.role,
      visible: sql<boolean>`${isPublished(sql`${exercises.publishedAt}`)} and ${isPublished(sql`${lessons.publishedAt}`)}`,
      archived: sql<boolean>`${courses.archivedAt} is not null`,
      allowedAttempts: allowedAttempts(
        sql`${exercises.maxAttempts}`,
        sql`${exerciseExceptions.extraAttempts}`,
      ),
      late: sql<boolean>`coalesce(${due} < now(), false)`,
      credit: creditAt(sql`now()`, sql`${exercises.dueAt}`, due, sql`${exercises.latePolicy}`),
      visibleTests: visibleTestNames,
      testCount: sql<number>`jsonb_array_length(${exercises.tests})`,
      timeMs: sql<number>`(${exercises.limits}->>'timeMs')::int`,
    })
    .from(exercises)
    .innerJoin(lessons, eq(lessons.id, exercises.lessonId))
    .innerJoin(courses, eq(courses.id, exercises.courseId))
    .leftJoin(
      courseMembers,
      and(eq(courseMembers.courseId, exercises.courseId), eq(courseMembers.userId, userId)),
    )
    .leftJoin(
      exerciseExceptions,
      and(eq(exerciseExceptions.exerciseId, exercises.id), eq(exerciseExceptions.userId, userId)),
    )
    .where(eq(exercises.id, exerciseId))
    .limit(1);
}

/**
 * Loads the access and checks it: 404 for an unknown exercise, a stranger, or a student who may not
 * see it yet (a draft or a scheduled one); 403 when the role may not do `allowed`.
 */
export async function requireExerciseAccess(
  tx: Tx,
  exerciseId: string,
  userId: string,
  allowed: (role: Role | null) => boolean,
): Promise<ExerciseAccess & { role: Role }> {
  return requireVisible(await selectOptionalExerciseAccess(tx, exerciseId, userId), 'Exercise', allowed);
}
