import { createHash } from 'node:crypto';
import type { Db } from '../../db/client.ts';
import { isUniqueViolation } from '../../db/errors.ts';
import { requeueExercise } from '../../grading/queue.ts';
import { parseCursor, toPage } from '../../http/pagination.ts';
import { isUuid } from '../../http/schemas.ts';
import { AppError, rateLimited, validationFailed } from '../../shared/errors.ts';
import { assertNotArchived, can, isStaff, requireVisible } from '../courses/course.policy.ts';
import { requireExerciseAccess } from '../exercises/exercise-access.queries.ts';
import { presentSubmission } from './submission.presenter.ts';
import * as q from './submission.queries.ts';
import { MAX_CODE_BYTES, MAX_IDEMPOTENCY_KEY } from './submission.schemas.ts';

export const bodyHash = (code: string) => createHash('sha256').update(code, 'utf8').digest('hex');

export interface SubmitResult {
  created: boolean;
  submission: ReturnType<typeof presentSubmission>;
}

/**
 * One submit = one transaction: the submission row and its grading job commit together, so a
 * job exists iff its submission does. Replays of an Idempotency-Key return the original.
 */
export interface SubmitLimits {
  /** SUBMISSIONS_PER_MINUTE: new submissions one user may make per minute, across exercises. */
  perMinute: number;
}

export async function submit(
  db: Db,
  wakeGraders: () => void,
  input: { exerciseId: string; userId: string; code: string; idempotencyKey: string | undefined },
  limits: SubmitLimits,
): Promise<SubmitResult> {
  const key = input.idempotencyKey;
  if (key !== undefined && (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY))
    throw validationFailed('Idempotency-Key', `must be 1..${MAX_IDEMPOTENCY_KEY} characters`);
  if (Buffer.byteLength(input.code, 'utf8') > MAX_CODE_BYTES)
    throw validationFailed('code', 'must be at most 100 kB');
  const hash = bodyHash(input.code);
  let result: SubmitResult;
  try {
    result = await submitOnce(db, input, key ?? null, hash, limits);
  } catch (err) {
    // The try-lock refuses a parallel submit of one user and exercise, so this is a belt-and-braces
    // path: a parallel duplicate committed first, and the retry returns it as a replay.
    if (key !== undefined && isUniqueViolation(err, 'submissions_idempotency_idx'))
      return submitOnce(db, input, key, hash, limits);
    throw err;
  }
  // Committed: now the graders may look (a NOTIFY inside the transaction would hold up its commit).
  if (result.created) wakeGraders();
  return result;
}

/**
 * Two round trips, neither inside an open transaction: the exercise access (who may submit, lateness,
 * credit, attempts allowed), then one statement that gates, checks and inserts (insertSubmissionIfAllowed).
 * A transaction spanning both held its pooled connection through every gap between its statements, the
 * time the API process took to get to each result (docs/perf/classroom-profile.md).
 */
async function submitOnce(
  db: Db,
  input: { exerciseId: string; userId: string; code: string },
  key: string | null,
  hash: string,
  limits: SubmitLimits,
): Promise<SubmitResult> {
  const access = await requireExerciseAccess(db, input.exerciseId, input.userId, can.view);
  const staff = isStaff(access.role);
  const present = (row: q.SubmissionRow) =>
    presentSubmission(row, { staff, visibleTests: access.visibleTests });
  const outcome = await q.insertSubmissionIfAllowed(
    db,
    {
      courseId: access.courseId,
      exerciseId: input.exerciseId,
      userId: input.userId,
      code: input.code,
      late: access.late,
      credit: access.credit,
      idempotencyKey: key,
      bodyHash: hash,
    },
    {
      windowSeconds: 60,
      perWindow: limits.perMinute,
      allowedAttempts: access.allowedAttempts,
      archived: access.archived,
    },
  );
  if (!outcome.locked)
    throw rateLimited(
      'Another submission of yours to this exercise is being recorded; retry in a moment.',
      1,
    );
  if (key !== null && outcome.priorHash !== null) {
    if (outcome.priorHash !== hash)
      throw new AppError(
        409,
        'idempotency_conflict',
        'This Idempotency-Key was already used with a different body; use a new key for new code.',
      );
    // A replay (rare: a client retrying after a lost response) reads the original in a round trip of its own.
    const existing = await q.selectOptionalSubmissionByKey(db, input.userId, input.exerciseId, key);
    if (existing) return { created: false, submission: present(existing) };
    // Deleted since (its course or author removed): the key is free again.
    return submitOnce(db, input, key, hash, limits);
  }
  assertNotArchived(access.archived);
  // Counted from the submissions themselves (no separate counter to drift), after the replay check: a
  // client retrying with its Idempotency-Key is not the flood this stops.
  if (outcome.recent >= limits.perMinute)
    throw rateLimited(
      `At most ${limits.perMinute} submissions a minute; wait a little before submitting again.`,
      outcome.retryAfterSeconds,
    );
  if (access.allowedAttempts !== null && outcome.attempts >= access.allowedAttempts)
    throw new AppError(
      409,
      'attempts_exhausted',
      `All ${access.allowedAttempts} attempts at this exercise are used.`,
    );
  if (!outcome.inserted) throw new Error('the submission was not inserted, though every check passed');
  return { created: true, submission: present(outcome.inserted) };
}

/** Its author and the course staff may see a submission; anyone else gets 404. */
export async function getSubmission(db: Db, submissionId: string, userId: string) {
  const found = await q.selectOptionalSubmissionWithRole(db, submissionId, userId);
  // Staff see every submission of their course; a student only their own (to them others do not exist).
  const { submission, role, visibleTests } = requireVisible(
    found && { ...found, visible: found.submission.userId === userId },
    'Submission',
  );
  return presentSubmission(submission, { staff: isStaff(role), visibleTests });
}

/** Members see their own submissions; staff see everyone's, optionally one user's. */
export async function listSubmissions(
  db: Db,
  input: { exerciseId: string; userId: string; filterUserId?: string; cursor?: string; limit: number },
) {
  const cursor = parseCursor(input.cursor);
  const access = await requireExerciseAccess(db, input.exerciseId, input.userId, can.view);
  const staff = isStaff(access.role);
  let userId: string | null = input.userId;
  if (staff) {
    userId = input.filterUserId ?? null;
    if (userId !== null && !isUuid(userId)) return { items: [], nextCursor: null };
  }
  const rows = await q.selectSubmissionsPage(db, {
    exerciseId: input.exerciseId,
    userId,
    cursor,
    limit: input.limit,
  });
  return toPage(
    rows,
    input.limit,
    (r) => ({ at: r.cursorKey, id: r.id }),
    (r) => presentSubmission(r, { staff, visibleTests: access.visibleTests }),
  );
}

/** Queues every submission of the exercise for grading with the current tests. */
export async function regrade(
  db: Db,
  wakeGraders: () => void,
  exerciseId: string,
  userId: string,
): Promise<number> {
  const queued = await db.transaction(async (tx) => {
    const access = await requireExerciseAccess(tx, exerciseId, userId, can.author);
    assertNotArchived(access.archived);
    return requeueExercise(tx, exerciseId);
  });
  // Committed: now the graders may look (a NOTIFY inside the transaction would hold up its commit).
  if (queued > 0) wakeGraders();
  return queued;
}
