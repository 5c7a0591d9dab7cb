import type { Db, Tx } from '../../db/client.ts';
import { isUuid } from '../../http/schemas.ts';
import { notFound } from '../../shared/errors.ts';
import type { Caller } from '../auth/auth.queries.ts';
import { assertNotArchived, can } from '../courses/course.policy.ts';
import { requireExerciseAccess } from '../exercises/exercise-access.queries.ts';
import { recomputeCredit } from '../submissions/submission.queries.ts';
import { presentException } from './exception.presenter.ts';
import * as q from './exception.queries.ts';

/** The exercise is staff's to change, and the user is a member of its course (else 404). */
async function forMember(tx: Tx, caller: Caller, exerciseId: string, userId: string) {
  const access = await requireExerciseAccess(tx, exerciseId, caller.id, can.author);
  if (!isUuid(userId) || (await q.selectMemberRole(tx, access.courseId, userId)) === null)
    throw notFound('Member');
  return access;
}

/**
 * Sets a student's own due date and/or extra attempts (v1.1). Their past submissions' lateness and
 * credit follow at once, in the same transaction.
 */
export async function putException(
  db: Db,
  caller: Caller,
  exerciseId: string,
  userId: string,
  input: { dueAt?: string | null; extraAttempts?: number },
) {
  return db.transaction(async (tx) => {
    const access = await forMember(tx, caller, exerciseId, userId);
    assertNotArchived(access.archived);
    const row = await q.upsertException(tx, {
      exerciseId,
      userId,
      courseId: access.courseId,
      dueAt: input.dueAt === undefined ? undefined : input.dueAt === null ? null : new Date(input.dueAt),
      extraAttempts: input.extraAttempts,
    });
    await recomputeCredit(tx, exerciseId, userId);
    return presentException(row);
  });
}

export async function deleteException(db: Db, caller: Caller, exerciseId: string, userId: string) {
  await db.transaction(async (tx) => {
    const access = await forMember(tx, caller, exerciseId, userId);
    assertNotArchived(access.archived);
    if (!(await q.deleteException(tx, exerciseId, userId))) throw notFound('Exception');
    await recomputeCredit(tx, exerciseId, userId);
  });
}

export async function listExceptions(db: Db, caller: Caller, exerciseId: string) {
  await requireExerciseAccess(db, exerciseId, caller.id, can.author);
  return (await q.selectExceptions(db, exerciseId)).map(presentException);
}
