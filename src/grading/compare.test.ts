import { describe, expect, it } from 'vitest';
import { callTest, ioTest } from '../../test/grading.ts';
import { exactEqual, parseExact } from '../lib/json-text.ts';
import { judge, NOT_RUN_AFTER_TIMEOUT, normaliseOutput, scoreOf, shownOutput, truncate } from './compare.ts';

const limits = { timeMs: 500, memoryMb: 64, totalMs: 30_000 };
const call = (expected: unknown, hidden = false) => callTest('t', [], expected, { hidden });
const io = (stdout: string, hidden = false) => ioTest('t', '', stdout, { hidden });
const judgePy = (test: Parameters<typeof judge>[0], outcome: Parameters<typeof judge>[1]) =>
  judge(test, outcome, limits, 'python');

function equal(expected: string, received: string, tolerance = 0, integers: 'exact' | 'double' = 'exact') {
  return exactEqual(parseExact(expected), expected, parseExact(received), received, { tolerance, integers });
}

describe('exactEqual', () => {
  it('compares JSON values deeply, ignoring key order only', () => {
    expect(equal('{"a":[1,{"b":null}],"c":"x"}', '{"c":"x","a":[1,{"b":null}]}')).toBe(true);
    expect(equal('[1,2]', '[2,1]')).toBe(false);
    expect(equal('true', '1')).toBe(false);
    expect(equal('null', '{}')).toBe(false);
    expect(equal('{"a":1}', '{"a":1,"b":2}')).toBe(false);
    expect(equal('[]', '{}')).toBe(false);
    expect(equal('"3"', '3')).toBe(false);
    expect(equal('"a\\u00e9"', '"aé"')).toBe(true);
  });

  it('compares integers exactly, whatever their size (issue 9: 2**64 + 1 passed as 2**64)', () => {
    expect(equal('18446744073709551616', '18446744073709551617')).toBe(false);
    expect(equal('18446744073709551616', '18446744073709551616')).toBe(true);
    expect(equal('[123456789012345678901234567890]', '[123456789012345678901234567891]')).toBe(false);
    // In JavaScript every number is a double: 2**64 + 1 cannot be written, 2**64 is what it returns.
    expect(equal('18446744073709551616', '18446744073709552000', 0, 'double')).toBe(true);
  });

  it('compares other numbers by value, within a tolerance relative to the expected value', () => {
    expect(equal('3', '3.0')).toBe(true);
    expect(equal('0.3', '0.30000000000000004')).toBe(false);
    expect(equal('0.3', '0.30000000000000004', 1e-9)).toBe(true);
    expect(equal('1000', '1000.5', 1e-3)).toBe(true);
    expect(equal('1000', '1002', 1e-3)).toBe(false);
    expect(equal('[0.1,{"x":2e-1}]', '[0.1000001,{"x":0.2000001}]', 1e-5)).toBe(true);
    expect(equal('0', '0.0000001', 1e-6)).toBe(true);
  });
});

describe('normaliseOutput', () => {
  it('ignores trailing whitespace per line and trailing empty lines', () => {
    expect(normaliseOutput('a  \r\nb\t\n\n\n')).toBe('a\nb');
    expect(normaliseOutput('  a')).toBe('  a');
  });
});

describe('scoreOf', () => {
  const results = (...passed: Array<[boolean, number]>) =>
    passed.map(([p, points]) => ({ passed: p, points }));
  it('weights by points and rounds to 2 decimals', () => {
    expect(scoreOf(10, results([true, 1], [true, 1], [false, 1]))).toBe(6.67);
    expect(scoreOf(10, results([true, 1], [false, 1], [false, 1]))).toBe(3.33);
    expect(scoreOf(1.005, results([true, 1]))).toBe(1.01);
    expect(scoreOf(10, results([true, 3], [false, 1]))).toBe(7.5);
    expect(scoreOf(5, [])).toBe(0);
  });
});

describe('shownOutput', () => {
  it('keeps 4 kB of what a test printed and marks the rest', () => {
    expect(shownOutput(undefined)).toBeNull();
    expect(shownOutput('hi\n')).toBe('hi\n');
    const shown = shownOutput({ text: 'x'.repeat(4096), size: 10_000 })!;
    expect(shown.startsWith('x'.repeat(4096))).toBe(true);
    expect(shown).toMatch(/\[output truncated: 5904 more characters\]$/);
  });
});

describe('judge', () => {
  it('passes equal values and explains differences, for hidden tests too (staff read them)', () => {
    expect(judgePy(call([1, 2]), { kind: 'value', json: '[1, 2]', durationMs: 1.4 })).toEqual({
      name: 't',
      hidden: false,
      passed: true,
      message: null,
      durationMs: 1,
      output: null,
      points: 1,
    });
    expect(judgePy(call(3), { kind: 'value', json: '4', durationMs: 0 }).message).toBe(
      'Expected 3, received 4.',
    );
    expect(judgePy(call(3, true), { kind: 'value', json: '4', durationMs: 0 }).message).toBe(
      'Expected 3, received 4.',
    );
    expect(judgePy(call(3), { kind: 'value', json: null, durationMs: 0 }).message).toMatch(/undefined/);
    expect(judgePy(call(null), { kind: 'value', json: null, durationMs: 0 }).passed).toBe(false);
    expect(judgePy(call(3), { kind: 'value', json: '{bad', durationMs: 0 }).message).toBe(
      'The return value could not be read.',
    );
    expect(judgePy(call(3), { kind: 'stdout', stdout: '3', truncated: false, durationMs: 0 }).passed).toBe(
      false,
    );
  });

  it('shows what a call test printed', () => {
    const r = judgePy(call(1), {
      kind: 'value',
      json: '1',
      durationMs: 0,
      printed: { text: 'debug\n', size: 6 },
    });
    expect(r).toMatchObject({ passed: true, output: 'debug\n' });
  });

  it('truncates long values', () => {
    const long = 'x'.repeat(1000);
    const msg = judgePy(call('y'), { kind: 'value', json: JSON.stringify(long), durationMs: 0 }).message!;
    expect(msg.length).toBeLessThan(320);
    expect(msg).toContain('more characters');
    expect(truncate('abc', 5)).toBe('abc');
  });

  it('compares output and names the first differing line', () => {
    const ok = judgePy(io('a\nb\n'), { kind: 'stdout', stdout: 'a  \nb', truncated: false, durationMs: 0 });
    expect(ok).toMatchObject({ passed: true, output: 'a  \nb' });
    const bad = judgePy(io('a\nb\n'), { kind: 'stdout', stdout: 'a\nc\n', truncated: false, durationMs: 0 });
    expect(bad.message).toBe('Wrong output at line 2: expected "b", received "c".');
    const short = judgePy(io('a\nb'), { kind: 'stdout', stdout: 'a', truncated: false, durationMs: 0 });
    expect(short.message).toBe('Wrong output at line 2: expected "b", received end of output.');
    const flood = judgePy(io('a'), { kind: 'stdout', stdout: 'a', truncated: true, durationMs: 0 });
    expect(flood.message).toMatch(/Output limit/);
    expect(judgePy(io('a'), { kind: 'value', json: '1', durationMs: 0 }).passed).toBe(false);
  });

  it('reports limits, exceptions and tests not run', () => {
    const cases = [
      [{ kind: 'timeout', durationMs: 500 }, 'Time limit exceeded (500 ms).'],
      [{ kind: 'memory', durationMs: 1 }, 'Memory limit exceeded (64 MB).'],
      [{ kind: 'crashed', detail: 'boom', durationMs: 1 }, 'The program crashed: boom'],
      [{ kind: 'raised', error: 'ValueError: no', durationMs: 1 }, 'ValueError: no'],
      [{ kind: 'skipped', reason: 'timeout' }, NOT_RUN_AFTER_TIMEOUT],
      [{ kind: 'skipped', reason: 'total' }, 'Not run: the submission used up its total grading time (30 s)'],
    ] as const;
    for (const [outcome, message] of cases) expect(judgePy(call(1), outcome).message).toBe(message);
    expect(judgePy(call(1), { kind: 'skipped', reason: 'timeout' }).durationMs).toBe(0);
  });
});
