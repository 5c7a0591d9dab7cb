import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import {
  callTest,
  closeTestSandboxes,
  gradeInTest as grade,
  ioTest,
  testSandboxes,
} from '../../test/grading.ts';
import type { ExerciseTest, GradeRequest } from './grading.types.ts';
import { PythonSandbox } from './python/py-sandbox.ts';
import { sandboxStatus } from './sandboxes.ts';

afterAll(closeTestSandboxes);

const limits = { timeMs: 500, memoryMb: 64 };

function req(
  language: GradeRequest['language'],
  code: string,
  tests: ExerciseTest[],
  maxScore = 10,
): Omit<GradeRequest, 'totalMs'> {
  return { language, code, entrypoint: 'add', tests, limits, maxScore };
}

const ioJob = {
  code: '',
  entrypoint: null,
  tests: [{ kind: 'io' as const, stdin: '' }],
  timeMs: 100,
  memoryMb: 16,
  totalMs: 5000,
};

const addTests: ExerciseTest[] = [
  callTest('small', [1, 2], 3),
  callTest('negative', [-5, 2], -3),
  callTest('hidden big', [1e6, 1], 1000001, { hidden: true }),
];
const echoTests: ExerciseTest[] = [
  ioTest('echo', 'hello\nworld\n', 'HELLO\nWORLD\n'),
  ioTest('empty', '', '', { hidden: true }),
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

  it('fails wrong answers and explains every test (students see no hidden message: the presenter masks it)', async () => {
    const out = await grade(req(language, p.wrongAdd, addTests));
    expect(out.status).toBe('failed');
    expect(out.score).toBe(0);
    expect(out.results[0]!.message).toBe('Expected 3, received -1.');
    expect(out.results[2]!.message).toBe('Expected 1000001, received 999999.');
  });

  it('stops at the first test that exceeds its time limit: one time limit, not one per test', async () => {
    const code =
      language === 'javascript'
        ? 'function add(a, b) { if (a === 2) for (;;); return a + b; }'
        : 'def add(a, b):\n    while a == 2:\n        pass\n    return a + b\n';
    const tests = [
      callTest('first', [1, 1], 2),
      callTest('loops', [2, 2], 4),
      ...Array.from({ length: 8 }, (_, i) => callTest(`after ${i}`, [2, 2], 4)),
    ];
    const started = performance.now();
    const out = await grade({ ...req(language, code, tests), limits: { timeMs: 300, memoryMb: 32 } });
    expect(performance.now() - started).toBeLessThan(2500);
    expect(out.status).toBe('failed');
    expect(out.results.map((r) => [r.passed, r.message])).toEqual([
      [true, null],
      [false, 'Time limit exceeded (300 ms).'],
      ...Array.from({ length: 8 }, () => [false, 'Not run: an earlier test exceeded the time limit']),
    ]);
    expect(out.score).toBe(1);
  });

  it("stops at the submission's total grading time, whatever tests × limits add up to", async () => {
    const code =
      language === 'javascript'
        ? 'function add(a, b) { const end = Date.now() + 200; while (Date.now() < end); return a + b; }'
        : 'import time\ndef add(a, b):\n    end = time.monotonic() + 0.2\n    while time.monotonic() < end:\n        pass\n    return a + b\n';
    const tests = Array.from({ length: 10 }, (_, i) => callTest(`t${i}`, [1, 1], 2));
    const started = performance.now();
    const out = await grade({
      ...req(language, code, tests),
      limits: { timeMs: 1000, memoryMb: 32 },
      totalMs: 700,
    });
    expect(performance.now() - started).toBeLessThan(3000);
    const passed = out.results.filter((r) => r.passed).length;
    expect(passed).toBeGreaterThanOrEqual(1);
    expect(passed).toBeLessThanOrEqual(4);
    expect(out.results.at(-1)!.message).toBe(
      'Not run: the submission used up its total grading time (0.7 s)',
    );
  });

  it('shows what each test printed, truncated at 4 kB', async () => {
    const code =
      language === 'javascript'
        ? 'function add(a, b) { console.log("adding", a, b); if (a > 5) console.log("y".repeat(10000)); return a + b; }'
        : 'def add(a, b):\n    print("adding", a, b)\n    if a > 5:\n        print("y" * 10000)\n    return a + b\n';
    const out = await grade(req(language, code, [callTest('one', [1, 2], 3), callTest('big', [9, 1], 10)]));
    expect(out.results[0]).toMatchObject({ passed: true, output: 'adding 1 2\n' });
    expect(out.results[1]!.output).toMatch(
      /^adding 9 1\ny{4085}\n… \[output truncated: 5916 more characters\]$/,
    );
    const io = await grade(req(language, p.echo, [ioTest('echo', 'hi\n', 'HI\n')]));
    expect(io.results[0]!.output).toBe('HI   \n');
  });

  it('weights tests by points and compares numbers within a tolerance', async () => {
    const out = await grade(
      req(language, p.wrongAdd, [
        callTest('heavy', [5, 0], 5, { points: 3 }),
        callTest('light', [1, 2], 3, { points: 1 }),
      ]),
    );
    expect(out).toMatchObject({ status: 'failed', score: 7.5 });
    const code =
      language === 'javascript'
        ? 'function add(a, b) { return a / b; }'
        : 'def add(a, b):\n    return a / b\n';
    const third = await grade(
      req(language, code, [
        callTest('loose', [1, 3], 0.3333, { tolerance: 1e-3 }),
        callTest('exact', [1, 3], 0.3333),
      ]),
    );
    expect(third.results.map((r) => r.passed)).toEqual([true, false]);
  });

  it('hands arguments over with their key order as written', async () => {
    const code =
      language === 'javascript'
        ? 'function add(o, b) { return Object.keys(o); }'
        : 'def add(o, b):\n    return list(o.keys())\n';
    const out = await grade(
      req(language, code, [callTest('order', { json: '[{"bb":1,"a":2},0]' }, ['bb', 'a'])]),
    );
    expect(out.results[0]).toMatchObject({ passed: true });
  });

  it('rounds partial scores to 2 decimals', async () => {
    const tests: ExerciseTest[] = [
      callTest('a', [1, 1], 2),
      callTest('b', [1, 1], 3),
      callTest('c', [1, 1], 4),
    ];
    const out = await grade(req(language, p.add, tests, 10));
    expect(out).toMatchObject({ status: 'failed', score: 3.33, message: '1 of 3 tests passed.' });
  });

  it('compares deep JSON values', async () => {
    const tests: ExerciseTest[] = [
      callTest('deep', [{ b: 1, a: 2 }, [1, 2, 3]], { t: true, none: null, total: 6, keys: ['a', 'b'] }),
    ];
    expect((await grade(req(language, p.structured, tests))).status).toBe('passed');
  });

  it('runs io tests ignoring trailing whitespace', async () => {
    const out = await grade(req(language, p.echo, echoTests));
    expect(out.status).toBe('passed');
    const wrong = await grade(req(language, p.echo, [ioTest('x', 'a\n', 'B\n')]));
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
      callTest('secret', [424242, 0], 0, { hidden: true }),
      callTest('shown', [1, 2], 3),
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
  it('compares integers exactly (big ints), and keeps key order that JSON.parse would change', async () => {
    const code = 'def add(a, b):\n    return a + b\n';
    const out = await grade(
      req('python', code, [
        callTest('2**64', { json: '[18446744073709551615,1]' }, { json: '18446744073709551616' }),
        callTest('off by one', { json: '[18446744073709551616,1]' }, { json: '18446744073709551616' }),
      ]),
    );
    expect(out.results.map((r) => [r.passed, r.message])).toEqual([
      [true, null],
      [false, 'Expected 18446744073709551616, received 18446744073709551617.'],
    ]);
    const keys = await grade(
      req('python', 'def add(o, b):\n    return list(o)\n', [
        callTest('integer-like keys', { json: '[{"b":1,"2":2,"a":3},0]' }, ['b', '2', 'a']),
      ]),
    );
    expect(keys.results[0]).toMatchObject({ passed: true });
  });

  it('imports for call tests and runs as __main__ for io tests', async () => {
    const code =
      'def add(a, b):\n    return __name__\nif __name__ == "__main__":\n    print(input(), __name__)\n';
    const out = await grade({
      ...req('python', code, [callTest('call', [1, 2], 'submission'), ioTest('io', 'hi\n', 'hi __main__\n')]),
    });
    expect(out.results.map((r) => r.message)).toEqual([null, null]);
  });

  it('ends a program early with exit()', async () => {
    const code = 'print("before")\nexit()\nprint("after")\n';
    const out = await grade(req('python', code, [ioTest('x', '', 'before\n')]));
    expect(out.status).toBe('passed');
  });

  it('turns tuples into lists and refuses values with no JSON form', async () => {
    const code = 'def add(a, b):\n    return (a, b) if a else {1, 2}\n';
    const out = await grade(
      req('python', code, [callTest('tuple', [1, 2], [1, 2]), callTest('set', [0, 2], [1, 2])]),
    );
    expect(out.results[0]!.passed).toBe(true);
    expect(out.results[1]!.message).toMatch(/ValueError: the return value is a set/);
  });

  it('is an infrastructure error naming the package when bubblewrap is missing', async () => {
    const sandbox = new PythonSandbox({ bwrap: '/nonexistent/bwrap' });
    const run = await sandbox.run(ioJob);
    expect(run).toMatchObject({ kind: 'error', infrastructure: true });
    expect(run.kind === 'error' && run.message).toMatch(/apt-get install bubblewrap/);
    expect(await sandbox.unavailable()).toMatch(/namespaces layer is missing.*apt-get install bubblewrap/);
    const layers = (await sandbox.layers()).layers;
    expect(layers.find((l) => l.name === 'namespaces')).toMatchObject({ active: false, essential: true });
    // JavaScript is unaffected.
    const js = await grade(req('javascript', programs.javascript.add, addTests));
    expect(js.status).toBe('passed');
  });

  it('refuses to grade Python without its seccomp filter (an essential layer), naming the package', async () => {
    const sandbox = new PythonSandbox({ seccompPython: '/nonexistent/python3' });
    const run = await sandbox.run(ioJob);
    expect(run).toMatchObject({
      kind: 'error',
      infrastructure: true,
      message: expect.stringMatching(
        /seccomp layer is missing.*python3-seccomp.*does not count as an attempt/,
      ),
    });
  });

  it('is an infrastructure error when the sandbox cannot start', async () => {
    const noPython = new PythonSandbox({ python: '/nonexistent/python3' });
    expect(await noPython.unavailable()).toMatch(/apt-get install python3/);
    // Passes the probe (bwrap works), but every box then fails to start.
    const sandbox = new PythonSandbox({ prlimit: '/bin/false' });
    const run = await sandbox.run(ioJob);
    expect(run).toMatchObject({
      kind: 'error',
      infrastructure: true,
      message: expect.stringMatching(/could not start/),
    });
  });
});

describe('sandboxStatus', () => {
  it('reports both sandboxes working, and the Python isolation layers', async () => {
    const status = await sandboxStatus(testSandboxes());
    expect(status.javascript).toMatchObject({ ok: true });
    expect(status.python).toMatchObject({ ok: true });
    const layers = Object.fromEntries(status.pythonIsolation.map((l) => [l.name, l]));
    for (const name of ['namespaces', 'seccomp', 'rlimits'])
      expect(layers[name], name).toMatchObject({ active: true, essential: true });
    expect(Object.keys(layers).sort()).toEqual(['box uids', 'cgroups', 'namespaces', 'rlimits', 'seccomp']);
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
