import { loadConfig } from '../src/config.ts';
import type { ExerciseTest } from '../src/db/schema/index.ts';
import { grade } from '../src/grading/grade.ts';
import type { GradeOutcome, GradeRequest } from '../src/grading/grading.types.ts';
import { createSandboxes, type Sandboxes } from '../src/grading/sandboxes.ts';

// Test builders for grading: tests as stored (JSON text for a call test's arguments and expected value).

interface TestOptions {
  hidden?: boolean;
  points?: number;
  tolerance?: number;
}

/** A call test; `args`/`expected` given as values (JSON.stringify'd) or as exact JSON text ({ json }). */
export function callTest(
  name: string,
  args: unknown[] | { json: string },
  expected: unknown,
  opts: TestOptions = {},
): ExerciseTest {
  const text = (v: unknown) =>
    typeof v === 'object' && v !== null && 'json' in v && typeof (v as { json: unknown }).json === 'string'
      ? (v as { json: string }).json
      : JSON.stringify(v);
  return {
    name,
    kind: 'call',
    argsJson: text(args),
    expectedJson: text(expected),
    hidden: opts.hidden ?? false,
    points: opts.points ?? 1,
    tolerance: opts.tolerance ?? 0,
  };
}

export function ioTest(name: string, stdin: string, stdout: string, opts: TestOptions = {}): ExerciseTest {
  return { name, kind: 'io', stdin, stdout, hidden: opts.hidden ?? false, points: opts.points ?? 1 };
}

let sandboxes: Sandboxes | null = null;

/** This test file's sandboxes, created from the default config on first use. */
export function testSandboxes(): Sandboxes {
  sandboxes ??= createSandboxes(loadConfig({ JS_WORKERS: '2' }));
  return sandboxes;
}

export async function closeTestSandboxes(): Promise<void> {
  const s = sandboxes;
  sandboxes = null;
  await s?.close();
}

/** Grades in this file's sandboxes; the submission's total budget defaults to 30 s. */
export function gradeInTest(
  req: Omit<GradeRequest, 'totalMs'> & { totalMs?: number },
): Promise<GradeOutcome> {
  return grade(testSandboxes(), { totalMs: 30_000, ...req });
}

/**
 * Marks one submission's job claimed, as a grader's claim would (attempt, generation bump; no lease,
 * so other jobs of the same user stay claimable), so a test can record the verdict it wants through
 * the real recordOutcome. The fair claim (claimJobs) picks jobs itself; this picks the one the test
 * is about.
 */
export async function claimSubmissionJob(
  pool: { query: (text: string, params: unknown[]) => Promise<{ rows: Array<{ generation: number }> }> },
  submissionId: string,
): Promise<{ kind: 'submission'; targetId: string; generation: number }> {
  await pool.query('update grading_jobs set attempts = attempts + 1 where submission_id = $1', [
    submissionId,
  ]);
  const { rows } = await pool.query(
    `update submissions set status = 'running', grading_generation = grading_generation + 1
      where id = $1 returning grading_generation as generation`,
    [submissionId],
  );
  if (!rows[0]) throw new Error(`no submission ${submissionId}`);
  return { kind: 'submission', targetId: submissionId, generation: rows[0].generation };
}
