import type { Static } from '@sinclair/typebox';
import type { Node } from 'jsonc-parser';
import type { ExerciseTest } from '../../db/schema/index.ts';
import { duplicateKey, minifyJson, parseExact, RawJson, rawValueAt } from '../../lib/json-text.ts';
import type { ErrorDetail } from '../../shared/errors.ts';
import type { TestBody } from './exercise.schemas.ts';

type TestInput = Static<typeof TestBody>;

/**
 * Where a `tests` array sits in the request body as sent, so that each test's `args` and `expected`
 * are taken as the text the instructor wrote (key order and big integers kept), not as the values
 * JSON.parse made of them.
 */
export interface TestsSource {
  root: Node;
  text: string;
  path: Array<string | number>;
}

export function testsSource(rawBody: string | undefined, path: Array<string | number>): TestsSource | null {
  if (rawBody === undefined) return null;
  try {
    return { root: parseExact(rawBody), text: rawBody, path };
  } catch {
    return null;
  }
}

const has = (o: object, key: string) => Object.hasOwn(o, key);

/** The JSON text of a test's `args` or `expected`: as written in the body when known. */
function jsonText(
  source: TestsSource | null,
  index: number,
  field: 'args' | 'expected',
  value: unknown,
): string {
  const raw = source ? rawValueAt(source.root, source.text, [...source.path, index, field]) : undefined;
  return raw ?? minifyJson(JSON.stringify(value ?? null));
}

/** Checks the kind-specific fields of each test and fills defaults; every problem is reported at once. */
export function normaliseTests(
  tests: TestInput[],
  source: TestsSource | null,
  details: ErrorDetail[],
  prefix = 'tests',
): ExerciseTest[] {
  const seen = new Set<string>();
  return tests.map((t, i) => {
    const reject = (f: string, message: string) => details.push({ field: `${prefix}.${i}.${f}`, message });
    if (seen.has(t.name)) reject('name', 'must be unique within the exercise');
    seen.add(t.name);
    const hidden = t.hidden ?? false;
    const points = t.points ?? 1;
    if (t.kind === 'call') {
      if (!Array.isArray(t.args)) reject('args', 'is required for a call test (an array of arguments)');
      if (!has(t, 'expected')) reject('expected', 'is required for a call test');
      for (const f of ['stdin', 'stdout']) if (has(t, f)) reject(f, 'is only accepted for an io test');
      const argsJson = jsonText(source, i, 'args', t.args ?? []);
      const expectedJson = jsonText(source, i, 'expected', t.expected);
      for (const [field, text] of [
        ['args', argsJson],
        ['expected', expectedJson],
      ] as const) {
        const dup = duplicateKey(parseExact(text));
        if (dup) reject(`${field}.${dup}`, 'is a key written twice in one object');
      }
      return {
        name: t.name,
        kind: 'call',
        argsJson,
        expectedJson,
        hidden,
        points,
        tolerance: t.tolerance ?? 0,
      };
    }
    if (typeof t.stdout !== 'string') reject('stdout', 'is required for an io test');
    for (const f of ['args', 'expected', 'tolerance'])
      if (has(t, f)) reject(f, 'is only accepted for a call test');
    return { name: t.name, kind: 'io', stdin: t.stdin ?? '', stdout: t.stdout ?? '', hidden, points };
  });
}

/** A test as the API shows it: `args` and `expected` embedded as written (see stringifyWithRaw). */
export function presentTest(t: ExerciseTest) {
  if (t.kind === 'io')
    return {
      name: t.name,
      kind: t.kind,
      stdin: t.stdin,
      stdout: t.stdout,
      hidden: t.hidden,
      points: t.points,
    };
  return {
    name: t.name,
    kind: t.kind,
    args: new RawJson(t.argsJson),
    expected: new RawJson(t.expectedJson),
    hidden: t.hidden,
    points: t.points,
    tolerance: t.tolerance,
  };
}
