import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { API_NODE_FLAGS } from '../../src/cluster/node-flags.ts';
import { freePort } from '../../src/db/embedded.ts';
import type { Ctx } from './context.ts';
import { ROOT } from './env.ts';
import { runLoad } from './load.ts';
import { round } from './stats.ts';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export interface ProfileSummary {
  samples: number;
  /** Share of busy samples by where the code lives (package, Lab source folder, Node internals). */
  byArea: { area: string; pct: number }[];
  /** Functions with the most self time. */
  topFunctions: { fn: string; area: string; pct: number }[];
  /** System calls per request (strace -c over a fixed number of requests), when strace is available. */
  syscalls?: { total: number; top: { name: string; perRequest: number }[] } | null;
}

function areaOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) {
    const parts = url.slice(5).split('/');
    return `node:${parts[0] === 'internal' ? `internal/${parts[1] ?? ''}` : parts[0]}`.replace(/\.js$/, '');
  }
  const rel = path.relative(ROOT, url.replace(/^file:\/\//, ''));
  if (!rel.startsWith('..')) return `lab ${path.dirname(rel)}`;
  return path.basename(url);
}

/**
 * Summarises a .cpuprofile: self time by area and by function, idle excluded, only samples taken
 * between `fromMs` and `toMs` after the profile started (the load window, not start-up or shutdown).
 */
export function summariseProfile(file: string, fromMs = 0, toMs = Number.POSITIVE_INFINITY): ProfileSummary {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    nodes: CpuProfileNode[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const hitsById = new Map<number, number>();
  let t = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += (profile.timeDeltas[i] ?? 0) / 1000;
    if (t < fromMs || t > toMs) continue;
    const id = profile.samples[i]!;
    hitsById.set(id, (hitsById.get(id) ?? 0) + 1);
  }
  const areas = new Map<string, number>();
  const fns = new Map<string, { fn: string; area: string; hits: number }>();
  let total = 0;
  for (const [id, hits] of hitsById) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') continue;
    total += hits;
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + hits);
    const key = `${functionName}@${url}:${lineNumber}`;
    const f = fns.get(key) ?? {
      fn: `${functionName || '(anonymous)'}${url ? `:${lineNumber + 1}` : ''}`,
      area,
      hits: 0,
    };
    f.hits += hits;
    fns.set(key, f);
  }
  const pct = (h: number) => round((100 * h) / Math.max(1, total), 1);
  return {
    samples: total,
    byArea: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 40)
      .map(([area, h]) => ({ area, pct: pct(h) })),
    topFunctions: [...fns.values()]
      .sort((a, b) => b.hits - a.hits)
      .slice(0, 12)
      .map((f) => ({ fn: f.fn, area: f.area, pct: pct(f.hits) })),
  };
}

/**
 * A separate run of one server under `node --cpu-prof` (the profiler slows it, so this is not a
 * measured run): Lab (`lab serve`) or the bare baseline, with the same load as the measured runs.
 */
export async function profileServer(
  ctx: Ctx,
  kind: 'lab' | 'bare',
  pathAndQuery: string,
  headers: Record<string, string>,
  seconds: number,
): Promise<ProfileSummary | null> {
  if (ctx.opts.url) return null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-prof-'));
  const prof = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
  try {
    const spawnedAt = performance.now();
    const server =
      kind === 'lab'
        ? await ctx.env.startLab(1, 1, { SHUTDOWN_GRACE_MS: '0' }, prof)
        : await startBare(ctx, prof);
    const from = performance.now() - spawnedAt;
    await runLoad({
      url: server.url! + pathAndQuery,
      connections: ctx.opts.connections,
      durationS: seconds,
      headers,
      label: `${kind} under --cpu-prof`,
      progress: ctx.progress,
    });
    const to = performance.now() - spawnedAt;
    const syscalls = await syscallsPerRequest(server.pid, server.url! + pathAndQuery, headers);
    await server.stop();
    const file = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) {
      ctx.log(`no CPU profile written for ${kind} (the process did not exit cleanly)`);
      return null;
    }
    const summary = { ...summariseProfile(path.join(dir, file), from, to), syscalls };
    ctx.log(
      `profile ${kind}: ${summary.byArea
        .slice(0, 5)
        .map((a) => `${a.area} ${a.pct}%`)
        .join(', ')}`,
    );
    return summary;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The bare node:http + pg baseline server (bench/baseline/bare-server.ts), with the V8 flags Lab's API
 * servers run with unless told otherwise, so the two compare code, not runtime settings.
 */
export async function startBare(
  ctx: Ctx,
  nodeArgs: readonly string[] = [],
  v8Flags: readonly string[] = API_NODE_FLAGS,
) {
  const port = await freePort();
  return ctx.env.spawnNode(
    'bare-node-http',
    [...v8Flags, ...nodeArgs, '--import', 'tsx', 'bench/baseline/bare-server.ts'],
    { DATABASE_URL: ctx.env.bareDatabaseUrl, PORT: String(port), POOL_MAX: '4' },
    { port, path: '/readyz' },
  );
}

/** Counts the server's system calls over a fixed number of requests with `strace -c -f`. */
async function syscallsPerRequest(pid: number, url: string, headers: Record<string, string>) {
  const requests = 2000;
  const out = path.join(os.tmpdir(), `lab-strace-${pid}.txt`);
  let strace: ChildProcess;
  try {
    strace = spawn('strace', ['-c', '-f', '-p', String(pid), '-o', out], { stdio: 'ignore' });
  } catch {
    return null;
  }
  const failed = await new Promise<boolean>((resolve) => {
    strace.once('error', () => resolve(true));
    setTimeout(() => resolve(strace.exitCode !== null), 700);
  });
  if (failed) return null;
  await runLoad({ url, connections: 8, durationS: 30, amount: requests, headers, label: 'strace -c' });
  const exited = new Promise((r) => strace.once('exit', r));
  strace.kill('SIGINT');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  try {
    const text = fs.readFileSync(out, 'utf8');
    const rows: { name: string; perRequest: number }[] = [];
    let total = 0;
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      // % time, seconds, usecs/call, calls, [errors], syscall
      if (f.length < 5 || !/^\d/.test(f[0]!) || f.at(-1) === 'total') continue;
      const calls = Number(f[3]);
      if (!Number.isFinite(calls)) continue;
      total += calls;
      rows.push({ name: f.at(-1)!, perRequest: round(calls / requests, 2) });
    }
    rows.sort((a, b) => b.perRequest - a.perRequest);
    return { total: round(total / requests, 2), top: rows.slice(0, 6) };
  } catch {
    return null;
  } finally {
    fs.rmSync(out, { force: true });
  }
}
