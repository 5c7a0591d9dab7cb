import { type Static, Type } from '@sinclair/typebox';

/*
 * The JSON of a submission and of a run (docs/api.md), shared by the API (responses), the grader (the
 * event it writes with a verdict) and the event hub (which masks it per recipient). TypeBox schemas:
 * they validate responses, document /docs and give the TypeScript types.
 */

export const SubmissionStatusSchema = Type.Union([
  Type.Literal('queued'),
  Type.Literal('running'),
  Type.Literal('passed'),
  Type.Literal('failed'),
  Type.Literal('error'),
]);
export type SubmissionStatus = Static<typeof SubmissionStatusSchema>;

export const TestResultSchema = Type.Object({
  name: Type.String(),
  passed: Type.Boolean(),
  hidden: Type.Boolean(),
  message: Type.Union([Type.String(), Type.Null()]),
  /** To students, 0 for hidden tests: how long a hidden test ran could carry its input out. */
  durationMs: Type.Number(),
  /** What the code printed during the test (≤ 4 kB, truncated with a marker); null when nothing ran. */
  output: Type.Union([Type.String(), Type.Null()]),
  /** The test's weight in the score. */
  points: Type.Number(),
});
/** One test's result, as stored (submissions.results, runs.results) and as shown to staff. */
export type TestResult = Static<typeof TestResultSchema>;

export const SubmissionSchema = Type.Object({
  id: Type.String(),
  exerciseId: Type.String(),
  userId: Type.String(),
  /** v1.1: shown to its author and course staff (events leave it out). */
  code: Type.Optional(Type.String()),
  status: SubmissionStatusSchema,
  score: Type.Union([Type.Number(), Type.Null()]),
  /** v1.1: the tests' score before the late policy's credit (score = round(rawScore × credit, 2)). */
  rawScore: Type.Union([Type.Number(), Type.Null()]),
  credit: Type.Number(),
  message: Type.Union([Type.String(), Type.Null()]),
  late: Type.Boolean(),
  createdAt: Type.String(),
  gradedAt: Type.Union([Type.String(), Type.Null()]),
  results: Type.Array(TestResultSchema),
});
export type SubmissionJson = Static<typeof SubmissionSchema>;

export const RunSchema = Type.Object({
  id: Type.String(),
  exerciseId: Type.String(),
  status: SubmissionStatusSchema,
  message: Type.Union([Type.String(), Type.Null()]),
  results: Type.Array(TestResultSchema),
  /** What a run with `stdin` printed. */
  output: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
});
export type RunJson = Static<typeof RunSchema>;

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
 * The hidden-test masking, for the API's responses and the event hub's deliveries alike: `staff`
 * viewers see everything; anyone else (the author as a student) sees a hidden test only as name,
 * passed and hidden — no message, output or duration — so nothing of the hidden inputs or expected
 * values leaks, not even through how long a test ran.
 */
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
