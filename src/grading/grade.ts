import { judge, scoreOf } from './compare.ts';
import type { GradeOutcome, GradeRequest } from './grading.types.ts';
import { JsPool } from './javascript/js-pool.ts';
import { PythonSandbox } from './python/py-sandbox.ts';
import { type RawOutcome, type SandboxRun, toSandboxJob } from './sandbox.types.ts';

export interface SandboxOptions {
  /** JavaScript worker threads; default: the number of cores. */
  jsWorkers?: number;
  bwrap?: string;
  python?: string;
}

let options: SandboxOptions = {
  jsWorkers: process.env.LAB_JS_WORKERS ? Number(process.env.LAB_JS_WORKERS) : undefined,
};
let jsPool: JsPool | null = null;
let pySandbox: PythonSandbox | null = null;

/** Changes how sandboxes are built; takes effect for sandboxes created after the call. */
export async function configureSandboxes(next: SandboxOptions): Promise<void> {
  await closeSandboxes();
  options = { ...options, ...next };
}

function js(): JsPool {
  jsPool ??= new JsPool(options.jsWorkers && options.jsWorkers > 0 ? options.jsWorkers : undefined);
  return jsPool;
}

function py(): PythonSandbox {
  pySandbox ??= new PythonSandbox({ bwrap: options.bwrap, python: options.python });
  return pySandbox;
}

/** Runs one submission against its tests in the language's sandbox and judges it on this side. */
export async function grade(req: GradeRequest): Promise<GradeOutcome> {
  // Tests of one submission share a program (a loaded module keeps its state between call tests;
  // Python's builtins outlive an io test). Visible tests therefore run before hidden ones, so a
  // program cannot carry a hidden test's input into a visible test's message a student reads.
  const order = visibleFirst(req.tests);
  const job = toSandboxJob({ ...req, tests: order.map((i) => req.tests[i]!) });
  let run: SandboxRun;
  try {
    run = req.language === 'javascript' ? await js().run(job) : await py().run(job);
  } catch (e) {
    run = {
      kind: 'error',
      message: `The ${req.language} sandbox failed: ${e instanceof Error ? e.message : String(e)}`,
      infrastructure: true,
    };
  }
  if (run.kind === 'error') {
    return {
      status: 'error',
      score: 0,
      message: run.message,
      results: [],
      infrastructure: run.infrastructure,
    };
  }
  const outcomes: RawOutcome[] = new Array(req.tests.length);
  order.forEach((original, ran) => {
    outcomes[original] = run.outcomes[ran]!;
  });
  const results = req.tests.map((test, i) => judge(test, outcomes[i]!, req.limits));
  const passed = results.filter((r) => r.passed).length;
  const failed = results.length - passed;
  return {
    status: failed === 0 ? 'passed' : 'failed',
    score: scoreOf(req.maxScore, passed, results.length),
    message: failed === 0 ? null : `${passed} of ${results.length} tests passed.`,
    results,
    infrastructure: false,
  };
}

/** Indices of `tests`, visible ones first, each group in its given order. */
export function visibleFirst(tests: ReadonlyArray<{ hidden: boolean }>): number[] {
  const indices = tests.map((_, i) => i);
  return [...indices.filter((i) => !tests[i]!.hidden), ...indices.filter((i) => tests[i]!.hidden)];
}

export interface SandboxHealth {
  ok: boolean;
  detail: string;
}

async function probe(req: GradeRequest): Promise<SandboxHealth> {
  const started = performance.now();
  const outcome = await grade(req);
  const ms = Math.round(performance.now() - started);
  if (outcome.status === 'passed') return { ok: true, detail: `graded a probe submission in ${ms} ms` };
  return { ok: false, detail: outcome.message ?? outcome.results[0]?.message ?? outcome.status };
}

/** For `lab doctor`: grades a tiny submission in each language. */
export async function sandboxStatus(): Promise<{ javascript: SandboxHealth; python: SandboxHealth }> {
  const base = { entrypoint: 'add', maxScore: 1, limits: { timeMs: 2000, memoryMb: 32 } };
  const tests = [{ name: 'probe', kind: 'call' as const, args: [1, 2], expected: 3, hidden: false }];
  const [javascript, python] = await Promise.all([
    probe({ ...base, language: 'javascript', code: 'function add(a, b) { return a + b; }', tests }),
    probe({ ...base, language: 'python', code: 'def add(a, b):\n    return a + b\n', tests }),
  ]);
  return { javascript, python };
}

/** Releases the worker threads (Python sandboxes are per submission and end on their own). */
export async function closeSandboxes(): Promise<void> {
  const pool = jsPool;
  jsPool = null;
  pySandbox = null;
  await pool?.close();
}
