// The API's shapes, derived from the server's own TypeBox schemas where the server exports them, so a
// change on the server is a type error here. `import type` keeps TypeBox out of the browser bundle.
import type { Static } from '@sinclair/typebox';
import type { ErrorBody, UserSchema } from '../../../src/http/schemas.ts';
import type {
  CourseSchema,
  LessonSummarySchema,
  MemberSchema,
  RoleSchema,
} from '../../../src/modules/courses/course.schemas.ts';
import type { ExceptionSchema } from '../../../src/modules/exceptions/exception.schemas.ts';
import type { ExerciseSchema } from '../../../src/modules/exercises/exercise.schemas.ts';
import type { presentProgress } from '../../../src/modules/gradebook/gradebook.presenter.ts';
import type { Gradebook } from '../../../src/modules/gradebook/gradebook.schemas.ts';
import type { ExerciseSummarySchema, LessonSchema } from '../../../src/modules/lessons/lesson.schemas.ts';
import type { RunSchema } from '../../../src/modules/runs/run.schemas.ts';
import type {
  SubmissionSchema,
  TestResultSchema,
} from '../../../src/modules/submissions/submission.schemas.ts';

export type User = Static<typeof UserSchema>;
export type Role = Static<typeof RoleSchema>;
export type Course = Static<typeof CourseSchema>;
export type LessonSummary = Static<typeof LessonSummarySchema>;
export type Member = Static<typeof MemberSchema>;
export type ErrorDetail = NonNullable<Static<typeof ErrorBody>['error']['details']>[number];

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export type Lesson = Static<typeof LessonSchema>;
export type Language = Exercise['language'];
export type ExerciseSummary = Omit<Static<typeof ExerciseSummarySchema>, 'language'> & { language: Language };

/** A test as the API shows it; students see a hidden test only as {name, kind, hidden}. */
export type TestCase =
  | { name: string; kind: 'call'; args?: unknown[]; expected?: unknown; hidden: boolean }
  | { name: string; kind: 'io'; stdin?: string; stdout?: string; hidden: boolean };

// The server's schema types tests loosely (jsonb); the UI needs their shape.
export type Exercise = Omit<Static<typeof ExerciseSchema>, 'tests'> & { tests: TestCase[] };

export type Submission = Static<typeof SubmissionSchema>;
export type SubmissionStatus = Submission['status'];
export type TestResult = Static<typeof TestResultSchema>;

export type { Gradebook };
export type Progress = ReturnType<typeof presentProgress>;

export type Run = Static<typeof RunSchema>;
export type StudentException = Static<typeof ExceptionSchema>;
export type LatePolicy = Exercise['latePolicy'];
