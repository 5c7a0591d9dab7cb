import type { Static } from '@sinclair/typebox';
import type { Db } from '../../db/client.ts';
import { isUuid } from '../../http/schemas.ts';
import { AppError, type ErrorDetail, notFound } from '../../shared/errors.ts';
import type { Caller } from '../auth/auth.queries.ts';
import { assertNotArchived, authorize, can } from '../courses/course.policy.ts';
import { selectLessonWithRole } from '../lessons/lesson.queries.ts';
import { recomputeCredit } from '../submissions/submission.queries.ts';
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
export function checkWhole(values: q.ExerciseValues, details: ErrorDetail[], prefix = '') {
  if (values.tests.some((t) => t.kind === 'call') && !values.entrypoint)
    details.push({ field: `${prefix}entrypoint`, message: 'is required when a test has kind "call"' });
  values.latePolicy.forEach((entry, i) => {
    const previous = values.latePolicy[i - 1];
    if (previous && Date.parse(entry.until) <= Date.parse(previous.until))
      details.push({
        field: `${prefix}latePolicy.${i}.until`,
        message: 'must come after the entry before it',
      });
    if (values.dueAt && Date.parse(entry.until) <= values.dueAt.getTime())
      details.push({ field: `${prefix}latePolicy.${i}.until`, message: 'must come after dueAt' });
  });
  if (values.latePolicy.length > 0 && !values.dueAt)
    details.push({ field: `${prefix}latePolicy`, message: 'needs a dueAt to count from' });
}

function failIfAny(details: ErrorDetail[]) {
  if (details.length > 0) fail(details);
}

const toDate = (s: string | null | undefined) => (s ? new Date(s) : null);
/** Late-policy dates as stored: normalised ISO strings (so a policy compares and exports the same way). */
const isoPolicy = (policy: Array<{ until: string; credit: number }>) =>
  policy.map((e) => ({ until: new Date(e.until).toISOString(), credit: e.credit }));

/** The exercise values a create or an import writes: the body with its defaults. */
export function exerciseValues(input: CreateInput, tests: q.ExerciseValues['tests']): q.ExerciseValues {
  return {
    title: input.title,
    prompt: input.prompt ?? '',
    language: input.language,
    entrypoint: input.entrypoint ?? null,
    starterCode: input.starterCode ?? '',
    tests,
    maxScore: input.maxScore,
    dueAt: toDate(input.dueAt),
    maxAttempts: input.maxAttempts ?? null,
    limits: { ...DEFAULT_LIMITS, ...input.limits },
    referenceSolution: input.referenceSolution ?? null,
    // Default: published when created (v1.1); null = a draft.
    publishedAt: input.publishedAt === undefined ? new Date() : toDate(input.publishedAt),
    latePolicy: isoPolicy(input.latePolicy ?? []),
  };
}

/** `rawBody`: the request body as sent, where the tests' arguments and expected values are read exactly. */
export async function createExercise(
  db: Db,
  caller: Caller,
  lessonId: string,
  input: CreateInput,
  rawBody?: string,
) {
  const details: ErrorDetail[] = [];
  const values = exerciseValues(input, normaliseTests(input.tests, testsSource(rawBody, ['tests']), details));
  checkWhole(values, details);
  failIfAny(details);
  return db.transaction(async (tx) => {
    const lesson = isUuid(lessonId) ? await selectLessonWithRole(tx, lessonId, caller.id) : null;
    if (!lesson) throw notFound('Lesson');
    authorize(lesson.role, can.author, 'Lesson');
    assertNotArchived(lesson.archived);
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
    assertNotArchived(current.archived);
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
      referenceSolution:
        input.referenceSolution !== undefined ? input.referenceSolution : current.referenceSolution,
      publishedAt: input.publishedAt !== undefined ? toDate(input.publishedAt) : current.publishedAt,
      latePolicy: input.latePolicy !== undefined ? isoPolicy(input.latePolicy) : current.latePolicy,
    };
    checkWhole(values, details);
    failIfAny(details);
    const exercise = await q.updateExercise(tx, exerciseId, values);
    // Lateness and credit follow the exercise's due date and late policy, for past submissions too.
    if (input.dueAt !== undefined || input.latePolicy !== undefined)
      await recomputeCredit(tx, exerciseId, null);
    return { exercise, role: current.role };
  });
}

/** Deletes an exercise; one with submissions only with `force` (they go with it). */
export async function deleteExercise(db: Db, caller: Caller, exerciseId: string, force: boolean) {
  await db.transaction(async (tx) => {
    const current = isUuid(exerciseId) ? await q.selectExerciseForUpdate(tx, exerciseId, caller.id) : null;
    if (!current) throw notFound('Exercise');
    authorize(current.role, can.author, 'Exercise');
    assertNotArchived(current.archived);
    const submitted = await q.countSubmissions(tx, exerciseId);
    if (submitted > 0 && !force)
      throw new AppError(
        409,
        'has_submissions',
        `This exercise has ${submitted} submission${submitted === 1 ? '' : 's'}; delete with ?force=true to delete ${submitted === 1 ? 'it' : 'them'} too.`,
      );
    await q.deleteExercise(tx, exerciseId);
  });
}
