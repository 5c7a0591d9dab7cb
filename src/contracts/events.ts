import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { RunSchema, SubmissionSchema } from './submission.ts';

/*
 * The events of GET /events (docs/api.md): written by the grader with a verdict (events.payload,
 * jsonb), relayed by every instance's event hub, read by the web app. The payload is checked where it
 * comes back from the database, so a shape drift between writer and reader fails loudly.
 */

export const SubmissionUpdatedPayload = Type.Object({ submission: SubmissionSchema });
export const RunUpdatedPayload = Type.Object({ run: RunSchema });

export type LabEvent =
  | { type: 'submission.updated'; payload: Static<typeof SubmissionUpdatedPayload> }
  | { type: 'run.updated'; payload: Static<typeof RunUpdatedPayload> };

const checkSubmission = TypeCompiler.Compile(SubmissionUpdatedPayload);
const checkRun = TypeCompiler.Compile(RunUpdatedPayload);

/**
 * An events row's type and payload as a LabEvent, or null when they do not match the contract (such
 * an event cannot be masked safely, so it is not delivered; the reader logs it).
 */
export function toLabEvent(type: string, payload: unknown): LabEvent | null {
  if (type === 'submission.updated' && checkSubmission.Check(payload)) return { type, payload };
  if (type === 'run.updated' && checkRun.Check(payload)) return { type, payload };
  return null;
}
