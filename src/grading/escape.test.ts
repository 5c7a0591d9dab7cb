import { randomUUID } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callTest, closeTestSandboxes, gradeInTest as grade, ioTest } from '../../test/grading.ts';
import type { ExerciseTest, GradeOutcome, GradeRequest } from './grading.types.ts';

// The sandbox escape suite: every attack must stay contained (judged as a failed test or an error
// that is the student's, never an infrastructure failure or a crashed grader), and the next, correct
// submission must pass — the grader keeps working and nothing leaked from the attacker's run.

afterAll(closeTestSandboxes);

// Small enough to keep the suite fast, large enough that passing probes never time out on a busy machine.
const limits = { timeMs: 400, memoryMb: 32 };
const probeTest = (expected: unknown, args: unknown[] = []): ExerciseTest[] => [
  callTest('probe', args, expected),
];

function attack(
  language: GradeRequest['language'],
  code: string,
  tests: ExerciseTest[],
  within = limits,
): Promise<GradeOutcome> {
  return grade({ language, code, entrypoint: 'probe', tests, limits: within, maxScore: 1 });
}

const correct = {
  javascript:
    'function probe(a, b) { return [a + b, typeof leak, [1, 2].map((x) => x * 2), JSON.stringify({ a: 1 })]; }',
  python:
    'import builtins, json\ndef probe(a, b):\n    return [a + b, hasattr(builtins, "leak"), [x * 2 for x in [1, 2]], json.dumps({"a": 1})]\n',
};
const correctExpected = {
  javascript: [3, 'undefined', [2, 4], '{"a":1}'],
  python: [3, false, [2, 4], '{"a": 1}'],
};

async function expectGraderHealthy(language: GradeRequest['language']) {
  const out = await attack(language, correct[language], probeTest(correctExpected[language], [1, 2]));
  expect(out, JSON.stringify(out)).toMatchObject({ status: 'passed', score: 1, infrastructure: false });
}

function expectContainedFailure(out: GradeOutcome, message?: RegExp) {
  expect(out.infrastructure, JSON.stringify(out)).toBe(false);
  expect(out.status).not.toBe('passed');
  if (message) expect([out.message, ...out.results.map((r) => r.message)].join(' | ')).toMatch(message);
}

let server: Server;
let port = 0;
let connections = 0;
beforeAll(async () => {
  server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('python sandbox escape suite', () => {
  const py = (code: string, tests: ExerciseTest[], within = limits) => attack('python', code, tests, within);

  it('cannot read host files or see host paths', async () => {
    const code = `import os
def probe():
    paths = ['/etc/passwd', '/etc/shadow', '/root', '/home', '/work', '/var', '/proc/1/environ', '/proc/self/status']
    seen = [p for p in paths if os.path.exists(p)]
    try:
        open('/etc/passwd').read()
        seen.append('read passwd')
    except OSError:
        pass
    return seen
`;
    expect((await py(code, probeTest([]))).status).toBe('passed');
    await expectGraderHealthy('python');
  });

  it('runs as nobody with no way to write to the host', async () => {
    const marker = `/tmp/lab-escape-${randomUUID()}`;
    const targets = [marker, '/usr/lab-escape', `${process.cwd()}/lab-escape`, '/lab-escape'];
    const code = `import os
def probe():
    for p in ${JSON.stringify(targets)}:
        try:
            with open(p, 'w') as f:
                f.write('x' * 2000000)
        except OSError:
            pass
    return [os.getuid(), os.getgid(), os.geteuid()]
`;
    const out = await py(code, probeTest([65534, 65534, 65534]));
    expect(out.status, JSON.stringify(out)).toBe('passed');
    for (const path of targets) {
      expect(existsSync(path), path).toBe(false);
      if (existsSync(path)) rmSync(path);
    }
    await expectGraderHealthy('python');
  });

  it('cannot fill memory through the file system', async () => {
    const code = `import os
def probe():
    out = []
    for d in ['/', '/dev', '/dev/shm', '/sandbox']:
        try:
            open(d.rstrip('/') + '/x', 'w').close()
            out.append(d)
        except OSError:
            pass
    written = 0
    try:
        for i in range(100):
            with open('/tmp/f%d' % i, 'wb') as f:
                f.write(b'x' * 1000000)
            written += 1
    except OSError:
        pass
    try:
        with open('/tmp/big', 'wb') as f:
            f.write(b'x' * 2000000)
        out.append('2 MB file')
    except OSError:
        pass
    return [out, written < 20]
`;
    const out = await py(code, probeTest([[], true]));
    expect(out.status, JSON.stringify(out)).toBe('passed');
    await expectGraderHealthy('python');
  });

  it('has no network, not even to a server on the host loopback', async () => {
    const code = `import socket
def probe(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=0.1).close()
        return 'connected'
    except OSError:
        return 'blocked'
`;
    const out = await py(code, probeTest('blocked', [port]));
    expect(out.status, JSON.stringify(out)).toBe('passed');
    expect(connections).toBe(0);
    await expectGraderHealthy('python');
  });

  it('cannot spawn processes or threads', async () => {
    const marker = `/tmp/lab-escape-${randomUUID()}`;
    const code = `import os, subprocess, threading
def probe():
    out = []
    out.append(os.system('touch ${marker}') != 0)
    try:
        subprocess.run(['/usr/bin/touch', '${marker}'])
        out.append('ran')
    except OSError:
        out.append('blocked')
    try:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        out.append('forked')
    except OSError:
        out.append('blocked')
    try:
        threading.Thread(target=lambda: None).start()
        out.append('thread')
    except RuntimeError:
        out.append('blocked')
    return out
`;
    const out = await py(code, probeTest([true, 'blocked', 'blocked', 'blocked']));
    expect(out.status, JSON.stringify(out)).toBe('passed');
    expect(existsSync(marker)).toBe(false);
    await expectGraderHealthy('python');
  });

  it('contains a program that replaces itself with another one', async () => {
    const out = await py(
      "import os\ndef probe():\n    os.execv('/usr/bin/sh', ['sh', '-c', 'echo hi >&3; sleep 5'])\n",
      probeTest(1),
    );
    expectContainedFailure(out, /crashed|Time limit/);
    await expectGraderHealthy('python');
  });

  it('survives a fork bomb', async () => {
    const code = `import os
def probe():
    while True:
        try:
            os.fork()
        except OSError:
            pass
`;
    expectContainedFailure(await py(code, probeTest(1)), /Time limit/);
    await expectGraderHealthy('python');
  });

  it('kills infinite loops, including ones that catch the timer or replace its handler', async () => {
    const loops = [
      'def probe():\n    while True:\n        pass\n',
      'def probe():\n    while True:\n        try:\n            while True:\n                pass\n        except BaseException:\n            pass\n',
      'import signal\ndef probe():\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    while True:\n        pass\n',
      'import signal\ndef probe():\n    signal.setitimer(signal.ITIMER_REAL, 0)\n    while True:\n        pass\n',
      'import os\ndef probe():\n    while True:\n        os.write(1, b"x" * 65536)\n        os.write(2, b"x" * 65536)\n',
    ];
    for (const code of loops) {
      const started = performance.now();
      const out = await py(code, probeTest(1));
      expectContainedFailure(out, /Time limit exceeded \(400 ms\)/);
      expect(performance.now() - started).toBeLessThan(3000);
    }
    await expectGraderHealthy('python');
  });

  it('turns memory bombs into a failed test', async () => {
    const bombs = [
      'def probe():\n    a = []\n    while True:\n        a.append(" " * 1000000)\n',
      'def probe():\n    return len(bytearray(10 ** 10))\n',
      'def probe():\n    return len(" " * 10 ** 9)\n',
      // Shared anonymous memory is not RLIMIT_DATA; the address-space limit catches it.
      'import mmap\ndef probe():\n    m = mmap.mmap(-1, 2 ** 30)\n    for i in range(0, 2 ** 30, 4096):\n        m[i] = 1\n',
      'import os\ndef probe():\n    fds = [os.memfd_create("x") for _ in range(10)]\n    for fd in fds:\n        os.ftruncate(fd, 2 ** 30)\n',
    ];
    for (const code of bombs) {
      const out = await grade({
        language: 'python',
        code,
        entrypoint: 'probe',
        tests: probeTest(1),
        limits: { timeMs: 2000, memoryMb: 32 },
        maxScore: 1,
      });
      expectContainedFailure(out, /Memory limit exceeded \(32 MB\)|Cannot allocate memory|File too large/);
    }
    await expectGraderHealthy('python');
  });

  it('caps output floods', async () => {
    // A generous time limit: the output limit is what must stop it, even on a busy machine.
    const out = await grade({
      language: 'python',
      code: 'while True:\n    print("x" * 1000)\n',
      entrypoint: null,
      tests: [ioTest('flood', '', 'x')],
      limits: { timeMs: 3000, memoryMb: 32 },
      maxScore: 1,
    });
    expectContainedFailure(out, /Output limit exceeded/);
    await expectGraderHealthy('python');
  });

  it('contains a crash from deep recursion and grades the remaining tests', async () => {
    const code = `import sys
def probe(n):
    if n == 0:
        return 'ok'
    sys.setrecursionlimit(10 ** 7)
    def f(k):
        return f(k + 1) + 1
    return f(0)
`;
    // Time enough for the recursion to reach the memory limit even on a busy machine: a test that
    // exceeds its time limit ends the job (v1.1), and the test after it would not run.
    const out = await py(code, [callTest('deep', [1], 'ok'), callTest('after', [0], 'ok')], {
      ...limits,
      timeMs: 5000,
    });
    expect(out.status).toBe('failed');
    expect(out.results[0]!.passed).toBe(false);
    // Python 3.11 frames live on the heap: this ends at the time or memory limit (or CPython's own
    // SystemError when a frame cannot be allocated) rather than a crash; any of them is contained.
    expect(out.results[0]!.message).toMatch(/crashed|RecursionError|Memory|Time|SystemError|MemoryError/);
    expect(out.results[1]!.passed, JSON.stringify(out)).toBe(true);

    const segfault = await py(
      'import ctypes\ndef probe(n):\n    return ctypes.string_at(0) if n else "ok"\n',
      [
        callTest('crash', [1], 'ok'),
        callTest('hidden crash', [1], 'ok', { hidden: true }),
        callTest('after', [0], 'ok'),
      ],
    );
    expect(segfault.results.map((r) => [r.passed, r.message])).toEqual([
      [false, 'The program crashed: the process ended (signal SIGSEGV)'],
      [false, 'The program crashed: the process ended (signal SIGSEGV)'],
      [true, null],
    ]);
    await expectGraderHealthy('python');
  });

  it('cannot fake equality, find expected values, or forge results', async () => {
    const eq = `class Anything:
    def __eq__(self, other):
        return True
class Int(int):
    def __eq__(self, other):
        return True
    def __repr__(self):
        return '3'
def probe(kind):
    return Anything() if kind == 'object' else Int(99)
`;
    const faked = await py(eq, [callTest('object', ['object'], 3), callTest('int', ['int'], 3)]);
    expect(faked.results.map((r) => r.passed)).toEqual([false, false]);
    expect(faked.results[1]!.message).toBe('Expected 3, received 99.');

    const snoop = `import gc, sys, os
def probe():
    texts = []
    frame = sys._getframe()
    while frame:
        texts.append(repr(frame.f_locals))
        frame = frame.f_back
    texts.extend(repr(o) for o in gc.get_objects() if isinstance(o, (dict, list)))
    os.write(3, b'{"t":"outcome","index":1,"kind":"value","json":"\\\\"forged\\\\""}\\n{"t":"done"}\\ngarbage\\n')
    secret = 'SEC' + 'RET'
    return any(secret in t for t in texts)
`;
    const out = await py(snoop, [
      callTest('visible', [], 'VISIBLE-SECRET'),
      callTest('hidden', [], 'HIDDEN-SECRET', { hidden: true }),
      ioTest('io', '', 'OUT-SECRET', { hidden: true }),
    ]);
    expect(out.infrastructure).toBe(false);
    expect(out.results[0]!.message).toBe('Expected "VISIBLE-SECRET", received false.');
    // The forged frame for test 1 is overwritten by that test's real run.
    expect(out.results[1]!.passed).toBe(false);

    const poison = `import builtins
builtins.print = lambda *a, **k: None
builtins.leak = True
def probe():
    return 1
`;
    await py(poison, probeTest(1));
    await expectGraderHealthy('python');
  });
});

describe('javascript sandbox escape suite', () => {
  const js = (code: string, tests: ExerciseTest[]) => attack('javascript', code, tests);

  it('has no host objects, even through constructor.constructor', async () => {
    const code = `function probe() {
      const g = (function () {}).constructor.constructor('return this')();
      return [typeof require, typeof process, typeof module, typeof fetch, typeof setTimeout,
        typeof std, typeof os, typeof WebAssembly, typeof g.process, typeof g.require, g === globalThis];
    }`;
    const expected = [...Array(10).fill('undefined'), true];
    const out = await js(code, probeTest(expected));
    expect(out.status, JSON.stringify(out)).toBe('passed');
    const imports = await js(
      `async function probe() { try { await import('node:child_process'); return 'imported'; } catch (e) { return 'blocked'; } }`,
      probeTest('blocked'),
    );
    expect(imports.status, JSON.stringify(imports)).toBe('passed');
    const requireCall = await js(
      `function probe() { return require('child_process').execSync('id'); }`,
      probeTest(1),
    );
    expectContainedFailure(requireCall, /ReferenceError/);
    await expectGraderHealthy('javascript');
  });

  it('kills infinite loops, inside builtins too', async () => {
    const loops = [
      'function probe() { for (;;) {} }',
      'function probe() { for (;;) { try { for (;;) {} } catch (e) {} } }',
      'function probe() { return Array(2 ** 32 - 1).indexOf(1); }',
      "function probe() { return /(a+)+$/.test('a'.repeat(40) + 'b'); }",
      'async function probe() { for (;;) await null; }',
    ];
    for (const code of loops) {
      const started = performance.now();
      expectContainedFailure(await js(code, probeTest(1)), /Time limit exceeded \(400 ms\)/);
      expect(performance.now() - started).toBeLessThan(3000);
    }
    await expectGraderHealthy('javascript');
  });

  it('turns memory bombs into a failed test', async () => {
    const bombs = [
      'function probe() { const a = []; for (;;) a.push(new ArrayBuffer(1e6)); }',
      'function probe() { const a = []; for (let i = 0; ; i++) a.push({ i, s: "abc" + i }); }',
      "function probe() { return 'x'.repeat(1e9).length; }",
      'function probe() { let s = "x"; for (;;) s += s; }',
    ];
    for (const code of bombs) {
      // A longer time limit, so that the memory limit is what stops them on a busy machine.
      const out = await grade({
        language: 'javascript',
        code,
        entrypoint: 'probe',
        tests: probeTest(1),
        limits: { timeMs: 2000, memoryMb: 32 },
        maxScore: 1,
      });
      expectContainedFailure(out, /Memory limit exceeded \(32 MB\)|string too long/);
    }
    await expectGraderHealthy('javascript');
  });

  it('caps output floods and survives deep recursion', async () => {
    const flood = await grade({
      language: 'javascript',
      code: 'for (;;) console.log("x".repeat(1000));',
      entrypoint: null,
      tests: [ioTest('flood', '', 'x')],
      limits: { timeMs: 3000, memoryMb: 32 },
      maxScore: 1,
    });
    expectContainedFailure(flood, /Output limit exceeded/);
    const deep = await js('function probe() { return probe() + 1; }', probeTest(1));
    expectContainedFailure(deep, /stack overflow/i);
    await expectGraderHealthy('javascript');
  });

  it('times compiling too: a program slow to parse is stopped at its time limit (issue 9, finding 4)', async () => {
    // Nested functions that call eval make QuickJS's parser cost grow with the square of the nesting:
    // this one compiles for about 3.5 s here; the watchdog is armed before parsing starts.
    let code = '';
    for (let d = 0; d < 60; d++)
      code += `function f${d}() { eval(""); ${Array.from({ length: 70 }, (_, i) => `var v${d}_${i} = ${i};`).join(' ')} `;
    code += `${'}'.repeat(60)}\nfunction probe() { return 1; }`;
    const started = performance.now();
    const out = await grade({
      language: 'javascript',
      code,
      entrypoint: 'probe',
      tests: probeTest(1),
      limits: { timeMs: 1000, memoryMb: 64 },
      maxScore: 1,
    });
    expect(performance.now() - started).toBeLessThan(2500);
    expect(out).toMatchObject({
      status: 'error',
      infrastructure: false,
      message: 'Loading the program took longer than the time limit (1000 ms).',
    });
    await expectGraderHealthy('javascript');
  });

  it("treats a program nested too deeply to parse as the student's error, which uses an attempt (finding 7)", async () => {
    for (const code of [
      `${'('.repeat(30_000)}1${')'.repeat(30_000)};\nfunction probe() { return 1; }`,
      `function probe() { return ${'['.repeat(30_000)}${']'.repeat(30_000)}; }`,
    ]) {
      const out = await js(code, probeTest(1));
      expect(out).toMatchObject({ status: 'error', infrastructure: false });
      expect(out.message).toMatch(/nested too deeply/);
    }
    const python = await attack(
      'python',
      `x = ${'('.repeat(30_000)}1${')'.repeat(30_000)}\ndef probe():\n    return 1\n`,
      probeTest(1),
    );
    expect(python).toMatchObject({ status: 'error', infrastructure: false });
    await expectGraderHealthy('javascript');
  });

  it('cannot poison later runs or fake equality', async () => {
    const poison = `
      Array.prototype.map = () => 'poisoned';
      Array.prototype.push = () => { throw new Error('poisoned'); };
      JSON.stringify = () => '3';
      JSON.parse = () => 3;
      Object.prototype.toJSON = () => 3;
      Object.defineProperty(Object.prototype, '0', { set() {}, get() { return 3; } });
      Function.prototype.call = () => 3;
      globalThis.leak = 'leaked';
      function probe() { return [4]; }`;
    const out = await js(poison, probeTest([3]));
    expect(out.status).toBe('failed');
    await expectGraderHealthy('javascript');
  });
});
