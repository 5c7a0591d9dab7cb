import type { TestResult } from '../../db/schema/submissions.ts';

export interface SubmissionRow {
  id: string;
  exerciseId: string;
  userId: string;
  code: string;
  status: 'queued' | 'running' | 'passed' | 'failed' | 'error';
  /** The credited score: round(rawScore × credit, 2). */
  score: number | null;
  rawScore: number | null;
  credit: number;
  message: string | null;
  late: boolean;
  createdAt: Date;
  gradedAt: Date | null;
  results: TestResult[];
}

export type SubmissionJson = ReturnType<typeof presentSubmission>;

export interface Viewer {
  /** Course staff see every result in full. */
  staff: boolean;
  /**
   * Names of the exercise's tests that are visible *now*. A result is shown as hidden when its test
   * was hidden at grading time or is not visible any more (made hidden or renamed since): masking
   * follows the exercise's current flags. Omitted = trust the flags stored with the results.
   */
  visibleTests?: readonly string[];
}

/**
 * API JSON of a submission. `staff` viewers see everything; anyone else (the author as a student)
 * sees a hidden test only as name, passed and hidden — no message, output or duration — so nothing
 * of the hidden inputs or expected values leaks, not even through how long a test ran.
 */
export function presentSubmission(row: SubmissionRow, viewer: Viewer) {
  return maskSubmission(
    {
      id: row.id,
      exerciseId: row.exerciseId,
      userId: row.userId,
      code: row.code,
      status: row.status,
      score: row.score,
      rawScore: row.rawScore,
      credit: row.credit,
      message: row.message,
      late: row.late,
      createdAt: row.createdAt.toISOString(),
      gradedAt: row.gradedAt ? row.gradedAt.toISOString() : null,
      results: row.results.map((r) => ({
        name: r.name,
        passed: r.passed,
        hidden: r.hidden,
        message: r.message,
        durationMs: r.durationMs,
        output: r.output ?? null,
        points: r.points ?? 1,
      })),
    },
    viewer,
  );
}

/** Applies the hidden-test masking to already-presented JSON (events store it unmasked). */
export function maskSubmission<T extends { results: TestResult[] }>(json: T, viewer: Viewer): T {
  if (viewer.staff) return json;
  const visible = viewer.visibleTests ? new Set(viewer.visibleTests) : null;
  return {
    ...json,
    results: json.results.map((r) =>
      r.hidden || (visible !== null && !visible.has(r.name))
        ? { ...r, hidden: true, message: null, output: null, durationMs: 0 }
        : r,
    ),
  };
}
