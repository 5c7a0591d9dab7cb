import { Type } from '@sinclair/typebox';
import { Id } from '../../http/schemas.ts';

export const DEFAULT_LIMITS = { timeMs: 2000, memoryMb: 64 } as const;

const Language = Type.Union([Type.Literal('javascript'), Type.Literal('python')]);

// Kind-specific fields (args/expected vs stdin/stdout) are checked in the service, where the error can
// name the one field that is wrong instead of listing every branch of a union.
export const TestBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    kind: Type.Union([Type.Literal('call'), Type.Literal('io')]),
    args: Type.Optional(Type.Array(Type.Unknown(), { maxItems: 100 })),
    expected: Type.Optional(Type.Unknown()),
    stdin: Type.Optional(Type.String({ maxLength: 100_000 })),
    stdout: Type.Optional(Type.String({ maxLength: 100_000 })),
    hidden: Type.Optional(Type.Boolean()),
    points: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000 })),
    tolerance: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000_000 })),
  },
  { additionalProperties: false },
);

const Timestamp = Type.String({ format: 'date-time' });

/** v1.1: credit after the due date, by date; ascending `until`, credit 0..1. */
export const LatePolicyBody = Type.Array(
  Type.Object(
    { until: Timestamp, credit: Type.Number({ minimum: 0, maximum: 1 }) },
    { additionalProperties: false },
  ),
  { maxItems: 20 },
);

export const fields = {
  title: Type.String({ minLength: 1, maxLength: 200 }),
  prompt: Type.String({ maxLength: 200_000 }),
  language: Language,
  // A top-level function name in either language.
  entrypoint: Type.Union([Type.String({ pattern: '^[A-Za-z_$][A-Za-z0-9_$]{0,99}$' }), Type.Null()]),
  starterCode: Type.String({ maxLength: 100_000 }),
  tests: Type.Array(TestBody, { minItems: 1, maxItems: 100 }),
  maxScore: Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000 }),
  dueAt: Type.Union([Timestamp, Type.Null()]),
  maxAttempts: Type.Union([Type.Integer({ minimum: 1, maximum: 1000 }), Type.Null()]),
  referenceSolution: Type.Union([Type.String({ maxLength: 100_000 }), Type.Null()]),
  publishedAt: Type.Union([Timestamp, Type.Null()]),
  latePolicy: LatePolicyBody,
  limits: Type.Object(
    {
      timeMs: Type.Optional(Type.Integer({ minimum: 50, maximum: 10_000 })),
      memoryMb: Type.Optional(Type.Integer({ minimum: 16, maximum: 512 })),
    },
    { additionalProperties: false },
  ),
};

export const CreateExerciseBody = Type.Object(
  {
    title: fields.title,
    prompt: Type.Optional(fields.prompt),
    language: fields.language,
    entrypoint: Type.Optional(fields.entrypoint),
    starterCode: Type.Optional(fields.starterCode),
    tests: fields.tests,
    maxScore: fields.maxScore,
    dueAt: Type.Optional(fields.dueAt),
    maxAttempts: Type.Optional(fields.maxAttempts),
    limits: Type.Optional(fields.limits),
    referenceSolution: Type.Optional(fields.referenceSolution),
    publishedAt: Type.Optional(fields.publishedAt),
    latePolicy: Type.Optional(fields.latePolicy),
  },
  { additionalProperties: false },
);

export const PatchExerciseBody = Type.Partial(CreateExerciseBody, { additionalProperties: false });

export const ExerciseParams = Type.Object({ exerciseId: Id });
export const DeleteExerciseQuery = Type.Object(
  { force: Type.Optional(Type.Boolean({ description: 'delete its submissions too' })) },
  { additionalProperties: false },
);

export const ExerciseSchema = Type.Object({
  id: Type.String(),
  lessonId: Type.String(),
  courseId: Type.String(),
  title: Type.String(),
  prompt: Type.String(),
  language: Language,
  entrypoint: Type.Union([Type.String(), Type.Null()]),
  starterCode: Type.String(),
  tests: Type.Array(Type.Unknown()),
  maxScore: Type.Number(),
  dueAt: Type.Union([Type.String(), Type.Null()]),
  maxAttempts: Type.Union([Type.Integer(), Type.Null()]),
  limits: Type.Object({ timeMs: Type.Integer(), memoryMb: Type.Integer() }),
  latePolicy: Type.Array(Type.Object({ until: Type.String(), credit: Type.Number() })),
  publishedAt: Type.Union([Type.String(), Type.Null()]),
  /** Staff only. */
  referenceSolution: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  /** The caller's attempts left (their extra attempts included); null = no limit. */
  attemptsLeft: Type.Union([Type.Integer(), Type.Null()]),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
