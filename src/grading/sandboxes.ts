import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { grade } from './grade.ts';
import type { GradeRequest } from './grading.types.ts';
import { JsPool } from './javascript/js-pool.ts';
import { PythonSandbox, type PythonSandboxOptions } from './python/py-sandbox.ts';
import type { IsolationLayer, Sandboxes } from './sandbox.types.ts';

export type { Sandboxes } from './sandbox.types.ts';

export type SandboxConfig = Pick<
  Config,
  | 'JS_WORKERS'
  | 'SANDBOX_UID_BASE'
  | 'SANDBOX_UID_COUNT'
  | 'SANDBOX_CGROUPS'
  | 'PYTHON_BOX_STARTS'
  | 'GRADING_MAX_SUBMISSION_MS'
>;

export function createSandboxes(
  config: SandboxConfig,
  overrides: { python?: PythonSandboxOptions; log?: Logger } = {},
): Sandboxes {
  const javascript = new JsPool(config.JS_WORKERS > 0 ? config.JS_WORKERS : availableParallelism());
  const python = new PythonSandbox({
    uidBase: config.SANDBOX_UID_BASE,
    uidCount: config.SANDBOX_UID_COUNT,
    cgroups: config.SANDBOX_CGROUPS,
    startsAtOnce: config.PYTHON_BOX_STARTS,
    log: overrides.log,
    ...overrides.python,
  });
  return {
    javascript,
    python,
    async warm() {
      await Promise.all([javascript.warm(), python.warm()]);
    },
    async close() {
      await Promise.all([javascript.close(), python.close()]);
    },
  };
}

export interface SandboxHealth {
  ok: boolean;
  detail: string;
}

async function probe(sandboxes: Sandboxes, req: GradeRequest): Promise<SandboxHealth> {
  const started = performance.now();
  const outcome = await grade(sandboxes, req);
  const ms = Math.round(performance.now() - started);
  if (outcome.status === 'passed') return { ok: true, detail: `graded a probe submission in ${ms} ms` };
  return { ok: false, detail: outcome.message ?? outcome.results[0]?.message ?? outcome.status };
}

/** For `lab doctor`: grades a tiny submission in each language, and lists each one's isolation layers. */
export async function sandboxStatus(sandboxes: Sandboxes): Promise<{
  javascript: SandboxHealth;
  python: SandboxHealth;
  javascriptIsolation: IsolationLayer[];
  pythonIsolation: IsolationLayer[];
}> {
  const base = { entrypoint: 'add', maxScore: 1, limits: { timeMs: 2000, memoryMb: 32 }, totalMs: 10_000 };
  const tests = [
    {
      name: 'probe',
      kind: 'call' as const,
      argsJson: '[1,2]',
      expectedJson: '3',
      hidden: false,
      points: 1,
      tolerance: 0,
    },
  ];
  const [javascript, python] = await Promise.all([
    probe(sandboxes, {
      ...base,
      language: 'javascript',
      code: 'function add(a, b) { return a + b; }',
      tests,
    }),
    probe(sandboxes, { ...base, language: 'python', code: 'def add(a, b):\n    return a + b\n', tests }),
  ]);
  return {
    javascript,
    python,
    javascriptIsolation: await sandboxes.javascript.isolation(),
    pythonIsolation: await sandboxes.python.isolation(),
  };
}
