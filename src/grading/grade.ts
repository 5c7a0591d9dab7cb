import { judge, scoreOf } from './compare.ts';
import type { GradeOutcome, GradeRequest } from './grading.types.ts';
import type { SandboxJob, SandboxRun } from './sandbox.types.ts';
import type { Sandboxes } from './sandboxes.ts';

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
