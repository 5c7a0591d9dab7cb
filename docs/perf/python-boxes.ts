// `npx tsx docs/perf/python-boxes.ts [jobs] [rounds]`: the Python sandbox alone (no database, no grader),
// a 3-test submission graded `jobs` times with 4 at once, by a sandbox that starts 1 box at a time
// (PYTHON_BOX_STARTS=1, the default) and by one that starts up to 4; the two alternate round after round.
// Prints CPU per submission (this process and every process it started: utime + stime + cutime + cstime)
// and wall time per submission. Then, for scale, spawning /bin/true one at a time and two at a time.
// Run as root, as the grader runs. Writes nothing in the repo.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PythonSandbox } from '../../src/grading/python/py-sandbox.ts';
import type { SandboxJob } from '../../src/grading/sandbox.types.ts';

const jobs = Number(process.argv[2] ?? 60);
const rounds = Number(process.argv[3] ?? 3);
const atOnce = 4;

/** CPU ms of this process and its reaped children. */
function cpuMs(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
}

const job: SandboxJob = {
  code: 'def add(a, b):\n    return a + b\n',
  entrypoint: 'add',
  tests: [0, 1, 2].map((i) => ({ kind: 'call' as const, argsJson: `[${i}, 2]` })),
  timeMs: 2000,
  memoryMb: 64,
  totalMs: 10_000,
};

async function measure(sandbox: PythonSandbox, n: number, concurrency: number) {
  const c0 = cpuMs();
  const t0 = performance.now();
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) if ((await sandbox.run(job)).kind !== 'ran') failed++;
    }),
  );
  return { cpu: (cpuMs() - c0) / n, wall: (performance.now() - t0) / n, failed };
}

const configs = { 'starts 1 at a time': 1, 'starts up to 4': 4 };
const sandboxes = Object.entries(configs).map(([name, startsAtOnce]) => ({
  name,
  sandbox: new PythonSandbox({ startsAtOnce }),
  cpu: [] as number[],
  wall: [] as number[],
}));
for (const s of sandboxes) {
  const refusal = await s.sandbox.unavailable();
  if (refusal) throw new Error(refusal);
  await measure(s.sandbox, 4, 1);
}
for (let r = 0; r < rounds; r++)
  for (const s of sandboxes) {
    const m = await measure(s.sandbox, jobs, atOnce);
    if (m.failed) throw new Error(`${m.failed} submissions not graded`);
    s.cpu.push(m.cpu);
    s.wall.push(m.wall);
  }
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const list = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(' ');
for (const s of sandboxes)
  console.log(
    `${s.name.padEnd(20)} ${atOnce} submissions at once: CPU/submission ${median(s.cpu).toFixed(1)} ms [${list(s.cpu)}]` +
      `, wall/submission ${median(s.wall).toFixed(1)} ms [${list(s.wall)}]`,
  );

async function spawnTrue(n: number, concurrency: number) {
  const c0 = cpuMs();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) await new Promise((resolve) => spawn('/bin/true').on('close', resolve));
    }),
  );
  return `CPU/spawn ${((cpuMs() - c0) / n).toFixed(1)} ms, wall/spawn ${((performance.now() - t0) / n).toFixed(1)} ms`;
}
const rssMb = Math.round(process.memoryUsage().rss / 1e6);
for (const concurrency of [1, 2, 1, 2])
  console.log(`/bin/true from this process (RSS ${rssMb} MB), ${concurrency} at a time: ${await spawnTrue(200, concurrency)}`);
