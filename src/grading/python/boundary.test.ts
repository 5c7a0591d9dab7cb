import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callTest, ioTest } from '../../../test/grading.ts';
import { grade } from '../grade.ts';
import type { ExerciseTest, GradeOutcome } from '../grading.types.ts';
import { JsPool } from '../javascript/js-pool.ts';
import type { Sandboxes } from '../sandboxes.ts';
import { PythonSandbox } from './py-sandbox.ts';

/*
 * The Python box as a security boundary (issue 9): each attack a student who reads our source could
 * try, run against the real sandbox. This file's boxes use their own uid range, so what it checks on
 * the host (processes, cgroups) is this file's alone while other test files grade in parallel.
 */

const UID_BASE = 63_000;
const UID_COUNT = 8;
const python = new PythonSandbox({ uidBase: UID_BASE, uidCount: UID_COUNT });
const javascript = new JsPool(1);
const sandboxes: Sandboxes = { python, javascript, warm: async () => {}, close: async () => {} };
afterAll(() => javascript.close());

const limits = { timeMs: 400, memoryMb: 32 };
function py(code: string, tests: ExerciseTest[], extra: { timeMs?: number; totalMs?: number } = {}) {
  return grade(sandboxes, {
    language: 'python',
    code,
    entrypoint: 'probe',
    tests,
    limits: { ...limits, timeMs: extra.timeMs ?? limits.timeMs },
    maxScore: 1,
    totalMs: extra.totalMs ?? 30_000,
  });
}

/** Host pids whose real uid is in this file's box range, with their uid. */
function boxProcesses(): Array<{ pid: number; uid: number }> {
  const found: Array<{ pid: number; uid: number }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1]);
      if (uid >= UID_BASE && uid < UID_BASE + UID_COUNT) found.push({ pid: Number(entry), uid });
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** This file's box cgroups (a uid's boxes reuse its cgroups), as folders. */
const boxCgroups = () =>
  ['memory', 'pids'].flatMap((c) => {
    const dir = `/sys/fs/cgroup/${c}/lab-sandbox`;
    return existsSync(dir)
      ? readdirSync(dir)
          .filter(
            (d) =>
              /^box-\d+$/.test(d) &&
              Number(d.slice(4)) >= UID_BASE &&
              Number(d.slice(4)) < UID_BASE + UID_COUNT,
          )
          .map((d) => `${dir}/${d}`)
      : [];
  });
/** Processes in this file's box cgroups. */
const inBoxCgroups = () =>
  boxCgroups().flatMap((d) => readFileSync(`${d}/cgroup.procs`, 'utf8').split('\n').filter(Boolean));

function messages(out: GradeOutcome): string {
  return [out.message, ...out.results.map((r) => r.message)].join(' | ');
}

let layers: Awaited<ReturnType<PythonSandbox['layers']>>['layers'];
beforeAll(async () => {
  layers = (await python.layers()).layers;
});

describe('Python box: a boundary, in the manner of isolate and nsjail', () => {
  it('runs every essential layer here, and per-box uids and cgroups as root', () => {
    const byName = Object.fromEntries(layers.map((l) => [l.name, l]));
    for (const name of ['namespaces', 'seccomp', 'rlimits']) expect(byName[name]!.active, name).toBe(true);
    // The suite runs as root (as CI does): then every box gets its own uid.
    expect(process.getuid?.()).toBe(0);
    expect(byName['box uids']).toMatchObject({
      active: true,
      detail: `uids ${UID_BASE}–${UID_BASE + UID_COUNT - 1}, one per running box`,
    });
    // cgroups: active exactly when this host lets root create them (a v1 or v2 memory hierarchy).
    const hostAllows =
      existsSync('/sys/fs/cgroup/memory/cgroup.procs') || existsSync('/sys/fs/cgroup/cgroup.controllers');
    if (hostAllows) expect(byName.cgroups!.active).toBe(true);
    else expect(byName.cgroups!.detail).toMatch(/cgroup/);
  });

  it('has no init to attack: the harness is PID 1, and ptrace or prlimit of it fail (issue 9, finding 1)', async () => {
    const code = `import ctypes, errno, mmap, os, resource
libc = ctypes.CDLL(None, use_errno=True)
def err():
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
def probe():
    out = [os.getpid()]
    ctypes.set_errno(0)
    out.append(err() if libc.ptrace(16, 1, 0, 0) == -1 else 'attached')
    try:
        resource.prlimit(1, resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        out.append('raised')
    except OSError as e:
        out.append(errno.errorcode[e.errno])
    try:
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        out.append('raised')
    except (OSError, ValueError):
        out.append('refused')
    try:
        m = mmap.mmap(-1, 512 * 1024 * 1024)
        m[-1] = 1
        out.append('512 MB mapped')
    except (OSError, MemoryError, ValueError):
        out.append('no 512 MB')
    return out
`;
    const out = await py(code, [callTest('probe', [], [1, 'EPERM', 'EPERM', 'refused', 'no 512 MB'])]);
    expect(out.status, messages(out)).toBe('passed');
  });

  it('denies, by seccomp, the system calls that attacks on a box go through', async () => {
    const names = [
      'ptrace',
      'process_vm_readv',
      'process_vm_writev',
      'perf_event_open',
      'bpf',
      'userfaultfd',
      'keyctl',
      'add_key',
      'request_key',
      'mount',
      'umount2',
      'pivot_root',
      'unshare',
      'setns',
      'init_module',
      'finit_module',
      'delete_module',
      'personality',
      'io_uring_setup',
      'kcmp',
      'pidfd_getfd',
      'kexec_load',
      'open_by_handle_at',
      'clone3',
    ];
    // Numbers for this machine's architecture, from the host's libseccomp.
    const numbers = JSON.parse(
      execFileSync('/usr/bin/python3', [
        '-c',
        `import json, seccomp; print(json.dumps({n: seccomp.resolve_syscall(seccomp.Arch.NATIVE, n) for n in ${JSON.stringify([...names, 'clone'])}}))`,
      ]).toString(),
    ) as Record<string, number>;
    const { clone, ...probed } = numbers;
    const code = `import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def probe(numbers):
    out = {}
    for name, nr in numbers.items():
        ctypes.set_errno(0)
        r = libc.syscall(nr, 0, 0, 0, 0, 0, 0)
        out[name] = errno.errorcode.get(ctypes.get_errno(), '?') if r == -1 else 'allowed'
    ctypes.set_errno(0)
    # clone(CLONE_NEWUSER | SIGCHLD): a new user namespace from inside the box.
    r = libc.syscall(${clone}, 0x10000000 | 17, 0, 0, 0, 0)
    out['clone(CLONE_NEWUSER)'] = errno.errorcode.get(ctypes.get_errno(), '?') if r == -1 else 'allowed'
    return out
`;
    const expected = {
      ...Object.fromEntries(names.map((n) => [n, n === 'clone3' ? 'ENOSYS' : 'EPERM'])),
      'clone(CLONE_NEWUSER)': 'EPERM',
    };
    const out = await py(code, [callTest('probe', [probed], expected)]);
    expect(out.status, messages(out)).toBe('passed');
  });

  it('leaves nothing of a submission alive when its verdict is in, even a program that became another', async () => {
    const attacks = [
      // Replaces the harness: nothing answers, the host's deadline ends the box.
      "import os\ndef probe():\n    os.execv('/usr/bin/sleep', ['sleep', '30'])\n",
      // Tries to leave a process behind.
      "import os\ndef probe():\n    try:\n        if os.fork() == 0:\n            os.execv('/usr/bin/sleep', ['sleep', '30'])\n    except OSError:\n        pass\n    while True:\n        pass\n",
    ];
    for (const code of attacks) {
      const out = await py(code, [callTest('probe', [], 1), callTest('after', [], 1)]);
      expect(out.infrastructure).toBe(false);
      expect(out.results.map((r) => r.message)).toEqual([
        'Time limit exceeded (400 ms).',
        'Not run: an earlier test exceeded the time limit',
      ]);
      // Checked the moment the verdict exists, with no waiting: the box was killed and checked first.
      expect(boxProcesses()).toEqual([]);
      expect(inBoxCgroups()).toEqual([]);
    }
    expect(python.uncleared).toBe(0);
  });

  it('gives each box running at once its own host uid, and a cgroup with its limits', async () => {
    const code = 'import time\ndef probe():\n    time.sleep(0.8)\n    return 1\n';
    const tests = [callTest('probe', [], 1)];
    const running = Promise.all([py(code, tests, { timeMs: 3000 }), py(code, tests, { timeMs: 3000 })]);
    let settled = false;
    void running.finally(() => {
      settled = true;
    });
    const uids = new Set<number>();
    const cgroupLimits = new Set<string>();
    const deadline = Date.now() + 5000;
    while (!settled && Date.now() < deadline) {
      for (const p of boxProcesses()) uids.add(p.uid);
      // While its box runs, a uid's pids cgroup holds its processes, under the box's limit.
      for (const dir of boxCgroups().filter((d) => d.includes('/pids/')))
        if (readFileSync(`${dir}/cgroup.procs`, 'utf8').trim())
          cgroupLimits.add(readFileSync(`${dir}/pids.max`, 'utf8').trim());
      await delay(10);
    }
    const outs = await running;
    for (const out of outs) expect(out.status, messages(out)).toBe('passed');
    expect(uids.size).toBe(2);
    if (layers.find((l) => l.name === 'cgroups')!.active) expect([...cgroupLimits]).toEqual(['4']);
    expect(boxProcesses()).toEqual([]);
  });

  it('starts one box at a time, while the programs of boxes started run at once', async () => {
    const code = 'import time\ndef probe():\n    time.sleep(1.5)\n    return 1\n';
    const tests = [callTest('probe', [], 1)];
    const running = Promise.all([1, 2, 3, 4].map(() => py(code, tests, { timeMs: 5000 })));
    let settled = false;
    void running.finally(() => {
      settled = true;
    });
    let mostAtOnce = 0;
    const deadline = Date.now() + 10_000;
    while (!settled && Date.now() < deadline) {
      mostAtOnce = Math.max(mostAtOnce, new Set(boxProcesses().map((p) => p.uid)).size);
      await delay(10);
    }
    const outs = await running;
    for (const out of outs) expect(out.status, messages(out)).toBe('passed');
    expect(python.mostStartingAtOnce).toBe(1);
    expect(mostAtOnce).toBe(4);
  });

  it("cannot hold up another student's box: the start limit is released before any student code runs", async () => {
    const finished: string[] = [];
    const endless = py('def probe():\n    while True:\n        pass\n', [callTest('probe', [], 1)], {
      timeMs: 3000,
    }).then((out) => {
      finished.push('endless');
      return out;
    });
    // Started second, so it waits for the endless loop's box to start, and no longer.
    const quick = py('def probe():\n    return 1\n', [callTest('probe', [], 1)]).then((out) => {
      finished.push('quick');
      return out;
    });
    const [slow, fast] = await Promise.all([endless, quick]);
    expect(fast.status, messages(fast)).toBe('passed');
    expect(slow.results[0]!.message).toBe('Time limit exceeded (3000 ms).');
    expect(finished).toEqual(['quick', 'endless']);
  });

  it('starts as many boxes at once as it is told to', async () => {
    const many = new PythonSandbox({ uidBase: UID_BASE, uidCount: UID_COUNT, startsAtOnce: 3 });
    const job = {
      code: 'def probe():\n    return 1\n',
      entrypoint: 'probe',
      tests: [{ kind: 'call' as const, argsJson: '[]' }],
      timeMs: 2000,
      memoryMb: 32,
      totalMs: 10_000,
    };
    const runs = await Promise.all([1, 2, 3].map(() => many.run(job)));
    for (const run of runs) expect(run.kind).toBe('ran');
    expect(many.mostStartingAtOnce).toBe(3);
  });

  it("reuses a uid's cgroups from box to box, whatever each box's memory limit", async () => {
    for (const memoryMb of [32, 512, 16, 256]) {
      const out = await grade(sandboxes, {
        language: 'python',
        code: 'def probe():\n    return 1\n',
        entrypoint: 'probe',
        tests: [callTest('probe', [], 1)],
        limits: { timeMs: 2000, memoryMb },
        maxScore: 1,
        totalMs: 30_000,
      });
      expect(out.status, `${memoryMb} MB: ${messages(out)}`).toBe('passed');
    }
  });

  it('keeps the harness private: handed over on a descriptor, read-only in the box, never in a shared folder', async () => {
    const before = readdirSync(tmpdir()).filter((n) => n.startsWith('lab-python-harness'));
    const code = `import os
def probe():
    out = []
    try:
        with open('/sandbox/harness.py', 'a') as f:
            f.write('tampered')
        out.append('written')
    except OSError:
        out.append('read-only')
    out.append(os.path.exists('/sandbox/harness.py'))
    return out
`;
    const out = await py(code, [callTest('probe', [], ['read-only', true])]);
    expect(out.status, messages(out)).toBe('passed');
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith('lab-python-harness'))).toEqual(before);
  });

  it('owns time: frames written to fd 3 neither re-arm the deadline nor answer a request (findings 2, 3)', async () => {
    // 2.6 s of CPU in a 1 s test, with the alarm disabled and a frame every 100 ms, used to pass.
    const code = `import os, signal, time
def probe():
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    signal.setitimer(signal.ITIMER_REAL, 0)
    end = time.monotonic() + 2.6
    last = 0
    while time.monotonic() < end:
        if time.monotonic() - last > 0.1:
            os.write(3, b'{"t":"phase","phase":0}\\n{"t":"result","n":"0","kind":"value","json":"1","durationMs":1}\\n')
            last = time.monotonic()
    return 1
`;
    const started = performance.now();
    const out = await py(code, [callTest('probe', [], 1)], { timeMs: 1000 });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(out.results[0]).toMatchObject({ passed: false, message: 'Time limit exceeded (1000 ms).' });
  });

  it('forged frames cannot rewrite a visible test, its duration, or answer a later test', async () => {
    const code = `import os, time
def probe(kind):
    if kind == 'visible':
        forged = [
            b'{"t":"result","n":"guess","kind":"value","json":"\\\\"secret\\\\""}',
            b'{"t":"outcome","index":1,"kind":"value","json":"\\\\"secret\\\\"","durationMs":0}',
            b'{"t":"done"}', b'garbage', b'{"t":"result","kind":"value","json":"1","durationMs":0}',
        ]
        os.write(3, b'\\n'.join(forged) + b'\\n')
        time.sleep(0.3)
        return 2
    return 'wrong'
`;
    const out = await py(
      code,
      [callTest('visible', ['visible'], 1), callTest('hidden', ['hidden'], 'secret', { hidden: true })],
      { timeMs: 2000 },
    );
    expect(out.infrastructure).toBe(false);
    expect(out.results[0]).toMatchObject({ passed: false, message: 'Expected 1, received 2.' });
    // Measured by the host, not taken from the program.
    expect(out.results[0]!.durationMs).toBeGreaterThanOrEqual(300);
    expect(out.results[1]).toMatchObject({ passed: false, message: 'Expected "secret", received "wrong".' });
  });

  it("never holds another test's inputs: no frame, global or object in a visible test sees a hidden one's", async () => {
    const code = `import gc, sys
seen = []
def probe(arg):
    texts = []
    frame = sys._getframe()
    while frame is not None:
        texts.append(repr(frame.f_locals))
        texts.append(repr(frame.f_globals.get('request')))
        frame = frame.f_back
    texts.extend(repr(o) for o in gc.get_objects() if isinstance(o, (dict, list, tuple)))
    try:
        texts.append(repr(sys._getframe(1).f_locals['tests']))
    except Exception as e:
        texts.append(type(e).__name__)
    blob = ' '.join(texts)
    # Joined at run time: CPython folds 'a' + 'b' into one constant, which gc would then find.
    words = [''.join(w) for w in [('HID', 'DEN-ARG'), ('HID', 'DEN-STDIN'), ('EXPECTED-', 'SECRET')]]
    return [w for w in words if w in blob]
`;
    const out = await py(code, [
      callTest('visible', ['first'], ['nothing']),
      callTest('hidden call', ['HIDDEN-ARG-1'], 'EXPECTED-SECRET', { hidden: true }),
      ioTest('hidden io', 'HIDDEN-STDIN-1\n', 'x', { hidden: true }),
    ]);
    expect(out.results[0]!.message).toBe('Expected ["nothing"], received [].');
  });
});
