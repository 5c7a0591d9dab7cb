import type { ExerciseLimits, ExerciseTest } from '../../db/schema/index.ts';
import { isStaff, type Role } from '../courses/course.policy.ts';
import { presentTest } from './exercise-tests.ts';

export interface ExerciseRow {
  id: string;
  lessonId: string;
  courseId: string;
  title: string;
  prompt: string;
  language: 'javascript' | 'python';
  entrypoint: string | null;
  starterCode: string;
  tests: ExerciseTest[];
  maxScore: number;
  dueAt: Date | null;
  maxAttempts: number | null;
  limits: ExerciseLimits;
  createdAt: Date;
  updatedAt: Date;
}

/** Students learn that a hidden test exists and its name, never its inputs or expected output. */
export function presentTests(tests: ExerciseTest[], staff: boolean) {
  return tests.map((t) =>
    t.hidden && !staff ? { name: t.name, kind: t.kind, hidden: true as const } : presentTest(t),
  );
}

/** The exercise as `role` may see it: staff see every test in full. */
export function presentExercise(e: ExerciseRow, role: Role | null) {
  return {
    id: e.id,
    lessonId: e.lessonId,
    courseId: e.courseId,
    title: e.title,
    prompt: e.prompt,
    language: e.language,
    entrypoint: e.entrypoint,
    starterCode: e.starterCode,
    tests: presentTests(e.tests, isStaff(role)),
    maxScore: e.maxScore,
    dueAt: e.dueAt ? e.dueAt.toISOString() : null,
    maxAttempts: e.maxAttempts,
    limits: { timeMs: e.limits.timeMs, memoryMb: e.limits.memoryMb },
    createdAt: e.createdAt.toISOString(),
    updatedAt: e.updatedAt.toISOString(),
  };
}
