import { judge, scoreOf } from './compare.ts';
import type { GradeOutcome, GradeRequest } from './grading.types.ts';
import type { Sandboxes, SandboxJob, SandboxRun } from './sandbox.types.ts';

/** Runs one submission against its tests in the language's sandbox and judges it on this side. */
export async function grade(sandboxes: Sandboxes, req: GradeRequest): Promise<GradeOutcome> {
  // Tests of one submission share a program (a loaded module keeps its state between call tests;
  // Python's builtins outlive an io test). Visible tests therefore run before hidden ones, so a
  // program cannot carry a hidden test's input into a visible test's message a student reads.
  const order = visibleFirst(req.tests);
  const job: SandboxJob = {
    code: req.code,
    entrypoint: req.entrypoint,
    // Only the inputs cross into the sandbox: expected values stay here.
    tests: order.map((i) => {
      const t = req.tests[i]!;
      return t.kind === 'call' ? { kind: 'call', argsJson: t.argsJson } : { kind: 'io', stdin: t.stdin };
    }),
    timeMs: req.limits.timeMs,
    memoryMb: req.limits.memoryMb,
    totalMs: req.totalMs,
  };
  let run: SandboxRun;
  try {
    run = await sandboxes[req.language].run(job);
  } catch (e) {
    run = {
      kind: 'error',
      message: `The ${req.language} sandbox failed: ${e instanceof Error ? e.message : String(e)}`,
      infrastructure: true,
    };
  }
  if (run.kind === 'error')
    return {
      status: 'error',
      score: 0,
      message: run.message,
      results: [],
      infrastructure: run.infrastructure,
    };
  const ran = run.outcomes;
  const limits = { ...req.limits, totalMs: req.totalMs };
  const byOriginal = new Array(req.tests.length);
  order.forEach((original, position) => {
    byOriginal[original] = judge(req.tests[original]!, ran[position]!, limits, req.language);
  });
  const results = byOriginal as GradeOutcome['results'];
  const passed = results.filter((r) => r.passed).length;
  return {
    status: passed === results.length ? 'passed' : 'failed',
    score: scoreOf(req.maxScore, results),
    message: passed === results.length ? null : `${passed} of ${results.length} tests passed.`,
    results,
    infrastructure: false,
  };
}

/** Indices of `tests`, visible ones first, each group in its given order. */
export function visibleFirst(tests: ReadonlyArray<{ hidden: boolean }>): number[] {
  const indices = tests.map((_, i) => i);
  return [...indices.filter((i) => !tests[i]!.hidden), ...indices.filter((i) => tests[i]!.hidden)];
}

/** What a run on an input keeps of the program's output (a result's `output` keeps 4 kB). */
export const MAX_RUN_OUTPUT = 64 * 1024;

/**
 * A program run once on an input (v1.1 runs with `stdin`): no tests, what it printed is the point.
 * `passed` = it ran to its end; `failed` = it raised, or hit a limit; `error` = it could not run.
 */
export async function runProgram(
  sandboxes: Sandboxes,
  req: Pick<GradeRequest, 'language' | 'code' | 'limits' | 'totalMs'> & { stdin: string },
): Promise<GradeOutcome & { output: string | null }> {
  let run: SandboxRun;
  try {
    run = await sandboxes[req.language].run({
      code: req.code,
      entrypoint: null,
      tests: [{ kind: 'io', stdin: req.stdin }],
      timeMs: req.limits.timeMs,
      memoryMb: req.limits.memoryMb,
      totalMs: req.totalMs,
    });
  } catch (e) {
    run = {
      kind: 'error',
      message: `The ${req.language} sandbox failed: ${(e as Error).message}`,
      infrastructure: true,
    };
  }
  const base = { score: 0, results: [], infrastructure: false };
  if (run.kind === 'error')
    return {
      ...base,
      status: 'error',
      message: run.message,
      output: null,
      infrastructure: run.infrastructure,
    };
  const outcome = run.outcomes[0]!;
  const cut = (text: string, size = text.length) =>
    size <= MAX_RUN_OUTPUT
      ? text
      : `${text.slice(0, MAX_RUN_OUTPUT)}\n… [output truncated: ${size - MAX_RUN_OUTPUT} more characters]`;
  switch (outcome.kind) {
    case 'stdout':
      return {
        ...base,
        status: 'passed',
        message: outcome.truncated ? 'Output limit exceeded (1,000,000 characters).' : null,
        output: cut(outcome.stdout),
      };
    case 'raised':
      return {
        ...base,
        status: 'failed',
        message: outcome.error,
        output: outcome.printed ? cut(outcome.printed.text, outcome.printed.size) : null,
      };
    case 'timeout':
      return {
        ...base,
        status: 'failed',
        message: `Time limit exceeded (${req.limits.timeMs} ms).`,
        output: null,
      };
    case 'memory':
      return {
        ...base,
        status: 'failed',
        message: `Memory limit exceeded (${req.limits.memoryMb} MB).`,
        output: null,
      };
    case 'crashed':
      return { ...base, status: 'failed', message: `The program crashed: ${outcome.detail}`, output: null };
    default:
      return {
        ...base,
        status: 'failed',
        message: `The program stopped: ${JSON.stringify(outcome)}`,
        output: null,
      };
  }
}
