import { describe, expect, it } from 'vitest';
import { jsonEqual, judge, normaliseOutput, scoreOf, truncate } from './compare.ts';
import type { ExerciseTest } from './grading.types.ts';
import { toSandboxJob } from './sandbox.types.ts';

const limits = { timeMs: 500, memoryMb: 64 };
const call = (expected: unknown, hidden = false): ExerciseTest => ({
  name: 't',
  kind: 'call',
  args: [],
  expected,
  hidden,
});
const io = (stdout: string, hidden = false): ExerciseTest => ({
  name: 't',
  kind: 'io',
  stdin: '',
  stdout,
  hidden,
});

describe('jsonEqual', () => {
  it('compares JSON values deeply, ignoring key order only', () => {
    expect(jsonEqual({ a: [1, { b: null }], c: 'x' }, { c: 'x', a: [1, { b: null }] })).toBe(true);
    expect(jsonEqual([1, 2], [2, 1])).toBe(false);
    expect(jsonEqual(true, 1)).toBe(false);
    expect(jsonEqual(null, {})).toBe(false);
    expect(jsonEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(jsonEqual({ a: undefined }, { b: undefined })).toBe(false);
    expect(jsonEqual([], {})).toBe(false);
    expect(jsonEqual(3, 3.0)).toBe(true);
    expect(jsonEqual('3', 3)).toBe(false);
  });
});

describe('normaliseOutput', () => {
  it('ignores trailing whitespace per line and trailing empty lines', () => {
    expect(normaliseOutput('a  \r\nb\t\n\n\n')).toBe('a\nb');
    expect(normaliseOutput('  a')).toBe('  a');
  });
});

describe('scoreOf', () => {
  it('rounds to 2 decimals', () => {
    expect(scoreOf(10, 2, 3)).toBe(6.67);
    expect(scoreOf(10, 1, 3)).toBe(3.33);
    expect(scoreOf(1.005, 1, 1)).toBe(1.01);
    expect(scoreOf(7, 3, 3)).toBe(7);
    expect(scoreOf(5, 0, 0)).toBe(0);
  });
});

describe('judge', () => {
  it('passes equal values and explains differences on visible tests', () => {
    expect(judge(call([1, 2]), { kind: 'value', json: '[1,2]', durationMs: 1.4 }, limits)).toEqual({
      name: 't',
      hidden: false,
      passed: true,
      message: null,
      durationMs: 1,
    });
    expect(judge(call(3), { kind: 'value', json: '4', durationMs: 0 }, limits).message).toBe(
      'Expected 3, received 4.',
    );
    expect(judge(call(3), { kind: 'value', json: null, durationMs: 0 }, limits).message).toMatch(/undefined/);
    expect(judge(call(null), { kind: 'value', json: null, durationMs: 0 }, limits).passed).toBe(false);
    expect(judge(call(3), { kind: 'value', json: '{bad', durationMs: 0 }, limits).passed).toBe(false);
    expect(
      judge(call(3), { kind: 'stdout', stdout: '3', truncated: false, durationMs: 0 }, limits).passed,
    ).toBe(false);
  });

  it('truncates long values', () => {
    const long = 'x'.repeat(1000);
    const msg = judge(call('y'), { kind: 'value', json: JSON.stringify(long), durationMs: 0 }, limits)
      .message!;
    expect(msg.length).toBeLessThan(320);
    expect(msg).toContain('more characters');
    expect(truncate('abc', 5)).toBe('abc');
  });

  it('compares output and names the first differing line', () => {
    const ok = judge(
      io('a\nb\n'),
      { kind: 'stdout', stdout: 'a  \nb', truncated: false, durationMs: 0 },
      limits,
    );
    expect(ok.passed).toBe(true);
    const bad = judge(
      io('a\nb\n'),
      { kind: 'stdout', stdout: 'a\nc\n', truncated: false, durationMs: 0 },
      limits,
    );
    expect(bad.message).toBe('Wrong output at line 2: expected "b", received "c".');
    const short = judge(io('a\nb'), { kind: 'stdout', stdout: 'a', truncated: false, durationMs: 0 }, limits);
    expect(short.message).toBe('Wrong output at line 2: expected "b", received end of output.');
    const flood = judge(io('a'), { kind: 'stdout', stdout: 'a', truncated: true, durationMs: 0 }, limits);
    expect(flood.message).toMatch(/Output limit/);
    expect(judge(io('a'), { kind: 'value', json: '1', durationMs: 0 }, limits).passed).toBe(false);
  });

  it('reports limits and exceptions, generically for hidden tests', () => {
    const cases = [
      [{ kind: 'timeout', durationMs: 500 }, 'Time limit exceeded (500 ms).', 'Time limit exceeded.'],
      [{ kind: 'memory', durationMs: 1 }, 'Memory limit exceeded (64 MB).', 'Memory limit exceeded.'],
      [
        { kind: 'crashed', detail: 'boom', durationMs: 1 },
        'The program crashed: boom',
        'The program crashed.',
      ],
      [
        { kind: 'raised', error: 'ValueError: no', durationMs: 1 },
        'ValueError: no',
        'The code raised an exception.',
      ],
    ] as const;
    for (const [outcome, visible, hidden] of cases) {
      expect(judge(call(1), outcome, limits).message).toBe(visible);
      expect(judge(call(1, true), outcome, limits).message).toBe(hidden);
    }
    expect(judge(call(1, true), { kind: 'value', json: '2', durationMs: 0 }, limits).message).toBe(
      'Wrong answer.',
    );
    expect(
      judge(io('1', true), { kind: 'stdout', stdout: '2', truncated: false, durationMs: 0 }, limits).message,
    ).toBe('Wrong output.');
  });
});

describe('toSandboxJob', () => {
  it('never copies expected values or expected output', () => {
    const job = toSandboxJob({
      code: 'x',
      entrypoint: 'f',
      tests: [
        { name: 'a', kind: 'call', args: [1], expected: 'SECRET', hidden: true } as never,
        { name: 'b', kind: 'io', stdin: 'in', stdout: 'SECRET', hidden: true } as never,
      ],
      limits,
    });
    expect(JSON.stringify(job)).not.toContain('SECRET');
    expect(job.tests).toEqual([
      { kind: 'call', args: [1] },
      { kind: 'io', stdin: 'in' },
    ]);
  });
});
