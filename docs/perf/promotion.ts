// `npx tsx docs/perf/promotion.ts [rounds]`: the lesson read on Lab, on bench/baseline/fastify-server.ts
// and on the bare baseline, loaded in turn under --trace-gc: per round, CPU µs per request of each
// server's main thread and of its other threads (V8's GC helpers), the scavenges (count, mean pause),
// bytes allocated and bytes promoted to the old generation per request (growth of the heap after
// consecutive scavenges), and the mark-compacts. SERVERS=Lab,bare picks servers; LAB_ENV="K=V …" and
// LAB_FLAGS="--flag …" change Lab's environment and V8 flags. SERVERS=Lab,Lab2 with LAB2_ENV="K=V …" loads
// a second Lab instance beside the first, for A/B rounds of a throw-away build that reads a switch from
// its environment (how docs/perf/lesson-read-profile.md priced each per-request step). Writes nothing in
// the repo.
import { API_NODE_FLAGS } from '../../src/cluster/node-flags.ts';
import { freePort } from '../../src/db/embedded.ts';
import type { Proc } from '../../bench/lib/env.ts';
import { runLoad } from '../../bench/lib/load.ts';
import { threadCpuMs } from '../../bench/lib/procstat.ts';
import { startBare } from '../../bench/lib/profile.ts';
import { lessonReadSetup } from './lesson-setup.ts';

const rounds = Number(process.argv[2] ?? 2);
/** "K=V K2=V2" from an environment variable, as an environment. */
const envFrom = (name: string) =>
  Object.fromEntries((process.env[name] ?? '').split(' ').filter(Boolean).map((kv) => kv.split('=')));
const flagsFrom = (name: string) => (process.env[name] ?? '').split(' ').filter(Boolean);
const byThread = (pid: number) => threadCpuMs(pid) ?? { main: 0, others: 0 };

const { env, ctx, progress, lessonPath, headers, close } = await lessonReadSetup({ tag: 'g2', segmentS: 4, connections: 32 });
try {
  const starters: Record<string, () => Promise<Proc>> = {
    Lab: () => env.startLab(1, 1, { SHUTDOWN_GRACE_MS: '0', ...envFrom('LAB_ENV') }, ['--trace-gc', ...flagsFrom('LAB_FLAGS')]),
    Lab2: () => env.startLab(2, 1, { SHUTDOWN_GRACE_MS: '0', ...envFrom('LAB2_ENV') }, ['--trace-gc']),
    fastify: async () => {
      const port = await freePort();
      return env.spawnNode(
        'fastify',
        [...API_NODE_FLAGS, '--trace-gc', '--import', 'tsx', 'bench/baseline/fastify-server.ts'],
        { DATABASE_URL: env.bareDatabaseUrl, PORT: String(port), POOL_MAX: '4' },
        { port, path: '/readyz' },
      );
    },
    bare: () => startBare(ctx, ['--trace-gc']),
  };
  const servers: [string, Proc][] = [];
  for (const name of (process.env.SERVERS ?? 'Lab,fastify,bare').split(','))
    servers.push([name, await starters[name]!()]);
  const traces: Record<string, string[]> = {};
  let recording = '';
  for (const [name, proc] of servers) {
    traces[name] = [];
    proc.child.stdout!.on('data', (c: Buffer) => {
      if (recording === name) traces[name]!.push(...c.toString().split('\n').filter((l) => l.includes('Mark') || l.includes('Scav')));
    });
  }
  const lines: string[] = [];
  for (let r = 1; r <= rounds; r++)
    for (const [name, proc] of servers) {
      const url = proc.url! + lessonPath;
      await runLoad({ url, connections: 32, durationS: 1, headers, label: `${name} warm-up` });
      const a = byThread(proc.pid);
      traces[name] = [];
      recording = name;
      const load = await runLoad({ url, connections: 32, durationS: 4, headers, label: `${name} round ${r}` });
      recording = '';
      const b = byThread(proc.pid);
      const sc = traces[name]!.filter((l) => l.includes('Scavenge')).map((l) => {
        const m = /Scavenge ([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB, ([\d.]+) \/ ([\d.]+) ms/.exec(l)!;
        return { before: Number(m[1]), after: Number(m[3]), ms: Number(m[5]) };
      });
      const mc = traces[name]!.filter((l) => l.includes('Mark-Compact')).length;
      let grow = 0, n = 0;
      for (let i = 1; i < sc.length; i++) { const d = sc[i]!.after - sc[i - 1]!.after; if (d > -1) { grow += d; n++; } }
      const alloc = sc.reduce((s, x, i) => s + (i ? x.before - sc[i - 1]!.after : 0), 0);
      const perReq = (x: number) => ((x * 1e6) / load.requests).toFixed(0);
      lines.push(`round ${r} ${name.padEnd(7)} ${Math.round(load.rps)} req/s; µs/req main ${(((b.main - a.main) * 1000) / load.requests).toFixed(1)} helpers ${(((b.others - a.others) * 1000) / load.requests).toFixed(1)}; scavenges ${sc.length} mean ${(sc.reduce((s, x) => s + x.ms, 0) / Math.max(1, sc.length)).toFixed(2)} ms, alloc ~${perReq(alloc)} B/req, promoted ~${n ? perReq((grow / n) * sc.length) : '?'} B/req; mark-compacts ${mc}`);
    }
  progress.stop();
  for (const line of lines) console.log(line);
} finally {
  await close();
}
