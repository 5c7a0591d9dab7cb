import { Type } from '@sinclair/typebox';

/** API.md: code ≤ 100 kB (1 kB = 1,000 bytes); the byte count is checked in the service. */
export const MAX_CODE_BYTES = 100_000;
export const MAX_IDEMPOTENCY_KEY = 200;

export const CreateSubmissionBody = Type.Object(
  { code: Type.String({ maxLength: MAX_CODE_BYTES }) },
  { additionalProperties: false },
);

export const TestResultSchema = Type.Object({
  name: Type.String(),
  passed: Type.Boolean(),
  hidden: Type.Boolean(),
  message: Type.Union([Type.String(), Type.Null()]),
  /** To students, 0 for hidden tests: how long a hidden test ran could carry its input out. */
  durationMs: Type.Number(),
  output: Type.Union([Type.String(), Type.Null()]),
  points: Type.Number(),
});

export const SubmissionSchema = Type.Object({
  id: Type.String(),
  exerciseId: Type.String(),
  userId: Type.String(),
  /** v1.1: shown to its author and course staff (events leave it out). */
  code: Type.Optional(Type.String()),
  status: Type.Union([
    Type.Literal('queued'),
    Type.Literal('running'),
    Type.Literal('passed'),
    Type.Literal('failed'),
    Type.Literal('error'),
  ]),
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

export const SubmissionResponse = Type.Object({ submission: SubmissionSchema });

export const ListSubmissionsQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 500 })),
    userId: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  },
  { additionalProperties: false },
);
