// `npx tsx docs/perf/lesson-read.ts [rounds] [segmentSeconds]`: GET /api/v1/lessons/:id on Lab against two
// bare node:http + pg servers — bench/baseline/bare-server.ts (caller lookup + lesson: 2 statements, as
// bench/ measures) and bench/baseline/bare-server.ts with BARE_CALLER_CACHE=1 (the caller kept in a Map, then Lab's one
// statement) — loaded in turn (Lab, bare-1, bare-2, Lab, …) so a noisy neighbour hits segments, not a
// configuration; and bench/baseline/fastify-server.ts (bare-1's work served by Fastify with its defaults).
// Then each server once under --cpu-prof. Prints per-round figures, median ratios and
// the profiles grouped by where the time goes. Uses bench/lib read-only; writes nothing in the repo.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { API_NODE_FLAGS } from '../../src/cluster/node-flags.ts';
import { freePort } from '../../src/db/embedded.ts';
import type { BenchEnv, Proc } from '../../bench/lib/env.ts';
import { runLoad } from '../../bench/lib/load.ts';
import { startBare, summariseProfile } from '../../bench/lib/profile.ts';
import { type HttpMeasure, measureHttp, median } from '../../bench/scenarios/read.ts';
import { lessonReadSetup } from './lesson-setup.ts';

const rounds = Number(process.argv[2] ?? 4);
const segmentS = Number(process.argv[3] ?? 3);
const connections = 32;

// Every server runs with the V8 flags Lab's API servers run with (src/cluster/node-flags.ts).
function startBareOne(env: BenchEnv, port: number, nodeArgs: readonly string[] = []): Promise<Proc> {
  return env.spawnNode(
    'bare-one-statement',
    [...API_NODE_FLAGS, ...nodeArgs, '--import', 'tsx', 'bench/baseline/bare-server.ts'],
    { DATABASE_URL: env.bareDatabaseUrl, PORT: String(port), POOL_MAX: '4', BARE_CALLER_CACHE: '1' },
    { port, path: '/readyz' },
  );
}

/** Areas of the profile (package, Node internals, Lab folders) grouped by what they do. */
function groupOf(area: string): string {
  if (/^(fastify|find-my-way|avvio|fast-json-stringify|@fastify\/|light-my-request|fast-querystring|fast-uri|toad-cache|process-warning|abstract-logging|rfdc|secure-json-parse|ajv|json-schema-ref-resolver)/.test(area))
    return 'Fastify (routing, hooks runner, reply, validation, serialization)';
  if (/^(pg|pg-protocol|pg-pool|pg-types|postgres-|pgpass|pg-connection-string)/.test(area)) return 'pg protocol (pg, pg-protocol, pg-pool, pg-types)';
  if (area === 'drizzle-orm') return 'Drizzle (prepared query execute, row mapping)';
  // Lab runs compiled (dist/) in the bench, from src/ through tsx otherwise: the same folders.
  const lab = area.replace(/^lab (src|dist)/, 'lab');
  if (lab.startsWith('lab/http') || lab === 'lab') return 'Lab hooks and auth (http/, app)';
  if (lab.startsWith('lab/db')) return 'Lab db (pool wrapper, read replicas)';
  if (lab.startsWith('lab/modules')) return 'Lab route handlers (modules/)';
  if (area.startsWith('lab bench') || area.startsWith('lab docs')) return 'baseline server code';
  if (area === 'prom-client') return 'prom-client (metrics)';
  if (area === 'pino' || area.startsWith('pino')) return 'pino (logging)';
  if (area === '(garbage collector)') return 'GC';
  if (area === '(native)') return 'native (writev/read syscalls, JSON, crypto bindings, microtasks)';
  if (area.startsWith('node:')) return 'Node core (http, net, streams, events, timers)';
  return `other (${area})`;
}

async function profile(kind: string, start: (args: string[]) => Promise<Proc>, url: string, headers: Record<string, string>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-prof-'));
  const t0 = performance.now();
  const proc = await start(['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  const from = performance.now() - t0;
  const load = await runLoad({ url: proc.url! + url, connections, durationS: 5, headers, label: `${kind} under --cpu-prof` });
  const to = performance.now() - t0;
  await proc.stop();
  const file = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return null;
  const s = summariseProfile(path.join(dir, file), from, to);
  fs.copyFileSync(path.join(dir, file), path.join(os.tmpdir(), `lesson-read-${kind}.cpuprofile`));
  fs.rmSync(dir, { recursive: true, force: true });
  const groups = new Map<string, number>();
  for (const a of s.byArea) groups.set(groupOf(a.area), (groups.get(groupOf(a.area)) ?? 0) + a.pct);
  // Samples are taken every 1 ms of CPU-or-wait (--cpu-prof-interval default 1000 µs), idle excluded:
  // busy µs per request = samples × 1000 / requests.
  const busyUsPerRequest = (s.samples * 1000) / Math.max(1, load.requests);
  return {
    ...s,
    requests: load.requests,
    busyUsPerRequest: Math.round(busyUsPerRequest),
    groups: [...groups.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([g, pct]) => ({ group: g, pct: Math.round(pct * 10) / 10, usPerRequest: Math.round((pct / 100) * busyUsPerRequest * 10) / 10 })),
  };
}

const { env, ctx, lessonPath, headers, close } = await lessonReadSetup({ tag: 'p', segmentS, connections });
try {
  const lab = await env.startLab(1, 1, { SHUTDOWN_GRACE_MS: '0' });
  const bare2 = await startBare(ctx);
  const bare1 = await startBareOne(env, await freePort());
  const fastifyPort = await freePort();
  const fastify = await env.spawnNode(
    'fastify-bare',
    [...API_NODE_FLAGS, '--import', 'tsx', 'bench/baseline/fastify-server.ts'],
    { DATABASE_URL: env.bareDatabaseUrl, PORT: String(fastifyPort), POOL_MAX: '4' },
    { port: fastifyPort, path: '/readyz' },
  );
  const runs: Record<string, HttpMeasure[]> = { lab: [], bare1: [], bare2: [], fastify: [] };
  await env.admin.query('select pg_stat_statements_reset()').catch(() => {});
  for (let r = 0; r < rounds; r++) {
    for (const [name, proc] of [['lab', lab], ['bare1', bare1], ['bare2', bare2], ['fastify', fastify]] as const) {
      runs[name]!.push(
        await measureHttp(ctx, `${name} round ${r + 1}`, [proc.url!], [proc], lessonPath, headers, connections, {
          warmS: r === 0 ? 1 : 0,
          durationS: segmentS,
        }),
      );
    }
  }
  const statements = env.pgStatStatements
    ? (
        await env.admin.query(
          `select rolname as role, calls, round(mean_exec_time::numeric, 4) as mean_ms, left(regexp_replace(query, '\\s+', ' ', 'g'), 60) as query
             from pg_stat_statements s join pg_roles r on r.oid = s.userid
            where query not ilike '%pg_stat_statements%' and calls > 5 order by calls desc limit 8`,
        )
      ).rows
    : [];
  await Promise.all([lab.stop(), bare1.stop(), bare2.stop(), fastify.stop()]);
  const perRound = (a: string, b: string, f: (m: HttpMeasure) => number | null, invert = false) =>
    runs[a]!.map((m, i) => {
      const x = f(m);
      const y = f(runs[b]![i]!);
      return x && y ? (invert ? y / x : x / y) : null;
    }).filter((x): x is number => x !== null);
  const fmt = (xs: number[]) => `${xs.map((x) => x.toFixed(2)).join(', ')} → median ${median(xs)?.toFixed(2)}`;
  const summary = {
    date: new Date().toISOString(),
    loadAverage: os.loadavg(),
    rounds: Object.fromEntries(
      Object.entries(runs).map(([k, ms]) => [k, ms.map((m) => ({ rps: m.rps, cpuMsPerReq: m.appCpuMsPerRequest, pgCpuMsPerReq: m.pgCpuMsPerRequest, p99: m.latency.p99, errors: m.errors + m.non2xx, otherCores: m.othersCores }))]),
    ),
    ratios: {
      rpsLabVsBare1: fmt(perRound('lab', 'bare1', (m) => m.rps)),
      cpuLabVsBare1: fmt(perRound('lab', 'bare1', (m) => m.appCpuMsPerRequest, true)),
      rpsLabVsBare2: fmt(perRound('lab', 'bare2', (m) => m.rps)),
      cpuLabVsBare2: fmt(perRound('lab', 'bare2', (m) => m.appCpuMsPerRequest, true)),
      // Fastify itself, doing bare-1's work: the part of the gap that is the prescribed framework.
      rpsFastifyVsBare1: fmt(perRound('fastify', 'bare1', (m) => m.rps)),
      cpuFastifyVsBare1: fmt(perRound('fastify', 'bare1', (m) => m.appCpuMsPerRequest, true)),
      rpsLabVsFastify: fmt(perRound('lab', 'fastify', (m) => m.rps)),
      cpuLabVsFastify: fmt(perRound('lab', 'fastify', (m) => m.appCpuMsPerRequest, true)),
    },
    statements,
  };
  console.log(JSON.stringify(summary, null, 2));
  const profiles = {
    lab: await profile('lab', (args) => env.startLab(2, 1, { SHUTDOWN_GRACE_MS: '0' }, args), lessonPath, headers),
    bare1: await profile('bare1', async (args) => startBareOne(env, await freePort(), args), lessonPath, headers),
  };
  console.log(JSON.stringify(profiles, null, 2));
  fs.writeFileSync(path.join(os.tmpdir(), 'lesson-read-summary.json'), JSON.stringify({ summary, profiles }, null, 2));
} finally {
  await close();
}
