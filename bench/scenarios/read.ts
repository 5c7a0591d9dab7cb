import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { bareStatements, pgbenchScript } from '../baseline/sql.ts';
import { type Ctx, resetStatements, statementStats, withLab } from '../lib/context.ts';
import { BARE_ROLE, type Proc } from '../lib/env.ts';
import { type LoadResult, runLoad } from '../lib/load.ts';
import { machineBusyMs, nodeOptionsOf, threadCpuMs } from '../lib/procstat.ts';
import { profileServer, startBare } from '../lib/profile.ts';
import { ratio, round } from '../lib/stats.ts';

const run = promisify(execFile);

export interface HttpMeasure extends LoadResult {
  label: string;
  /** Responses during the warm-up before this measurement (not measured; pg_stat_statements sees them). */
  warmRequests: number;
  instances: number;
  /** CPU ms of the server process(es) per request; null when the server is not ours (--url). */
  appCpuMsPerRequest: number | null;
  /**
   * The servers' CPU ms per request split by thread: main threads, and their other threads (V8's GC and
   * compiler helpers, libuv's pool); from /proc/<pid>/task, so free of a sampling profiler's bias.
   */
  threadCpuMsPerRequest: { main: number; others: number } | null;
  /** CPU ms of all Postgres processes per request (includes nothing else: the bench has its own pool idle). */
  pgCpuMsPerRequest: number | null;
  /** Share of the measured wall time the server processes were on a CPU (1 = one full core). */
  appCores: number | null;
  pgCores: number | null;
  /** Cores busy in the load generator (this process) and in the whole machine during the run. */
  loadGenCores: number;
  machineCores: number;
  /** Cores busy with processes outside this measurement (neighbours), when all of ours are known. */
  othersCores: number | null;
}

/**
 * Loads each URL with its own autocannon run at the same time (one per instance) after a warm-up,
 * and divides the CPU the server processes and Postgres used by the requests served.
 */
export async function measureHttp(
  ctx: Ctx,
  label: string,
  urls: string[],
  procs: Proc[],
  pathAndQuery: string,
  headers: Record<string, string>,
  connectionsPerUrl: number,
  timing: { warmS?: number; durationS?: number } = {},
): Promise<HttpMeasure> {
  const warmS = timing.warmS ?? (ctx.opts.quick ? 1 : 2);
  const durationS = timing.durationS ?? ctx.opts.durationS;
  let warmRequests = 0;
  if (warmS > 0)
    warmRequests = (
      await Promise.all(
        urls.map((u) =>
          runLoad({
            url: u + pathAndQuery,
            connections: connectionsPerUrl,
            durationS: warmS,
            headers,
            label: `${label} warm-up`,
          }),
        ),
      )
    ).reduce((sum, r) => sum + r.requests, 0);
  const cpu0 = procs.reduce((s, p) => s + p.cpuMs(), 0);
  const threads0 = procs.map((p) => threadCpuMs(p.pid));
  const pg0 = ctx.env.pgCpuMs();
  const self0 = ctx.env.benchCpuMs();
  const machine0 = machineBusyMs();
  const t0 = performance.now();
  const results = await Promise.all(
    urls.map((u, i) =>
      runLoad({
        url: u + pathAndQuery,
        connections: connectionsPerUrl,
        durationS,
        headers,
        label,
        progress: i === 0 ? ctx.progress : undefined,
      }),
    ),
  );
  const wallMs = performance.now() - t0;
  const cpu1 = procs.reduce((s, p) => s + p.cpuMs(), 0);
  const threads1 = procs.map((p) => threadCpuMs(p.pid));
  const pg1 = ctx.env.pgCpuMs();
  const loadGenCores = round((ctx.env.benchCpuMs() - self0) / wallMs, 2);
  const machineCores = round((machineBusyMs() - machine0) / wallMs, 2);
  // CPU per request divides by every response the servers produced (a 503 costs CPU too).
  const requests = results.reduce((s, r) => s + r.requests, 0);
  const merged = mergeLoads(results);
  const own = procs.length > 0;
  const m: HttpMeasure = {
    ...merged,
    warmRequests,
    label,
    instances: urls.length,
    appCpuMsPerRequest: own && requests ? round((cpu1 - cpu0) / requests, 4) : null,
    threadCpuMsPerRequest: own && requests ? perThread(threads0, threads1, requests) : null,
    pgCpuMsPerRequest: pg0 != null && pg1 != null && requests ? round((pg1 - pg0) / requests, 4) : null,
    appCores: own ? round((cpu1 - cpu0) / wallMs, 2) : null,
    pgCores: pg0 != null && pg1 != null ? round((pg1 - pg0) / wallMs, 2) : null,
    loadGenCores,
    machineCores,
    othersCores:
      own && pg0 != null && pg1 != null
        ? round(Math.max(0, machineCores - loadGenCores - (cpu1 - cpu0 + pg1 - pg0) / wallMs), 2)
        : null,
  };
  ctx.log(
    `${label}: ${m.rps} rps (2xx), p50 ${m.latency.p50} ms, p99 ${m.latency.p99} ms, app ${m.appCpuMsPerRequest} ms CPU/req, pg ${m.pgCpuMsPerRequest} ms CPU/req, cores busy: app ${m.appCores} pg ${m.pgCores} loadgen ${m.loadGenCores} others ${m.othersCores} machine ${m.machineCores}, failures ${m.failed} (non-2xx ${m.non2xx}, errors ${m.errors})`,
  );
  return m;
}

/** Main-thread and other-thread CPU per request of the servers, summed; null if one was gone. */
function perThread(
  before: ({ main: number; others: number } | null)[],
  after: ({ main: number; others: number } | null)[],
  requests: number,
): { main: number; others: number } | null {
  let main = 0;
  let others = 0;
  for (let i = 0; i < before.length; i++) {
    const a = before[i];
    const b = after[i];
    if (!a || !b) return null;
    main += b.main - a.main;
    others += b.others - a.others;
  }
  return { main: round(main / requests, 4), others: round(others / requests, 4) };
}

/** Several simultaneous runs as one: summed throughput, the worst percentile of any run. */
export function mergeLoads(rs: LoadResult[]): LoadResult {
  if (rs.length === 1) return rs[0]!;
  const worst = (f: (r: LoadResult) => number) => Math.max(...rs.map(f));
  const sum = (f: (r: LoadResult) => number) => rs.reduce((s, r) => s + f(r), 0);
  return {
    rps: round(
      sum((r) => r.rps),
      1,
    ),
    requests: sum((r) => r.requests),
    ok: sum((r) => r.ok),
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    failed: sum((r) => r.failed),
    durationS: worst((r) => r.durationS),
    connections: rs.reduce((s, r) => s + r.connections, 0),
    latency: {
      p50: worst((r) => r.latency.p50),
      p90: worst((r) => r.latency.p90),
      p99: worst((r) => r.latency.p99),
      p999: worst((r) => r.latency.p999),
      max: worst((r) => r.latency.max),
      mean: round(
        rs.reduce((s, r) => s + r.latency.mean * r.ok, 0) /
          Math.max(
            1,
            sum((r) => r.ok),
          ),
      ),
    },
    curve: rs[0]!.curve.map((c, i) => ({
      percentile: c.percentile,
      ms: Math.max(...rs.map((r) => r.curve[i]!.ms)),
    })),
  };
}

export interface PgbenchResult {
  clients: number;
  statements: number;
  tps: number;
  latency: { p50: number; p99: number; mean: number };
  pgCpuMsPerTransaction: number | null;
  command: string;
}

export interface SameResponse {
  /** Same status, content type and body, byte for byte. */
  identical: boolean;
  lab: { status: number; contentType: string | null; bytes: number };
  bare: { status: number; contentType: string | null; bytes: number };
  /** Where the bodies first differ, with some context, when they do. */
  firstDifference: string | null;
}

/** One request to each server: whether they answer the lesson read alike. */
export async function sameResponse(
  labUrl: string,
  bareUrl: string,
  path_: string,
  headers: Record<string, string>,
): Promise<SameResponse> {
  const get = async (base: string) => {
    const res = await fetch(`${base}${path_}`, { headers });
    return {
      status: res.status,
      contentType: res.headers.get('content-type'),
      body: Buffer.from(await res.arrayBuffer()),
    };
  };
  const [a, b] = [await get(labUrl), await get(bareUrl)];
  let at = 0;
  while (at < Math.min(a.body.length, b.body.length) && a.body[at] === b.body[at]) at++;
  const sameBody = a.body.equals(b.body);
  const around = (buf: Buffer) =>
    JSON.stringify(buf.subarray(Math.max(0, at - 20), at + 40).toString('utf8'));
  return {
    identical: a.status === b.status && a.contentType === b.contentType && sameBody,
    lab: { status: a.status, contentType: a.contentType, bytes: a.body.length },
    bare: { status: b.status, contentType: b.contentType, bytes: b.body.length },
    firstDifference: sameBody ? null : `at byte ${at}: Lab ${around(a.body)}, bare ${around(b.body)}`,
  };
}

/** pgbench running the same two statements as one transaction script, with a per-transaction log. */
export async function runPgbench(ctx: Ctx, clients: number, lessonId: string): Promise<PgbenchResult | null> {
  const student = ctx.course.students[0]!;
  const { rows } = await ctx.env.admin.query<{ h: string }>(
    `select encode(sha256(convert_to($1, 'UTF8')), 'hex') as h`,
    [student.token],
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-pgbench-'));
  const script = path.join(dir, 'lesson.sql');
  fs.writeFileSync(script, pgbenchScript(rows[0]!.h, lessonId, student.id, bareStatements()));
  const args = [
    '-n',
    '-M',
    'prepared',
    '-c',
    String(clients),
    '-j',
    String(Math.min(clients, os.cpus().length)),
    '-T',
    String(ctx.opts.durationS),
    '-f',
    script,
    '-l',
    '--log-prefix',
    path.join(dir, 'tx'),
    ctx.env.databaseUrl,
  ];
  const bar = ctx.progress.phase(`pgbench -c ${clients}`, ctx.opts.durationS, 's');
  const started = Date.now();
  const tick = setInterval(() => bar.update((Date.now() - started) / 1000), 1000);
  const pg0 = ctx.env.pgCpuMs();
  try {
    const { stdout } = await run('pgbench', args, { timeout: (ctx.opts.durationS + 30) * 1000 });
    const pg1 = ctx.env.pgCpuMs();
    const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1] ?? 0);
    const latencies: number[] = [];
    for (const f of fs.readdirSync(dir).filter((n) => n.startsWith('tx'))) {
      for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
        const us = Number(line.split(' ')[2]);
        if (line && Number.isFinite(us)) latencies.push(us / 1000);
      }
    }
    latencies.sort((a, b) => a - b);
    const at = (p: number) =>
      round(latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] ?? 0, 3);
    const mean = latencies.reduce((s, x) => s + x, 0) / Math.max(1, latencies.length);
    const r: PgbenchResult = {
      clients,
      statements: bareStatements(),
      tps: round(tps, 1),
      latency: { p50: at(50), p99: at(99), mean: round(mean, 3) },
      pgCpuMsPerTransaction:
        pg0 != null && pg1 != null && latencies.length ? round((pg1 - pg0) / latencies.length, 4) : null,
      command: `pgbench ${args.slice(0, -6).join(' ')} -f lesson.sql <url>`,
    };
    ctx.log(`pgbench -c ${clients}: ${r.tps} tps, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms`);
    return r;
  } catch (err) {
    ctx.log(`pgbench failed: ${(err as Error).message.split('\n')[0]}`);
    return null;
  } finally {
    clearInterval(tick);
    bar.done();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Medians over interleaved rounds: on a shared machine a neighbour's burst hits one segment, not a
 * whole configuration. Throughput and latency come from the median round; CPU per request from all.
 */
export function combineRounds(
  rounds: HttpMeasure[],
): HttpMeasure & { rounds: { rps: number; p99: number }[] } {
  const sorted = [...rounds].sort((a, b) => a.rps - b.rps);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const requests = rounds.reduce((sum, r) => sum + r.requests, 0);
  const cpu = (f: (r: HttpMeasure) => number | null) =>
    rounds.every((r) => f(r) != null) && requests
      ? round(rounds.reduce((sum, r) => sum + f(r)! * r.requests, 0) / requests, 4)
      : null;
  return {
    ...median,
    requests,
    warmRequests: rounds.reduce((sum, r) => sum + r.warmRequests, 0),
    ok: rounds.reduce((sum, r) => sum + r.ok, 0),
    non2xx: rounds.reduce((sum, r) => sum + r.non2xx, 0),
    errors: rounds.reduce((sum, r) => sum + r.errors, 0),
    timeouts: rounds.reduce((sum, r) => sum + r.timeouts, 0),
    failed: rounds.reduce((sum, r) => sum + r.failed, 0),
    appCpuMsPerRequest: cpu((r) => r.appCpuMsPerRequest),
    threadCpuMsPerRequest: threadsOf(
      cpu((r) => r.threadCpuMsPerRequest?.main ?? null),
      cpu((r) => r.threadCpuMsPerRequest?.others ?? null),
    ),
    pgCpuMsPerRequest: cpu((r) => r.pgCpuMsPerRequest),
    rounds: rounds.map((r) => ({ rps: r.rps, p99: r.latency.p99 })),
  };
}

const threadsOf = (main: number | null, others: number | null) =>
  main === null || others === null ? null : { main, others };

export function median(xs: number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const TARGET_RATIO = 0.85;

/** Connections open now under an application_name (what a pool really holds, not what it was told). */
async function connectionsOf(ctx: Ctx, applicationName: string): Promise<number> {
  const { rows } = await ctx.env.admin.query<{ n: number }>(
    'select count(*)::int as n from pg_stat_activity where application_name = $1',
    [applicationName],
  );
  return rows[0]!.n;
}

/** Statements per request from pg_stat_statements: calls of a role's statements (the bench's own excluded). */
function statementsPerRequest(
  statements: { query: string; calls: number }[],
  requests: number,
): number | null {
  if (!requests || !statements.length) return null;
  const calls = statements
    .filter((s) => !/pg_stat_activity|pg_settings|pg_catalog|pg_database/i.test(s.query))
    .reduce((sum, s) => sum + s.calls, 0);
  return round(calls / requests, 3);
}

/**
 * Scenario 1: Lab's lesson read vs. a bare node:http server and pgbench running the lesson read (one
 * statement by default, see baseline/sql.ts). Closed loop (autocannon); rps counts 2xx responses only.
 */
export async function readScenario(ctx: Ctx) {
  const lessonId = ctx.course.lessonIds[0]!;
  const student = ctx.course.students[0]!;
  const headers = { authorization: `Bearer ${student.token}` };
  const path_ = `/api/v1/lessons/${lessonId}`;
  const conns = ctx.opts.connections;
  const rounds = ctx.opts.quick ? 2 : 3;
  const segmentS = ctx.opts.quick ? 2 : Math.max(3, Math.round(ctx.opts.durationS / 2));

  await resetStatements(ctx);
  // Both servers stay up (an idle one costs nothing) and are loaded in turn: Lab, bare, Lab, bare, …
  const observed = {
    labPoolConnections: 0,
    barePoolConnections: 0,
    bareConfig: null as unknown,
    nodeOptions: { lab: null as string[] | null, bare: null as string[] | null },
    responses: null as SameResponse | null,
  };
  const { lab, bare } = await withLab(
    ctx,
    1,
    async (urls, procs) => {
      const bareProc = await startBare(ctx);
      observed.bareConfig = await fetch(`${bareProc.url}/config`)
        .then((r) => r.json())
        .catch(() => null);
      observed.nodeOptions = {
        lab: procs[0] ? nodeOptionsOf(procs[0].pid) : null,
        bare: nodeOptionsOf(bareProc.pid),
      };
      observed.responses = await sameResponse(urls[0]!, bareProc.url!, path_, headers);
      try {
        const labRuns: HttpMeasure[] = [];
        const bareRuns: HttpMeasure[] = [];
        for (let r = 0; r < rounds; r++) {
          const warmS = r === 0 ? undefined : 0;
          labRuns.push(
            await measureHttp(ctx, `Lab round ${r + 1}`, urls, procs, path_, headers, conns, {
              warmS,
              durationS: segmentS,
            }),
          );
          bareRuns.push(
            await measureHttp(
              ctx,
              `bare round ${r + 1}`,
              [bareProc.url!],
              [bareProc],
              path_,
              headers,
              conns,
              {
                warmS,
                durationS: segmentS,
              },
            ),
          );
          // The pools just served 32 connections' worth of load: what they hold is their real size.
          observed.labPoolConnections = Math.max(
            observed.labPoolConnections,
            await connectionsOf(ctx, `lab:${procs[0] ? 'bench-api-1' : ''}`),
          );
          observed.barePoolConnections = Math.max(
            observed.barePoolConnections,
            await connectionsOf(ctx, 'lab:bench-bare'),
          );
        }
        return { lab: combineRounds(labRuns), bare: combineRounds(bareRuns) };
      } finally {
        await bareProc.stop();
      }
    },
    { SHUTDOWN_GRACE_MS: '0' },
  );
  const labRole = ctx.env.labRole;
  const labStatements = await statementStats(ctx, labRole, 8);
  const bareStatementList =
    ctx.env.bareDatabaseUrl !== ctx.env.databaseUrl ? await statementStats(ctx, BARE_ROLE, 4) : [];
  // Warm-up requests count too: pg_stat_statements was reset before the first warm-up.
  const labRequestsAll = lab.requests + lab.warmRequests;
  const bareRequestsAll = bare.requests + bare.warmRequests;

  const pgbench = await runPgbench(ctx, 4, lessonId);
  const profileS = ctx.opts.quick ? 3 : 5;
  const profile = {
    lab: await profileServer(ctx, 'lab', path_, headers, profileS),
    bare: await profileServer(ctx, 'bare', path_, headers, profileS),
  };
  const roundRatios = lab.rounds.map((l, i) => l.rps / bare.rounds[i]!.rps);
  const labVsBare = ratio(median(roundRatios), 1);
  // Only servers that answer alike are compared: a baseline doing less work is no ceiling.
  const comparable = observed.responses?.identical === true;
  ctx.log(`Lab/bare per round: ${roundRatios.map((x) => x.toFixed(2)).join(', ')} → median ${labVsBare}`);
  return {
    profile,
    connections: conns,
    /** Connections each server's pool held after a round under load (pg_stat_activity), not a setting. */
    observed,
    rounds,
    segmentS,
    lab,
    bare,
    pgbench,
    ratios: {
      labVsBare,
      roundRatios: roundRatios.map((x) => round(x, 3)),
      labVsPgbench: ratio(lab.rps, pgbench?.tps),
      bareVsPgbench: ratio(bare.rps, pgbench?.tps),
      labCpuVsBareCpu: ratio(lab.appCpuMsPerRequest, bare.appCpuMsPerRequest),
      // Throughput per core implied by CPU per request: less sensitive to neighbours than req/s.
      labVsBareByCpu: ratio(bare.appCpuMsPerRequest, lab.appCpuMsPerRequest),
    },
    statementsPerRequest: {
      lab: statementsPerRequest(labStatements, labRequestsAll),
      bare: statementsPerRequest(bareStatementList, bareRequestsAll),
    },
    failures: lab.failed + bare.failed,
    // Issue 13: Lab ≥ 0.85× the bare server in 2xx req/s and in app CPU per request, 1 statement per
    // read, and no failed request in either server's runs.
    target: {
      ratio: TARGET_RATIO,
      statements: 1,
      rpsMet: comparable && (labVsBare ?? 0) >= TARGET_RATIO && lab.failed + bare.failed === 0,
      cpuMet:
        comparable &&
        (ratio(bare.appCpuMsPerRequest, lab.appCpuMsPerRequest) ?? 0) >= TARGET_RATIO &&
        lab.failed + bare.failed === 0,
      // Readiness probes and background statements (LISTEN, queue metrics) add a little to the calls.
      statementsMet: (statementsPerRequest(labStatements, labRequestsAll) ?? 99) < 1.05,
    },
    statements: { lab: labStatements, bare: bareStatementList },
  };
}
