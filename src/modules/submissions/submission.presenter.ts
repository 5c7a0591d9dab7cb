import type { TestResult } from '../../db/schema/submissions.ts';

export interface SubmissionRow {
  id: string;
  exerciseId: string;
  userId: string;
  status: 'queued' | 'running' | 'passed' | 'failed' | 'error';
  score: number | null;
  message: string | null;
  late: boolean;
  createdAt: Date;
  gradedAt: Date | null;
  results: TestResult[];
}

export type SubmissionJson = ReturnType<typeof presentSubmission>;

/**
 * API JSON of a submission. `staff` viewers see everything; anyone else (the author as a student)
 * sees a hidden test only as name, passed, hidden and durationMs, so failure messages cannot leak
 * the hidden inputs or expected values.
 */
export function presentSubmission(row: SubmissionRow, viewer: { staff: boolean }) {
  return maskSubmission(
    {
      id: row.id,
      exerciseId: row.exerciseId,
      userId: row.userId,
      status: row.status,
      score: row.score,
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
      })),
    },
    viewer,
  );
}

/**
 * Applies the hidden-test masking to already-presented JSON (events store it unmasked).
 *
 * A submission being regraded is `queued`/`running` yet still carries its previous verdict (score,
 * message, results, gradedAt) until the new one replaces it: API.md's regrade runs "in the
 * background" and the gradebook keeps that score meanwhile. Those results were graded with the old
 * tests, whose `hidden` flags may since have changed (a test made hidden is a typical reason to
 * regrade), so while a verdict is pending a student sees no per-test message at all.
 */
export function maskSubmission<T extends { status: string; results: TestResult[] }>(
  json: T,
  viewer: { staff: boolean },
): T {
  if (viewer.staff) return json;
  const pending = json.status === 'queued' || json.status === 'running';
  return {
    ...json,
    results: json.results.map((r) => (r.hidden || pending ? { ...r, message: null } : r)),
  };
}
