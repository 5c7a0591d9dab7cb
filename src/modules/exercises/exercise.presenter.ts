import type { ExerciseTest } from '../../db/schema/index.ts';
import { isStaff, type Role } from '../courses/course.policy.ts';
import type { ExerciseRow } from './exercise.queries.ts';
import { presentTest } from './exercise-tests.ts';

/** Students learn that a hidden test exists and its name, never its inputs or expected output. */
export function presentTests(tests: ExerciseTest[], staff: boolean) {
  return tests.map((t) =>
    t.hidden && !staff ? { name: t.name, kind: t.kind, hidden: true as const } : presentTest(t),
  );
}

/** What is the caller's own about this exercise: their due date and attempts left (v1.1 exceptions). */
export interface ForCaller {
  effectiveDueAt: Date | null;
  attemptsLeft: number | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/**
 * The exercise as `role` may see it: staff see every test in full and the reference solution; the
 * due date is the caller's own (an exception's when they have one).
 */
export function presentExercise(e: ExerciseRow, role: Role | null, forCaller?: ForCaller) {
  const staff = isStaff(role);
  return {
    id: e.id,
    lessonId: e.lessonId,
    courseId: e.courseId,
    title: e.title,
    prompt: e.prompt,
    language: e.language,
    entrypoint: e.entrypoint,
    starterCode: e.starterCode,
    tests: presentTests(e.tests, staff),
    maxScore: e.maxScore,
    dueAt: iso(forCaller ? forCaller.effectiveDueAt : e.dueAt),
    maxAttempts: e.maxAttempts,
    limits: { timeMs: e.limits.timeMs, memoryMb: e.limits.memoryMb },
    latePolicy: e.latePolicy,
    publishedAt: iso(e.publishedAt),
    ...(staff ? { referenceSolution: e.referenceSolution } : {}),
    attemptsLeft: forCaller ? forCaller.attemptsLeft : e.maxAttempts,
    createdAt: e.createdAt.toISOString(),
    updatedAt: e.updatedAt.toISOString(),
  };
}
