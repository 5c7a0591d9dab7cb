import { beforeAll, describe, expect, it } from 'vitest';
import type { RawOutcome, SandboxJob, SandboxTest } from '../sandbox.types.ts';
import { compileQuickJs, QuickJsInstances, runJsJob } from './js-sandbox.ts';

// The sandbox core, run in this thread (the pool runs the same code in workers, see grade.test.ts).
// The main thread has a ~1 MB stack, so QuickJS gets a smaller one here than in a worker.
let instances: QuickJsInstances;
beforeAll(async () => {
  instances = new QuickJsInstances(await compileQuickJs(), 192 * 1024);
});

async function run(code: string, tests: SandboxTest[], extra: Partial<SandboxJob> = {}) {
  const phases: Array<'load' | number> = [];
  const seen: RawOutcome[] = [];
  const result = await runJsJob(
    { code, entrypoint: 'f', tests, timeMs: 300, memoryMb: 16, totalMs: 30_000, ...extra },
    instances,
    { phase: (p) => phases.push(p), outcome: (i, o) => (seen[i] = o) },
    0,
    Date.now() + (extra.totalMs ?? 30_000),
  );
  return { result, phases, seen };
}

const call = (...args: unknown[]): SandboxTest => ({ kind: 'call', argsJson: JSON.stringify(args) });
const io = (stdin: string): SandboxTest => ({ kind: 'io', stdin });

function outcomes(r: Awaited<ReturnType<typeof run>>): RawOutcome[] {
  if (r.result.kind !== 'done') throw new Error(`expected a run, got ${JSON.stringify(r.result)}`);
  return r.seen;
}

describe('runJsJob', () => {
  it('calls the entrypoint with JSON arguments and returns JSON text', async () => {
    const r = await run('function f(a, b) { return { sum: a.x + b[0], list: [a, b] }; }', [
      call({ x: 1 }, [2]),
      call({ x: 'a' }, ['b']),
    ]);
    // 'load' twice: compiling (timed from the start), then evaluating the module for call tests.
    expect(r.phases).toEqual(['load', 'load', 0, 1]);
    expect(outcomes(r).map((o) => (o.kind === 'value' ? JSON.parse(o.json!) : o))).toEqual([
      { sum: 3, list: [{ x: 1 }, [2]] },
      { sum: 'ab', list: [{ x: 'a' }, ['b']] },
    ]);
    expect(r.seen).toHaveLength(2);
  });

  it('runs io tests as fresh programs with stdin and readLine', async () => {
    const code = `let line, n = 0; while ((line = readLine()) !== null) { n++; console.log(line.toUpperCase(), n, {a: 1}, [1]); }
      console.log(stdin.length); console.error('ignored');`;
    const [a, b] = outcomes(await run(code, [io('x\ny\n'), io('')]));
    expect(a).toMatchObject({ kind: 'stdout', stdout: 'X 1 {"a":1} [1]\nY 2 {"a":1} [1]\n4\n' });
    expect(b).toMatchObject({ kind: 'stdout', stdout: '0\n' });
  });

  it('reports syntax errors and load failures as errors', async () => {
    expect((await run('function f( {', [call()])).result).toMatchObject({
      kind: 'fatal',
      message: expect.stringMatching(/^SyntaxError/),
    });
    expect((await run('throw new TypeError("nope")', [call()])).result).toMatchObject({
      kind: 'fatal',
      message: 'The program raised an exception while loading: TypeError: nope (line 1)',
    });
    expect((await run('for(;;);', [call()])).result).toEqual({
      kind: 'stopped',
      phase: 'load',
      why: 'time',
      detail: '',
    });
    expect(
      (await run('globalThis.a = []; for(;;) a.push(new ArrayBuffer(1e6));', [call()])).result,
    ).toMatchObject({
      kind: 'stopped',
      phase: 'load',
      why: 'memory',
    });
  });

  it('is an error (not a failed test) when the entrypoint is missing or not a function', async () => {
    const missing = await run('function g() {}', [call(), io('')]);
    expect(missing.result).toEqual({ kind: 'fatal', message: 'entrypoint `f` is not defined' });
    expect((await run('const f = 3;', [call()])).result).toMatchObject({
      kind: 'fatal',
      message: 'entrypoint `f` is not a function (it is a number)',
    });
    expect((await run('const f = {};', [call()])).result).toMatchObject({
      message: 'entrypoint `f` is not a function (it is an object)',
    });
    // A name that is not an identifier is never evaluated.
    const odd = await run('function g() {}', [call()], { entrypoint: 'f; globalThis.x = 1' });
    expect(odd.result).toMatchObject({
      kind: 'fatal',
      message: 'entrypoint `f; globalThis.x = 1` is not defined',
    });
    // io tests alone need no entrypoint.
    expect(outcomes(await run('console.log(1)', [io('')], { entrypoint: null }))[0]).toMatchObject({
      kind: 'stdout',
    });
  });

  it('classifies exceptions, timeouts, memory and stack overflows', async () => {
    const code = `function f(kind) {
      if (kind === 'throw') throw new RangeError('bad');
      if (kind === 'string') throw 'plain';
      if (kind === 'null') throw null;
      if (kind === 'loop') for (;;) { try { for (;;); } catch (e) {} }
      if (kind === 'memory') { const a = []; for (;;) a.push('x'.repeat(1e5) + a.length); }
      if (kind === 'deep') { const d = (n) => d(n + 1) + 1; return d(0); }
      if (kind === 'undefined') return undefined;
      if (kind === 'cycle') { const o = {}; o.o = o; return o; }
      if (kind === 'big') return 'x'.repeat(2e6);
    }`;
    const kinds = ['throw', 'string', 'null', 'memory', 'deep', 'undefined', 'cycle', 'big'];
    // A generous time limit so that only the memory limit can stop the memory case.
    const got = outcomes(
      await run(
        code,
        kinds.map((k) => call(k)),
        { memoryMb: 32, timeMs: 3000 },
      ),
    );
    expect(got.map((o) => o.kind)).toEqual([
      'raised',
      'raised',
      'raised',
      'memory',
      'raised',
      'value',
      'raised',
      'raised',
    ]);
    expect(got[0]).toMatchObject({ error: 'RangeError: bad (line 2)' });
    expect(got[1]).toMatchObject({ error: 'Uncaught: plain' });
    expect(got[4]).toMatchObject({ error: expect.stringMatching(/stack overflow|call stack/i) });
    expect(got[5]).toMatchObject({ json: null });
    expect(got[7]).toMatchObject({ error: 'The return value is too large.' });
    // A timeout ends the job: the host marks the remaining tests as not run.
    expect((await run(code, [call('loop'), call('throw')])).result).toMatchObject({
      kind: 'stopped',
      phase: 0,
      why: 'time',
    });
  });

  it('settles promises returned by async entrypoints', async () => {
    const code = `async function f(x) { await null; if (x === 'no') throw new Error('rejected'); if (x === 'spin') for (;;) await null; return x * 2; }`;
    const got = outcomes(await run(code, [call(21), call('no')]));
    expect(got[0]).toMatchObject({ kind: 'value', json: '42' });
    expect(got[1]).toMatchObject({ kind: 'raised', error: expect.stringMatching(/rejected/) });
    expect((await run(code, [call('spin')])).result).toMatchObject({
      kind: 'stopped',
      phase: 0,
      why: 'time',
    });
    const never = outcomes(await run('function f() { return new Promise(() => {}); }', [call()]));
    expect(never[0]).toMatchObject({ kind: 'raised', error: expect.stringMatching(/never settled/) });
  });

  it('reads the return value with the pristine JSON functions', async () => {
    const code = `JSON.stringify = () => '"forged"'; JSON.parse = () => 'forged';
      function f(a) { return [a, typeof a]; }`;
    const [o] = outcomes(await run(code, [call({ k: [1] })]));
    expect(o).toMatchObject({ kind: 'value', json: '[{"k":[1]},"object"]' });
  });

  it('caps output', async () => {
    const [a] = outcomes(await run('for (;;) console.log("x".repeat(1000));', [io('')]));
    expect(a).toMatchObject({ kind: 'stdout', truncated: true });
    const [b] = outcomes(await run('function f() { for (;;) console.log("x".repeat(1000)); }', [call()]));
    expect(b).toMatchObject({ kind: 'raised', error: expect.stringMatching(/Output limit/) });
  });

  it('replaces an instance after it ran out of memory', async () => {
    const before = instances.created;
    const code = `function f(k) { if (k) { const a = []; for (;;) a.push(new ArrayBuffer(1e6)); } return 1; }`;
    const got = outcomes(await run(code, [call(true), call(false)], { memoryMb: 24 }));
    expect(got.map((o) => o.kind)).toEqual(['memory', 'value']);
    expect(instances.created).toBeGreaterThan(before);
  });
});
