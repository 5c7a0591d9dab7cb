import type { Static } from '@sinclair/typebox';
import type { Db } from '../../db/client.ts';
import { AppError, type ErrorDetail, notFound } from '../../http/errors.ts';
import { isUuid } from '../../http/schemas.ts';
import type { Caller } from '../auth/auth.queries.ts';
import { authorize, can } from '../courses/course.policy.ts';
import { selectLessonWithRole } from '../lessons/lesson.queries.ts';
import * as q from './exercise.queries.ts';
import { type CreateExerciseBody, DEFAULT_LIMITS, type PatchExerciseBody } from './exercise.schemas.ts';
import { normaliseTests, testsSource } from './exercise-tests.ts';

type CreateInput = Static<typeof CreateExerciseBody>;
type PatchInput = Static<typeof PatchExerciseBody>;

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

/** `rawBody`: the request body as sent, where the tests' arguments and expected values are read exactly. */
export async function createExercise(
  db: Db,
  caller: Caller,
  lessonId: string,
  input: CreateInput,
  rawBody?: string,
) {
  const details: ErrorDetail[] = [];
  const values: q.ExerciseValues = {
    title: input.title,
    prompt: input.prompt ?? '',
    language: input.language,
    entrypoint: input.entrypoint ?? null,
    starterCode: input.starterCode ?? '',
    tests: normaliseTests(input.tests, testsSource(rawBody, ['tests']), details),
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

export async function updateExercise(
  db: Db,
  caller: Caller,
  exerciseId: string,
  input: PatchInput,
  rawBody?: string,
) {
  const details: ErrorDetail[] = [];
  const tests = input.tests
    ? normaliseTests(input.tests, testsSource(rawBody, ['tests']), details)
    : undefined;
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
