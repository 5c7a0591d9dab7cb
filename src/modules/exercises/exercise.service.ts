import type { Static } from '@sinclair/typebox';
import type { Db } from '../../db/client.ts';
import type { ExerciseTest } from '../../db/schema/index.ts';
import { AppError, type ErrorDetail, notFound } from '../../http/errors.ts';
import { isUuid } from '../../http/schemas.ts';
import type { Caller } from '../auth/auth.queries.ts';
import { authorize, can } from '../courses/course.policy.ts';
import { selectLessonWithRole } from '../lessons/lesson.queries.ts';
import * as q from './exercise.queries.ts';
import {
  type CreateExerciseBody,
  DEFAULT_LIMITS,
  type PatchExerciseBody,
  type TestBody,
} from './exercise.schemas.ts';

type CreateInput = Static<typeof CreateExerciseBody>;
type PatchInput = Static<typeof PatchExerciseBody>;
type TestInput = Static<typeof TestBody>;

const has = (o: object, key: string) => Object.hasOwn(o, key);

/** Checks the kind-specific fields of each test and fills defaults; every problem is reported at once. */
export function normaliseTests(tests: TestInput[], details: ErrorDetail[]): ExerciseTest[] {
  const seen = new Set<string>();
  return tests.map((t, i) => {
    const at = (f: string) => `tests.${i}.${f}`;
    const reject = (f: string, message: string) => details.push({ field: at(f), message });
    if (seen.has(t.name)) reject('name', 'must be unique within the exercise');
    seen.add(t.name);
    const hidden = t.hidden ?? false;
    if (t.kind === 'call') {
      if (!Array.isArray(t.args)) reject('args', 'is required for a call test (an array of arguments)');
      if (!has(t, 'expected')) reject('expected', 'is required for a call test');
      for (const f of ['stdin', 'stdout']) if (has(t, f)) reject(f, 'is only accepted for an io test');
      return { name: t.name, kind: 'call', args: t.args ?? [], expected: t.expected ?? null, hidden };
    }
    if (typeof t.stdout !== 'string') reject('stdout', 'is required for an io test');
    for (const f of ['args', 'expected']) if (has(t, f)) reject(f, 'is only accepted for a call test');
    return { name: t.name, kind: 'io', stdin: t.stdin ?? '', stdout: t.stdout ?? '', hidden };
  });
}

function fail(details: ErrorDetail[]): never {
  const first = details[0]!;
  throw new AppError(400, 'validation_failed', `${first.field} ${first.message}`, details);
}

/** Cross-field rules on the exercise as it will be stored (after defaults or a PATCH merge). */
function checkWhole(values: q.ExerciseValues, details: ErrorDetail[]) {
  if (values.tests.some((t) => t.kind === 'call') && !values.entrypoint)
    details.push({ field: 'entrypoint', message: 'is required when a test has kind "call"' });
  if (details.length > 0) fail(details);
}

const toDate = (s: string | null | undefined) => (s ? new Date(s) : null);

export async function createExercise(db: Db, caller: Caller, lessonId: string, input: CreateInput) {
  const details: ErrorDetail[] = [];
  const values: q.ExerciseValues = {
    title: input.title,
    prompt: input.prompt ?? '',
    language: input.language,
    entrypoint: input.entrypoint ?? null,
    starterCode: input.starterCode ?? '',
    tests: normaliseTests(input.tests, details),
    maxScore: input.maxScore,
    dueAt: toDate(input.dueAt),
    maxAttempts: input.maxAttempts ?? null,
    limits: { ...DEFAULT_LIMITS, ...input.limits },
  };
  checkWhole(values, details);
  return db.transaction(async (tx) => {
    const lesson = isUuid(lessonId) ? await selectLessonWithRole(tx, lessonId, caller.id) : null;
    if (!lesson) throw notFound('Lesson');
    authorize(lesson.role, can.author, 'Lesson');
    return {
      exercise: await q.insertExercise(tx, { ...values, lessonId, courseId: lesson.courseId }),
      role: lesson.role,
    };
  });
}

export async function updateExercise(db: Db, caller: Caller, exerciseId: string, input: PatchInput) {
  const details: ErrorDetail[] = [];
  const tests = input.tests ? normaliseTests(input.tests, details) : undefined;
  return db.transaction(async (tx) => {
    const current = isUuid(exerciseId) ? await q.selectExerciseForUpdate(tx, exerciseId, caller.id) : null;
    if (!current) throw notFound('Exercise');
    authorize(current.role, can.author, 'Exercise');
    const values: q.ExerciseValues = {
      title: input.title ?? current.title,
      prompt: input.prompt ?? current.prompt,
      language: input.language ?? current.language,
      entrypoint: input.entrypoint !== undefined ? input.entrypoint : current.entrypoint,
      starterCode: input.starterCode ?? current.starterCode,
      tests: tests ?? current.tests,
      maxScore: input.maxScore ?? current.maxScore,
      dueAt: input.dueAt !== undefined ? toDate(input.dueAt) : current.dueAt,
      maxAttempts: input.maxAttempts !== undefined ? input.maxAttempts : current.maxAttempts,
      limits: { ...current.limits, ...input.limits },
    };
    checkWhole(values, details);
    return { exercise: await q.updateExercise(tx, exerciseId, values), role: current.role };
  });
}
