// `npx tsx docs/perf/node-flags.ts [configs] [rounds]`: the lesson read on Lab and on the bare baseline
// (bench/baseline/bare-server.ts, caller lookup + lesson) started with different V8 young-generation
// sizes, loaded in turn round after round so a noisy neighbour hits segments, not a configuration.
// A config is `lab` or `bare`, optionally `:<MB>` for --max-semi-space-size (none = V8's default), e.g.
// the default `lab,lab:64,bare,bare:64`. Prints app CPU per request and 2xx requests/s per round and
// their medians. Uses bench/lib read-only; writes nothing in the repo.
import type { Proc } from '../../bench/lib/env.ts';
import { startBare } from '../../bench/lib/profile.ts';
import { measureHttp, median } from '../../bench/scenarios/read.ts';
import { lessonReadSetup } from './lesson-setup.ts';

const configs = (process.argv[2] ?? 'lab,lab:64,bare,bare:64').split(',');
const rounds = Number(process.argv[3] ?? 5);
const { env, ctx, progress, lessonPath, headers, close } = await lessonReadSetup({ tag: 'nf', segmentS: 4, connections: 32 });
try {
  const procs: Record<string, Proc> = {};
  let index = 1;
  for (const config of configs) {
    const [kind, mb] = config.split(':');
    const v8Flags = mb ? [`--max-semi-space-size=${mb}`] : [];
    procs[config] =
      kind === 'bare'
        ? await startBare(ctx, [], v8Flags)
        : await env.startLab(index++, 1, { SHUTDOWN_GRACE_MS: '0' }, [], v8Flags);
  }
  const results: Record<string, { cpu: number[]; rps: number[] }> = {};
  for (let r = 0; r < rounds; r++)
    for (const config of configs) {
      const proc = procs[config]!;
      const m = await measureHttp(ctx, `${config} round ${r + 1}`, [proc.url!], [proc], lessonPath, headers, 32, {
        warmS: r === 0 ? 1 : 0,
        durationS: 4,
      });
      const result = (results[config] ??= { cpu: [], rps: [] });
      result.cpu.push(m.appCpuMsPerRequest ?? Number.NaN);
      result.rps.push(m.rps);
    }
  progress.stop();
  for (const config of configs) {
    const { cpu, rps } = results[config]!;
    console.log(
      `${config.padEnd(10)} app CPU/request ${median(cpu)!.toFixed(3)} ms [${cpu.map((x) => x.toFixed(3)).join(' ')}]` +
        `  2xx req/s ${Math.round(median(rps)!)} [${rps.map(Math.round).join(' ')}]`,
    );
  }
} finally {
  await close();
}
