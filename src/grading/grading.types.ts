import type { ExerciseLimits, ExerciseTest } from '../db/schema/exercises.ts';
import type { TestResult } from '../db/schema/submissions.ts';

/** What a grader hands to the sandboxes: one submission against one exercise's tests. */
export interface GradeRequest {
  language: 'javascript' | 'python';
  code: string;
  entrypoint: string | null;
  tests: ExerciseTest[];
  limits: ExerciseLimits;
  maxScore: number;
  /** The submission's whole grading budget (GRADING_MAX_SUBMISSION_MS), whatever tests × limits add up to. */
  totalMs: number;
}

/**
 * The verdict. `infrastructure: true` means the code could not be judged for a reason that is not the
 * student's fault (sandbox unavailable, grader gave up): status is 'error' and it is not an attempt.
 */
export interface GradeOutcome {
  status: 'passed' | 'failed' | 'error';
  score: number;
  message: string | null;
  results: TestResult[];
  infrastructure: boolean;
}

export type { ExerciseLimits, ExerciseTest, TestResult };
