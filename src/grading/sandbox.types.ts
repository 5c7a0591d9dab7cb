/**
 * What crosses the sandbox boundary. A sandbox never sees `expected` values nor expected output: it
 * receives only what the student program needs to run, and hands back raw observations (a return
 * value serialised to JSON text, captured stdout, an exception) that the host judges in compare.ts.
 */
export type SandboxTest = { kind: 'call'; args: unknown[] } | { kind: 'io'; stdin: string };

export interface SandboxJob {
  code: string;
  entrypoint: string | null;
  tests: SandboxTest[];
  timeMs: number;
  memoryMb: number;
}

export type RawOutcome =
  /** `json` is the JSON text of the return value, or null when it has no JSON form (undefined, a function). */
  | { kind: 'value'; json: string | null; durationMs: number }
  | { kind: 'stdout'; stdout: string; truncated: boolean; durationMs: number }
  | { kind: 'raised'; error: string; durationMs: number }
  | { kind: 'timeout'; durationMs: number }
  | { kind: 'memory'; durationMs: number }
  | { kind: 'crashed'; detail: string; durationMs: number };

export type SandboxRun =
  | { kind: 'ran'; outcomes: RawOutcome[] }
  /** The program could not run at all; `infrastructure` when that is not the student's fault. */
  | { kind: 'error'; message: string; infrastructure: boolean };

/** stdout kept per test; more is a failed test, not a bigger buffer. */
export const MAX_OUTPUT_CHARS = 1_000_000;
/** Longest JSON text of a return value taken out of a sandbox. */
export const MAX_VALUE_CHARS = 1_000_000;
/** Slack past `timeMs` before the outer watchdog kills a sandbox that ignored its own deadline. */
export const WATCHDOG_GRACE_MS = 150;

export function toSandboxJob(req: {
  code: string;
  entrypoint: string | null;
  tests: ReadonlyArray<{ kind: 'call'; args: unknown[] } | { kind: 'io'; stdin: string }>;
  limits: { timeMs: number; memoryMb: number };
}): SandboxJob {
  return {
    code: req.code,
    entrypoint: req.entrypoint,
    // Copy only the inputs: expected values stay on the host.
    tests: req.tests.map((t) =>
      t.kind === 'call' ? { kind: 'call', args: t.args } : { kind: 'io', stdin: t.stdin },
    ),
    timeMs: req.limits.timeMs,
    memoryMb: req.limits.memoryMb,
  };
}
