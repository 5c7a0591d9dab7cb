import type { Db } from '../../db/client.ts';
import type { EventHub } from '../../realtime/event-hub.ts';
import { notFound, rateLimited, validationFailed } from '../../shared/errors.ts';
import type { Caller } from '../auth/auth.queries.ts';
import { assertNotArchived, can, isStaff } from '../courses/course.policy.ts';
import { requireExerciseAccess } from '../exercises/exercise-access.queries.ts';
import { MAX_CODE_BYTES } from '../submissions/submission.schemas.ts';
import { isDone, presentRun } from './run.presenter.ts';
import * as q from './run.queries.ts';
import { MAX_STDIN_BYTES, RUNS_PER_MINUTE } from './run.schemas.ts';

export interface RunTiming {
  /** GRADING_MAX_SUBMISSION_MS: a run never takes longer in all. */
  maxGradingMs: number;
  /** The request must be answered before this (REQUEST_TIMEOUT_MS). */
  requestTimeoutMs: number;
}

/**
 * Starts a run (v1.1): the visible tests (staff: all tests), or the program once on `stdin`, graded
 * like a submission but with no attempt used and nothing in the gradebook. One statement inserts
 * the run and its job; then the request waits for the result up to the exercise's limits + 5 s:
 * `done` says whether it came.
 */
export async function startRun(
  db: Db,
  hub: EventHub,
  wakeGraders: () => void,
  caller: Caller,
  input: { exerciseId: string; code: string; stdin?: string },
  timing: RunTiming,
) {
  if (Buffer.byteLength(input.code, 'utf8') > MAX_CODE_BYTES)
    throw validationFailed('code', 'must be at most 100 kB');
  if (input.stdin !== undefined && Buffer.byteLength(input.stdin, 'utf8') > MAX_STDIN_BYTES)
    throw validationFailed('stdin', 'must be at most 64 kB');
  // The access read, then one statement that gates and inserts: no transaction held open between them
  // (each gap held its pooled connection while the API process got to the result).
  const access = await requireExerciseAccess(db, input.exerciseId, caller.id, can.view);
  assertNotArchived(access.archived);
  const staff = isStaff(access.role);
  const started = await q.insertRunIfAllowed(
    db,
    {
      courseId: access.courseId,
      exerciseId: input.exerciseId,
      userId: caller.id,
      code: input.code,
      stdin: input.stdin ?? null,
      allTests: staff,
    },
    { windowSeconds: 60, perWindow: RUNS_PER_MINUTE },
  );
  if (!started.locked) throw rateLimited('Another run of yours is being started; retry in a moment.', 1);
  if (started.recent >= RUNS_PER_MINUTE)
    throw rateLimited(
      `At most ${RUNS_PER_MINUTE} runs a minute; wait a little before running again.`,
      started.retryAfterSeconds,
    );
  if (!started.run) throw new Error('the run was not inserted, though every check passed');
  const run = started.run;
  const tests = input.stdin !== undefined ? 1 : staff ? access.testCount : access.visibleTests.length;
  const waitMs = Math.min(tests * access.timeMs, timing.maxGradingMs) + 5000;
  wakeGraders();
  // Answered before the request's own timeout, whatever the limits.
  const deadline = Date.now() + Math.min(waitMs, timing.requestTimeoutMs - 1000);
  let latest: q.RunRow = run;
  while (!isDone(latest) && Date.now() < deadline) {
    // The result arrives as a run.updated event; the read below also covers an event this instance missed.
    await hub.waitForRun(run.id, Math.min(1000, deadline - Date.now()));
    latest = (await q.selectOwnRun(db, run.id, caller.id)) ?? latest;
  }
  return { done: isDone(latest), run: presentRun(latest) };
}

export async function getRun(db: Db, caller: Caller, runId: string) {
  const run = await q.selectOwnRun(db, runId, caller.id);
  if (!run) throw notFound('Run');
  return presentRun(run);
}
