/**
 * What crosses the sandbox boundary. A sandbox never sees `expected` values nor expected output: it
 * receives only what the student program needs to run, and hands back raw observations (a return
 * value serialised to JSON text, captured stdout, an exception) that the host judges in compare.ts.
 * A call test's arguments travel as the JSON text the instructor wrote, so key order and big
 * integers reach the program exactly.
 */
export type SandboxTest = { kind: 'call'; argsJson: string } | { kind: 'io'; stdin: string };

export interface SandboxJob {
  code: string;
  entrypoint: string | null;
  tests: SandboxTest[];
  /** Per test (and for loading the program), measured by the host. */
  timeMs: number;
  memoryMb: number;
  /** The whole job's budget, measured by the host from the start of the job. */
  totalMs: number;
}

/** What the program printed during a test: the first MAX_SHOWN_OUTPUT characters and the full size. */
export interface Printed {
  text: string;
  size: number;
}

export type RawOutcome =
  /** `json` is the JSON text of the return value, or null when it has no JSON form (undefined, a function). */
  | { kind: 'value'; json: string | null; durationMs: number; printed?: Printed }
  | { kind: 'stdout'; stdout: string; truncated: boolean; durationMs: number }
  | { kind: 'raised'; error: string; durationMs: number; printed?: Printed }
  | { kind: 'timeout'; durationMs: number }
  | { kind: 'memory'; durationMs: number; printed?: Printed }
  | { kind: 'crashed'; detail: string; durationMs: number }
  /** Not run: an earlier test exceeded its time limit, or the job used up its total time. */
  | { kind: 'skipped'; reason: 'timeout' | 'total' };

export type SandboxRun =
  | { kind: 'ran'; outcomes: RawOutcome[] }
  /** The program could not run at all; `infrastructure` when that is not the student's fault. */
  | { kind: 'error'; message: string; infrastructure: boolean };

export type Language = 'javascript' | 'python';

/** One layer of a sandbox's isolation, as `lab doctor` lists it. */
export interface IsolationLayer {
  name: string;
  active: boolean;
  /** Without an essential layer the sandbox refuses to grade (unavailable()). */
  essential: boolean;
  detail: string;
}

/**
 * A language's sandbox (javascript/js-pool.ts, python/py-sandbox.ts). Instances are created from the
 * validated config (sandboxes.ts) and passed to whoever grades; nothing holds one at module level.
 */
export interface Sandbox {
  readonly language: Language;
  /** Gets ready before the first submission (workers started, isolation layers found). */
  warm(): Promise<void>;
  /** Why this sandbox refuses to grade here (an essential isolation layer is missing), or null. */
  unavailable(): Promise<string | null>;
  /** Its isolation layers on this host. */
  isolation(): Promise<IsolationLayer[]>;
  run(job: SandboxJob): Promise<SandboxRun>;
  close(): Promise<void>;
}

/** stdout kept per test; more is a failed test, not a bigger buffer. */
/** One sandbox per language, created from the config and passed to whoever grades. */
export interface Sandboxes extends Readonly<Record<Language, Sandbox>> {
  /** Gets every one ready before the first submission: JavaScript workers started, Python's layers found. */
  warm(): Promise<void>;
  close(): Promise<void>;
}

export const MAX_OUTPUT_CHARS = 1_000_000;
/** Longest JSON text of a return value taken out of a sandbox. */
export const MAX_VALUE_CHARS = 1_000_000;
/** What a result shows of a test's printed output (API v1.1 `output`). */
export const MAX_SHOWN_OUTPUT = 4_096;
/** Slack past `timeMs` before the host kills a test: pipe and scheduling latency, not student time. */
export const WATCHDOG_GRACE_MS = 150;
