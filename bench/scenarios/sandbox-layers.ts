import { spawn } from 'node:child_process';
import { boxNamespaceArgs } from '../../src/grading/python/isolation.ts';
import { PythonSandbox } from '../../src/grading/python/py-sandbox.ts';
import type { Ctx } from '../lib/context.ts';
import { round } from '../lib/stats.ts';

/*
 * What each isolation layer of a Python box costs (issue 9): the same trivial program started again
 * and again with one more layer each time, CPU from this process's reaped children (each layer's
 * processes are children or grandchildren, reaped in turn), wall per start. The last row is the
 * real sandbox grading a one-test submission (harness, protocol, verified kill, uid lock).
 */

const PYTHON = '/usr/bin/python3';
const UID = 61_999; // the top of the default box range: not used by a grader while the bench runs

interface Step {
  name: string;
  adds: string;
  run(): Promise<void>;
}

function run(file: string, args: string[], fds: Buffer[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['ignore', 'ignore', 'pipe', ...fds.map(() => 'pipe' as const)],
    });
    for (const [i, data] of fds.entries()) (child.stdio[3 + i] as NodeJS.WritableStream).end(data);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${file} exited ${code}: ${err.slice(0, 300)}`)),
    );
  });
}

export async function sandboxLayersScenario(ctx: Ctx) {
  const sandbox = new PythonSandbox({ uidBase: UID, uidCount: 1 });
  const iso = await sandbox.layers();
  if (iso.refusal) return { skipped: iso.refusal, layers: [] };
  const seccomp = iso.seccomp!;
  const bwrapBase = [
    ...boxNamespaceArgs(),
    '--dev',
    '/dev',
    '--tmpfs',
    '/tmp',
    '--remount-ro',
    '/',
    '--uid',
    '65534',
    '--gid',
    '65534',
  ];
  const py = [PYTHON, '-I', '-S', '-B', '-c', 'pass'];
  const limits = [
    '/usr/bin/prlimit',
    '--as=201326592',
    '--data=134217728',
    '--cpu=31:32',
    '--nofile=32',
    '--fsize=1048576',
    '--core=0',
    '--nproc=2',
    '--',
  ];
  const setpriv = [
    '/usr/bin/setpriv',
    `--reuid=${UID}`,
    `--regid=${UID}`,
    '--clear-groups',
    '--no-new-privs',
    '--',
  ];
  const cgroups = iso.cgroups;
  const steps: Step[] = [
    { name: 'interpreter alone', adds: 'python3 -I -S, no sandbox', run: () => run(py[0]!, py.slice(1)) },
    {
      name: '+ namespaces',
      adds: 'bubblewrap: user, pid, net, ipc, uts, mount namespaces; read-only /usr',
      run: () => run('bwrap', [...bwrapBase, '--', ...py]),
    },
    {
      name: '+ seccomp',
      adds: 'the seccomp-bpf filter (bwrap --seccomp)',
      run: () => run('bwrap', [...bwrapBase, '--seccomp', '3', '--', ...py], [seccomp]),
    },
    {
      name: '+ rlimits, box uid',
      adds: 'prlimit on every process, setpriv to the box uid, no_new_privs',
      run: () =>
        run(
          limits[0]!,
          [...limits.slice(1), ...setpriv, 'bwrap', ...bwrapBase, '--seccomp', '3', '--', ...py],
          [seccomp],
        ),
    },
  ];
  if (cgroups)
    steps.push({
      name: '+ cgroups',
      adds: "a memory and a pids cgroup per box (the uid's, reused), limits set, joined, checked empty",
      run: async () => {
        const box = cgroups.create('box-bench-layers', { memoryBytes: 256 << 20, pids: 4 });
        try {
          await run(
            '/bin/sh',
            [
              '-c',
              'while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift; exec "$@"',
              'sh',
              ...box.procsFiles,
              '--',
              ...limits,
              ...setpriv,
              'bwrap',
              ...bwrapBase,
              '--seccomp',
              '3',
              '--',
              ...py,
            ],
            [seccomp],
          );
        } finally {
          await box.empty();
        }
      },
    });
  steps.push({
    name: 'grading sandbox, 1 test',
    adds: 'the harness loaded and a call test run over the request protocol; the box killed and checked empty',
    run: async () => {
      const r = await sandbox.run({
        code: 'def add(a, b):\n    return a + b\n',
        entrypoint: 'add',
        tests: [{ kind: 'call', argsJson: '[1,2]' }],
        timeMs: 2000,
        memoryMb: 64,
        totalMs: 30_000,
      });
      if (r.kind !== 'ran' || r.outcomes[0]?.kind !== 'value')
        throw new Error(`sandbox run failed: ${JSON.stringify(r)}`);
    },
  });

  const n = ctx.opts.quick ? 20 : 60;
  const layers: Array<{
    name: string;
    adds: string;
    cpuMsPerBox: number;
    wallMsPerBox: number;
    addedCpuMs: number | null;
  }> = [];
  const bar = ctx.progress.phase('python sandbox layers', steps.length * n, 'boxes');
  let done = 0;
  for (const step of steps) {
    await step.run(); // warm the page cache and the binaries
    // The bench's CPU account: this process and every box process it started, whoever reaped them.
    const cpu0 = ctx.env.benchCpuMs();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      await step.run();
      bar.update(++done);
    }
    const wall = (performance.now() - t0) / n;
    const cpu = (ctx.env.benchCpuMs() - cpu0) / n;
    layers.push({
      name: step.name,
      adds: step.adds,
      cpuMsPerBox: round(cpu, 2),
      wallMsPerBox: round(wall, 2),
      addedCpuMs: layers.length ? round(cpu - layers.at(-1)!.cpuMsPerBox, 2) : null,
    });
    ctx.log(`python box ${step.name}: ${round(cpu, 2)} ms CPU, ${round(wall, 2)} ms wall per box`);
  }
  bar.done();
  return { boxes: n, layers, active: iso.layers, cpuAccounting: ctx.env.cpu.method };
}
