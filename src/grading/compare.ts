import type { ExerciseLimits, ExerciseTest, TestResult } from './grading.types.ts';
import type { RawOutcome } from './sandbox.types.ts';

/** Deep equality of two JSON values: key order ignored, array order kept, true ≠ 1, null ≠ missing. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bArr = b as unknown[];
    return a.length === bArr.length && a.every((x, i) => jsonEqual(x, bArr[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = Object.keys(ao);
  if (keys.length !== Object.keys(bo).length) return false;
  return keys.every((k) => Object.hasOwn(bo, k) && jsonEqual(ao[k], bo[k]));
}

/** Output as judged: trailing whitespace of each line and trailing empty lines do not count. */
export function normaliseOutput(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((line) => line.replace(/\s+$/, ''))
    .join('\n')
    .replace(/\n+$/, '');
}

export function truncate(text: string, max = 200): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

function showJson(value: unknown): string {
  return truncate(JSON.stringify(value) ?? 'undefined');
}

function describeOutputDifference(expected: string, received: string): string {
  const exp = expected.split('\n');
  const got = received.split('\n');
  const line = exp.findIndex((l, i) => l !== got[i]);
  const at = line === -1 ? exp.length : line;
  const e = exp[at];
  const g = got[at];
  const show = (l: string | undefined) =>
    l === undefined ? 'end of output' : JSON.stringify(truncate(l, 120));
  return `Wrong output at line ${at + 1}: expected ${show(e)}, received ${show(g)}.`;
}

const HIDDEN_MESSAGES: Record<RawOutcome['kind'] | 'wrong', string> = {
  value: 'Wrong answer.',
  stdout: 'Wrong output.',
  wrong: 'Wrong answer.',
  raised: 'The code raised an exception.',
  timeout: 'Time limit exceeded.',
  memory: 'Memory limit exceeded.',
  crashed: 'The program crashed.',
};

/** Judges one raw observation against its test, on the host: the sandbox never saw `expected`. */
export function judge(test: ExerciseTest, outcome: RawOutcome, limits: ExerciseLimits): TestResult {
  const base = { name: test.name, hidden: test.hidden, durationMs: Math.round(outcome.durationMs) };
  const fail = (kind: keyof typeof HIDDEN_MESSAGES, visible: string): TestResult => ({
    ...base,
    passed: false,
    message: test.hidden ? HIDDEN_MESSAGES[kind] : visible,
  });
  switch (outcome.kind) {
    case 'timeout':
      return fail('timeout', `Time limit exceeded (${limits.timeMs} ms).`);
    case 'memory':
      return fail('memory', `Memory limit exceeded (${limits.memoryMb} MB).`);
    case 'crashed':
      return fail('crashed', `The program crashed: ${truncate(outcome.detail)}`);
    case 'raised':
      return fail('raised', truncate(outcome.error, 500));
    case 'value': {
      if (test.kind !== 'call') return fail('crashed', 'The sandbox answered a different kind of test.');
      let received: unknown;
      let shown: string;
      if (outcome.json === null) {
        received = undefined;
        shown = 'undefined (no JSON value)';
      } else {
        try {
          received = JSON.parse(outcome.json);
          shown = showJson(received);
        } catch {
          return fail('crashed', 'The return value could not be read.');
        }
      }
      if (received !== undefined && jsonEqual(received, test.expected))
        return { ...base, passed: true, message: null };
      return fail('value', `Expected ${showJson(test.expected)}, received ${shown}.`);
    }
    case 'stdout': {
      if (test.kind !== 'io') return fail('crashed', 'The sandbox answered a different kind of test.');
      const expected = normaliseOutput(test.stdout);
      const received = normaliseOutput(outcome.stdout);
      if (!outcome.truncated && expected === received) return { ...base, passed: true, message: null };
      if (outcome.truncated) return fail('stdout', 'Output limit exceeded (1,000,000 characters).');
      return fail('stdout', describeOutputDifference(expected, received));
    }
  }
}

/** maxScore × passed / total, rounded to 2 decimals. */
export function scoreOf(maxScore: number, passed: number, total: number): number {
  if (total === 0) return 0;
  return Math.round(((maxScore * passed) / total) * 100 + 1e-9) / 100;
}
