// `npx tsx docs/perf/lesson-threads.ts [rounds]`: the lesson read on Lab and on the bare baseline
// (bench/baseline/bare-server.ts), loaded in turn, with each server's main thread's user and system CPU
// and context switches per request read from /proc/<pid>/task/<pid>/ (no profiler: a sampling profiler
// charges time spent waiting to run again to the last function, which on this VM is mostly `writev`).
// Uses bench/lib read-only; writes nothing in the repo.
import fs from 'node:fs';
import { runLoad } from '../../bench/lib/load.ts';
import { startBare } from '../../bench/lib/profile.ts';
import { lessonReadSetup } from './lesson-setup.ts';

const rounds = Number(process.argv[2] ?? 3);

function mainThread(pid: number) {
  const stat = fs.readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = fs.readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  const count = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)![1]);
  // USER_HZ is 100: 10 ms per tick.
  return {
    user: Number(f[11]) * 10,
    system: Number(f[12]) * 10,
    voluntary: count('voluntary_ctxt_switches'),
    involuntary: count('nonvoluntary_ctxt_switches'),
  };
}

const { env, ctx, progress, lessonPath, headers, close } = await lessonReadSetup({
  tag: 'th',
  segmentS: 4,
  connections: 32,
});
try {
  const servers = [
    ['Lab', await env.startLab(1, 1, { SHUTDOWN_GRACE_MS: '0' })],
    ['bare', await startBare(ctx)],
  ] as const;
  const lines: string[] = [];
  for (let r = 1; r <= rounds; r++)
    for (const [name, proc] of servers) {
      const url = proc.url! + lessonPath;
      await runLoad({ url, connections: 32, durationS: 1, headers, label: `${name} warm-up` });
      const a = mainThread(proc.pid);
      const load = await runLoad({ url, connections: 32, durationS: 4, headers, label: `${name} round ${r}` });
      const b = mainThread(proc.pid);
      const per = (x: number, y: number, scale: number) => (((y - x) * scale) / load.requests).toFixed(scale === 1 ? 2 : 1);
      lines.push(
        `round ${r} ${name.padEnd(4)} ${Math.round(load.rps)} req/s (2xx), main thread user ${per(a.user, b.user, 1000)} µs, ` +
          `system ${per(a.system, b.system, 1000)} µs per request; context switches per request: voluntary ` +
          `${per(a.voluntary, b.voluntary, 1)}, involuntary ${per(a.involuntary, b.involuntary, 1)}`,
      );
    }
  progress.stop();
  for (const line of lines) console.log(line);
} finally {
  await close();
}
