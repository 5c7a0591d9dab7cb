import { Type } from '@sinclair/typebox';
import { SubmissionSchema, TestResultSchema } from '../../contracts/submission.ts';

/** API.md: code ≤ 100 kB (1 kB = 1,000 bytes); the byte count is checked in the service. */
export const MAX_CODE_BYTES = 100_000;
export const MAX_IDEMPOTENCY_KEY = 200;

export const CreateSubmissionBody = Type.Object(
  { code: Type.String({ maxLength: MAX_CODE_BYTES }) },
  { additionalProperties: false },
);

// The submission's JSON is a contract shared with the grader and the event hub.
export { SubmissionSchema, TestResultSchema };

export const SubmissionResponse = Type.Object({ submission: SubmissionSchema });

export const ListSubmissionsQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 500 })),
    userId: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  },
  { additionalProperties: false },
);
