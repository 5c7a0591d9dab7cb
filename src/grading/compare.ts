import { exactEqual, minifyJson, parseExact } from '../lib/json-text.ts';
import type { ExerciseLimits, ExerciseTest, TestResult } from './grading.types.ts';
import { MAX_SHOWN_OUTPUT, type Printed, type RawOutcome } from './sandbox.types.ts';

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

function describeOutputDifference(expected: string, received: string): string {
  const exp = expected.split('\n');
  const got = received.split('\n');
  const line = exp.findIndex((l, i) => l !== got[i]);
  const at = line === -1 ? exp.length : line;
  const show = (l: string | undefined) =>
    l === undefined ? 'end of output' : JSON.stringify(truncate(l, 120));
  return `Wrong output at line ${at + 1}: expected ${show(exp[at])}, received ${show(got[at])}.`;
}

export const NOT_RUN_AFTER_TIMEOUT = 'Not run: an earlier test exceeded the time limit';

/** A test's printed output as a result shows it: at most MAX_SHOWN_OUTPUT characters, then a marker. */
export function shownOutput(printed: Printed | string | undefined): string | null {
  if (printed === undefined) return null;
  const { text, size } = typeof printed === 'string' ? { text: printed, size: printed.length } : printed;
  if (size <= MAX_SHOWN_OUTPUT) return text;
  return `${text.slice(0, MAX_SHOWN_OUTPUT)}\n… [output truncated: ${size - MAX_SHOWN_OUTPUT} more characters]`;
}

function printedOf(outcome: RawOutcome): string | null {
  switch (outcome.kind) {
    case 'stdout':
      return shownOutput(outcome.stdout);
    case 'value':
    case 'raised':
    case 'memory':
      return shownOutput(outcome.printed);
    default:
      return null;
  }
}

/**
 * Judges one raw observation against its test, on the host: the sandbox never saw `expected`.
 * `message` is what staff see; for hidden tests the presenter shows students none (API.md), and the
 * stored message of a hidden test is the full one, so staff can tell why it failed.
 */
export function judge(
  test: ExerciseTest,
  outcome: RawOutcome,
  limits: ExerciseLimits & { totalMs: number },
  language: 'javascript' | 'python',
): TestResult {
  const base = {
    name: test.name,
    hidden: test.hidden,
    points: test.points,
    durationMs: outcome.kind === 'skipped' ? 0 : Math.round(outcome.durationMs),
    output: printedOf(outcome),
  };
  const fail = (message: string): TestResult => ({ ...base, passed: false, message });
  switch (outcome.kind) {
    case 'skipped':
      return fail(
        outcome.reason === 'timeout'
          ? NOT_RUN_AFTER_TIMEOUT
          : `Not run: the submission used up its total grading time (${limits.totalMs / 1000} s)`,
      );
    case 'timeout':
      return fail(`Time limit exceeded (${limits.timeMs} ms).`);
    case 'memory':
      return fail(`Memory limit exceeded (${limits.memoryMb} MB).`);
    case 'crashed':
      return fail(`The program crashed: ${truncate(outcome.detail)}`);
    case 'raised':
      return fail(truncate(outcome.error, 500));
    case 'value': {
      if (test.kind !== 'call') return fail('The sandbox answered a different kind of test.');
      if (outcome.json === null)
        return fail(`Expected ${truncate(test.expectedJson)}, received undefined (no JSON value).`);
      let same: boolean;
      let received: string;
      try {
        received = minifyJson(outcome.json);
        same = exactEqual(parseExact(test.expectedJson), test.expectedJson, parseExact(received), received, {
          tolerance: test.tolerance,
          integers: language === 'python' ? 'exact' : 'double',
        });
      } catch {
        return fail('The return value could not be read.');
      }
      if (same) return { ...base, passed: true, message: null };
      return fail(`Expected ${truncate(test.expectedJson)}, received ${truncate(received)}.`);
    }
    case 'stdout': {
      if (test.kind !== 'io') return fail('The sandbox answered a different kind of test.');
      const expected = normaliseOutput(test.stdout);
      const received = normaliseOutput(outcome.stdout);
      if (!outcome.truncated && expected === received) return { ...base, passed: true, message: null };
      if (outcome.truncated) return fail('Output limit exceeded (1,000,000 characters).');
      return fail(describeOutputDifference(expected, received));
    }
  }
}

/** maxScore × points passed / points in all, rounded to 2 decimals. */
export function scoreOf(
  maxScore: number,
  results: ReadonlyArray<{ passed: boolean; points: number }>,
): number {
  const total = results.reduce((s, r) => s + r.points, 0);
  if (total === 0) return 0;
  const passed = results.reduce((s, r) => s + (r.passed ? r.points : 0), 0);
  return Math.round(((maxScore * passed) / total) * 100 + 1e-9) / 100;
}
