import { Type } from '@sinclair/typebox';
import { RunSchema } from '../../contracts/submission.ts';
import { Id } from '../../http/schemas.ts';
import { MAX_CODE_BYTES } from '../submissions/submission.schemas.ts';

/** v1.1: an input for the program of at most 64 kB (1 kB = 1,000 bytes); bytes are checked in the service. */
export const MAX_STDIN_BYTES = 64_000;
/** v1.1: more than this many runs a minute per user is 429. */
export const RUNS_PER_MINUTE = 20;

export const CreateRunBody = Type.Object(
  {
    code: Type.String({ maxLength: MAX_CODE_BYTES }),
    stdin: Type.Optional(Type.String({ maxLength: MAX_STDIN_BYTES })),
  },
  { additionalProperties: false },
);

export const RunParams = Type.Object({ runId: Id });

export { RunSchema };

export const RunResponse = Type.Object({ run: RunSchema });
