import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { closeSandboxes, configureSandboxes, grade, sandboxStatus } from './grade.ts';
import type { ExerciseTest, GradeRequest } from './grading.types.ts';
import { PythonSandbox } from './python/py-sandbox.ts';

afterAll(closeSandboxes);

const limits = { timeMs: 500, memoryMb: 64 };

function req(
  language: GradeRequest['language'],
  code: string,
  tests: ExerciseTest[],
  maxScore = 10,
): GradeRequest {
  return { language, code, entrypoint: 'add', tests, limits, maxScore };
}

const addTests: ExerciseTest[] = [
  { name: 'small', kind: 'call', args: [1, 2], expected: 3, hidden: false },
  { name: 'negative', kind: 'call', args: [-5, 2], expected: -3, hidden: false },
  { name: 'hidden big', kind: 'call', args: [1e6, 1], expected: 1000001, hidden: true },
];
const echoTests: ExerciseTest[] = [
  { name: 'echo', kind: 'io', stdin: 'hello\nworld\n', stdout: 'HELLO\nWORLD\n', hidden: false },
  { name: 'empty', kind: 'io', stdin: '', stdout: '', hidden: true },
];

const programs = {
  javascript: {
    add: 'function add(a, b) { return a + b; }',
    wrongAdd: 'function add(a, b) { return a - b; }',
    echo: 'let l; while ((l = readLine()) !== null) console.log(l.toUpperCase() + "   ");',
    syntax: 'function add(a, b) { return a +; }',
    throwsAtLoad: 'throw new Error("boom");\nfunction add(a, b) { return a + b; }',
    structured:
      'function add(o, list) { return { keys: Object.keys(o).sort(), total: list.reduce((s, x) => s + x, 0), none: null, t: true }; }',
  },
  python: {
    add: 'def add(a, b):\n    return a + b\n',
    wrongAdd: 'def add(a, b):\n    return a - b\n',
    echo: 'import sys\nfor line in sys.stdin:\n    print(line.rstrip("\\n").upper() + "   ")\n',
    syntax: 'def add(a, b)\n    return a +\n',
    throwsAtLoad: 'raise RuntimeError("boom")\ndef add(a, b):\n    return a + b\n',
    structured:
      'def add(o, lst):\n    return {"keys": sorted(o.keys()), "total": sum(lst), "none": None, "t": True}\n',
  },
};

describe.each(['javascript', 'python'] as const)('grade (%s)', (language) => {
  const p = programs[language];

  it('passes a correct call submission', async () => {
    const out = await grade(req(language, p.add, addTests));
    expect(out).toMatchObject({ status: 'passed', score: 10, message: null, infrastructure: false });
    expect(out.results.map((r) => [r.name, r.passed, r.hidden, r.message])).toEqual([
      ['small', true, false, null],
      ['negative', true, false, null],
      ['hidden big', true, true, null],
    ]);
    for (const r of out.results) expect(r.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('fails wrong answers, explains visible tests and keeps hidden ones generic', async () => {
    const out = await grade(req(language, p.wrongAdd, addTests));
    expect(out.status).toBe('failed');
    expect(out.score).toBe(0);
    expect(out.results[0]!.message).toBe('Expected 3, received -1.');
    expect(out.results[2]!.message).toBe('Wrong answer.');
  });

  it('rounds partial scores to 2 decimals', async () => {
    const tests: ExerciseTest[] = [
      { name: 'a', kind: 'call', args: [1, 1], expected: 2, hidden: false },
      { name: 'b', kind: 'call', args: [1, 1], expected: 3, hidden: false },
      { name: 'c', kind: 'call', args: [1, 1], expected: 4, hidden: false },
    ];
    const out = await grade(req(language, p.add, tests, 10));
    expect(out).toMatchObject({ status: 'failed', score: 3.33, message: '1 of 3 tests passed.' });
  });

  it('compares deep JSON values', async () => {
    const tests: ExerciseTest[] = [
      {
        name: 'deep',
        kind: 'call',
        args: [{ b: 1, a: 2 }, [1, 2, 3]],
        expected: { t: true, none: null, total: 6, keys: ['a', 'b'] },
        hidden: false,
      },
    ];
    expect((await grade(req(language, p.structured, tests))).status).toBe('passed');
  });

  it('runs io tests ignoring trailing whitespace', async () => {
    const out = await grade(req(language, p.echo, echoTests));
    expect(out.status).toBe('passed');
    const wrong = await grade(
      req(language, p.echo, [{ name: 'x', kind: 'io', stdin: 'a\n', stdout: 'B\n', hidden: false }]),
    );
    expect(wrong.results[0]!.message).toBe('Wrong output at line 1: expected "B", received "A".');
  });

  it('lets a program use most of its memory limit', async () => {
    const code =
      language === 'javascript'
        ? 'function add(a, b) { const buf = new Uint8Array(20 * 1024 * 1024); buf.fill(1); return buf[5] + a + b; }'
        : 'def add(a, b):\n    buf = bytearray(20 * 1024 * 1024)\n    return len([1] * 1000000) // 1000000 + a + b\n';
    const out = await grade({
      ...req(language, code, [addTests[0]!]),
      limits: { timeMs: 2000, memoryMb: 32 },
    });
    // 1 + a + b: it ran to the end with 20 MB allocated.
    expect(out.results[0]!.message).toBe('Expected 3, received 4.');
  });

  it('is an error when loading the program exceeds the time limit, even inside a builtin', async () => {
    const code =
      language === 'javascript'
        ? 'Array(2 ** 32 - 1).indexOf(1);\nfunction add(a, b) { return a + b; }'
        : 'while True:\n    try:\n        while True: pass\n    except BaseException: pass\n';
    const out = await grade({ ...req(language, code, addTests), limits: { timeMs: 200, memoryMb: 32 } });
    expect(out).toMatchObject({ status: 'error', infrastructure: false, score: 0 });
    expect(out.message).toBe('Loading the program took longer than the time limit (200 ms).');
    expect((await grade(req(language, p.add, addTests))).status).toBe('passed');
  });

  it('gives error status for a syntax error and for an exception while loading', async () => {
    const syntax = await grade(req(language, p.syntax, addTests));
    expect(syntax).toMatchObject({ status: 'error', score: 0, infrastructure: false, results: [] });
    expect(syntax.message).toMatch(/SyntaxError/);
    const load = await grade(req(language, p.throwsAtLoad, addTests));
    expect(load).toMatchObject({ status: 'error', score: 0, infrastructure: false });
    expect(load.message).toMatch(/while loading.*boom/);
  });

  it("is an error, score 0, when a call test's entrypoint is missing or not a function", async () => {
    const missing =
      language === 'javascript'
        ? 'function plus(a, b) { return a + b; }'
        : 'def plus(a, b):\n    return a + b\n';
    const out = await grade(req(language, missing, [...addTests, ...echoTests]));
    expect(out).toMatchObject({
      status: 'error',
      score: 0,
      message: 'entrypoint `add` is not defined',
      results: [],
      infrastructure: false,
    });
    const notFn = language === 'javascript' ? 'var add = 3;' : 'add = 3\n';
    const wrong = await grade(req(language, notFn, addTests));
    expect(wrong).toMatchObject({ status: 'error', score: 0, infrastructure: false });
    expect(wrong.message).toMatch(/^entrypoint `add` is not a function \(it is an? (number|int)\)$/);
    // io-only exercises need no entrypoint.
    expect((await grade({ ...req(language, p.echo, echoTests), entrypoint: null })).status).toBe('passed');
  });

  it('runs visible tests before hidden ones, so state cannot carry hidden inputs into visible messages', async () => {
    const remember =
      language === 'javascript'
        ? 'const seen = []; function add(a, b) { seen.push(a); return seen; }'
        : 'seen = []\ndef add(a, b):\n    seen.append(a)\n    return seen\n';
    const tests: ExerciseTest[] = [
      { name: 'secret', kind: 'call', args: [424242, 0], expected: 0, hidden: true },
      { name: 'shown', kind: 'call', args: [1, 2], expected: 3, hidden: false },
    ];
    const out = await grade(req(language, remember, tests));
    expect(out.results.map((r) => r.name)).toEqual(['secret', 'shown']);
    const shown = out.results[1]!;
    expect(shown.passed).toBe(false);
    expect(shown.message).toContain('[1]');
    expect(shown.message).not.toContain('424242');
  });
});

describe('python specifics', () => {
  it('imports for call tests and runs as __main__ for io tests', async () => {
    const code =
      'def add(a, b):\n    return __name__\nif __name__ == "__main__":\n    print(input(), __name__)\n';
    const out = await grade({
      ...req('python', code, [
        { name: 'call', kind: 'call', args: [1, 2], expected: 'submission', hidden: false },
        { name: 'io', kind: 'io', stdin: 'hi\n', stdout: 'hi __main__\n', hidden: false },
      ]),
    });
    expect(out.results.map((r) => r.message)).toEqual([null, null]);
  });

  it('ends a program early with exit()', async () => {
    const code = 'print("before")\nexit()\nprint("after")\n';
    const out = await grade(
      req('python', code, [{ name: 'x', kind: 'io', stdin: '', stdout: 'before\n', hidden: false }]),
    );
    expect(out.status).toBe('passed');
  });

  it('turns tuples into lists and refuses values with no JSON form', async () => {
    const code = 'def add(a, b):\n    return (a, b) if a else {1, 2}\n';
    const out = await grade(
      req('python', code, [
        { name: 'tuple', kind: 'call', args: [1, 2], expected: [1, 2], hidden: false },
        { name: 'set', kind: 'call', args: [0, 2], expected: [1, 2], hidden: false },
      ]),
    );
    expect(out.results[0]!.passed).toBe(true);
    expect(out.results[1]!.message).toMatch(/ValueError: the return value is a set/);
  });

  it('is an infrastructure error naming the package when bubblewrap is missing', async () => {
    const sandbox = new PythonSandbox({ bwrap: '/nonexistent/bwrap' });
    const run = await sandbox.run({
      code: '',
      entrypoint: null,
      tests: [{ kind: 'io', stdin: '' }],
      timeMs: 100,
      memoryMb: 16,
    });
    expect(run).toMatchObject({ kind: 'error', infrastructure: true });
    expect(run.kind === 'error' && run.message).toMatch(/apt-get install bubblewrap/);

    await configureSandboxes({ bwrap: '/nonexistent/bwrap' });
    try {
      const out = await grade(req('python', programs.python.add, addTests));
      expect(out).toMatchObject({ status: 'error', score: 0, infrastructure: true });
      const status = await sandboxStatus();
      expect(status.python.ok).toBe(false);
      expect(status.python.detail).toMatch(/bubblewrap/);
    } finally {
      await configureSandboxes({ bwrap: undefined });
    }
  });

  it('is an infrastructure error when the sandbox cannot start', async () => {
    const sandbox = new PythonSandbox({ bwrap: '/bin/false' });
    const run = await sandbox.run({
      code: '',
      entrypoint: null,
      tests: [{ kind: 'io', stdin: '' }],
      timeMs: 100,
      memoryMb: 16,
    });
    expect(run).toMatchObject({
      kind: 'error',
      infrastructure: true,
      message: expect.stringMatching(/could not start/),
    });
    const noPython = new PythonSandbox({ python: '/nonexistent/python3' });
    expect(noPython.unavailable()).toMatch(/apt-get install python3/);
  });
});

describe('sandboxStatus', () => {
  it('reports both sandboxes working', async () => {
    const status = await sandboxStatus();
    expect(status.javascript).toMatchObject({ ok: true });
    expect(status.python).toMatchObject({ ok: true });
  });
});

/** CPU seconds used by this process (all threads) and by its waited-for children (sandboxes). */
function cpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  // Fields 14-17 of stat(5) (utime, stime, cutime, cstime), here at offsets 11-14, in clock ticks.
  return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0) / 100;
}

describe('throughput (measured, not asserted)', () => {
  it('grades a 3-test exercise repeatedly', async () => {
    const figures: Record<string, string> = {};
    for (const [language, count] of [
      ['javascript', 400],
      ['python', 40],
    ] as const) {
      const r = req(language, programs[language].add, addTests);
      await grade(r); // warm
      const started = performance.now();
      const cpuBefore = cpuSeconds();
      let passed = 0;
      // Concurrency 2 = the machine's cores.
      const lane = async (n: number) => {
        for (let i = 0; i < n; i++) if ((await grade(r)).status === 'passed') passed++;
      };
      await Promise.all([lane(count / 2), lane(count / 2)]);
      const seconds = (performance.now() - started) / 1000;
      const cpu = cpuSeconds() - cpuBefore;
      figures[language] =
        `${(count / seconds).toFixed(0)} submissions/s wall (${count} in ${seconds.toFixed(2)} s, 2 lanes); ` +
        `${((cpu * 1000) / count).toFixed(1)} ms CPU each = ${(count / cpu).toFixed(0)} submissions/s per core`;
      expect(passed).toBe(count);
    }
    console.log('[grading throughput]', figures);
  });
});
