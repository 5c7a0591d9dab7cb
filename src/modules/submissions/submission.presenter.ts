import { maskSubmission, type SubmissionJson, type Viewer } from '../../contracts/submission.ts';
import type { SubmissionRow } from './submission.queries.ts';

/**
 * API JSON of a submission, masked for the viewer (src/contracts/submission.ts: staff see everything,
 * students see a hidden test only as name, passed and hidden).
 */
export function presentSubmission(row: SubmissionRow, viewer: Viewer): SubmissionJson {
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
