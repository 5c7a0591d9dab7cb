import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { type Cluster, startCluster } from '../../deploy/ha/cluster.ts';
import { runMigrations } from '../../src/db/migrate.ts';
import type { Ctx } from '../lib/context.ts';
import type { Proc } from '../lib/env.ts';
import { runLoad } from '../lib/load.ts';
import { cpuMs, machineBusyMs, postgresCpuMs } from '../lib/procstat.ts';
import { seedCourse } from '../lib/seed.ts';
import { Recorder, round } from '../lib/stats.ts';
import { mergeLoads } from './read.ts';

/** One configuration's measured window. */
interface ConfigRun {
  config: 'primary' | 'replicas';
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
  /** CPU ms per request: API instances, each Postgres node by role, HAProxy. */
  appCpuMsPerRequest: number;
  primaryCpuMsPerRequest: number;
  replicaCpuMsPerRequest: number[];
  haproxyCpuMsPerRequest: number;
  /** Cores busy during the window. */
  cores: {
    app: number;
    primary: number;
    replicas: number[];
    haproxy: number;
    loadGen: number;
    machine: number;
  };
  /** Ack of a commit on the primary → replayed on each replica, ms (commits at ~50/s during the load). */
  lagMs: number[][];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentileOf(xs: number[], p: number): number {
  const r = new Recorder();
  for (const x of xs) r.record(x);
  return r.at(p);
}

/**
 * Commits on the primary at ~50/s and times, for each replica, how long after the commit's ack the
 * replica has replayed it (polling pg_last_wal_replay_lsn() on a connection of its own). Runs until
 * `stop` resolves.
 */
async function sampleLag(cluster: Cluster, replicas: string[], stop: Promise<void>): Promise<number[][]> {
  let running = true;
  void stop.then(() => {
    running = false;
  });
  const primary = new pg.Client({ connectionString: cluster.adminUrl() });
  const nodes = replicas.map((n) => new pg.Client({ connectionString: cluster.adminUrl(n) }));
  for (const c of [primary, ...nodes]) {
    c.on('error', () => {});
    await c.connect();
  }
  const samples: number[][] = replicas.map(() => []);
  try {
    while (running) {
      const t0 = performance.now();
      const { rows } = await primary.query<{ lsn: string }>(
        'insert into bench_lag default values returning pg_current_wal_insert_lsn()::text as lsn',
      );
      const acked = performance.now();
      await Promise.all(
        nodes.map(async (c, i) => {
          for (let n = 0; n < 100_000; n++) {
            const r = await c.query<{ ok: boolean }>('select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [
              rows[0]!.lsn,
            ]);
            if (r.rows[0]!.ok) break;
          }
          samples[i]!.push(performance.now() - acked);
        }),
      );
      await sleep(Math.max(0, 20 - (performance.now() - t0)));
    }
  } finally {
    await Promise.all([primary, ...nodes].map((c) => c.end().catch(() => {})));
  }
  return samples;
}

/**
 * Scenario 7: reads from replicas. The highly available Postgres of deploy/ha (etcd, 3 Patroni nodes
 * with synchronous replication, HAProxy), 2 Lab instances, the lesson page read by students who have not
 * written (so every read may go to a replica) — once with every read on the primary, once with
 * DATABASE_READ_URL on HAProxy's replica port, in interleaved rounds. Per configuration: req/s, latency,
 * CPU per request of every node, and the replicas' replay lag under that load.
 */
export async function replicasScenario(ctx: Ctx) {
  if (ctx.opts.url) throw new Error('replicas starts its own database cluster; it cannot run with --url');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-bench-ha-'));
  const cluster = await startCluster({ dir, killOnExit: true, log: (l) => ctx.log(`cluster: ${l}`) });
  const runs: ConfigRun[] = [];
  try {
    await runMigrations(cluster.url());
    const admin = new pg.Pool({ connectionString: cluster.url(), max: 2 });
    admin.on('error', () => {});
    const course = await seedCourse(admin, {
      tag: `r${Date.now() % 1e6}`,
      students: 50,
      lessons: 4,
      exercisesPerLesson: 3,
    });
    await admin.end();
    await cluster.query(
      cluster.adminUrl(),
      'create table bench_lag (id bigserial primary key, at timestamptz default now())',
    );
    const members = await cluster.members();
    const primaryNode = members.find((m) => m.role === 'leader')!.name;
    const replicaNodes = members.filter((m) => m.role !== 'leader').map((m) => m.name);
    const lessonPath = `/api/v1/lessons/${course.lessonIds[0]}`;
    const rounds = ctx.opts.quick ? 1 : 2;
    const durationS = ctx.opts.quick ? 3 : ctx.opts.durationS;
    const connections = Math.max(8, Math.round(ctx.opts.connections / 2));
    for (let r = 0; r < rounds; r++)
      for (const config of ['primary', 'replicas'] as const) {
        if (Date.now() > ctx.softDeadline) break;
        const extra: Record<string, string> = {
          DATABASE_URL: cluster.url(),
          SHUTDOWN_GRACE_MS: '0',
          ...(config === 'replicas' ? { DATABASE_READ_URL: cluster.url('replicas') } : {}),
        };
        const procs: Proc[] = [];
        try {
          for (let i = 0; i < 2; i++) procs.push(await ctx.env.startLab(i + 1, 2, extra));
          const load = (seconds: number, label: string) =>
            Promise.all(
              procs.map((p, i) =>
                runLoad({
                  url: p.url! + lessonPath,
                  connections,
                  durationS: seconds,
                  headers: { authorization: `Bearer ${course.students[i]!.token}` },
                  label,
                  progress: i === 0 ? ctx.progress : undefined,
                }),
              ),
            );
          const label = `${config === 'primary' ? 'primary alone' : '1 primary + 2 replicas'} (round ${r + 1})`;
          await load(ctx.opts.quick ? 1 : 2, `${label} warm-up`);
          const pm = (n: string) => cluster.postmasterOf(n)!;
          const nodeCpu = () => [primaryNode, ...replicaNodes].map((n) => postgresCpuMs(pm(n)));
          const haproxy = cluster.pidOf('haproxy')!;
          const app0 = procs.reduce((s, p) => s + p.cpuMs(), 0);
          const nodes0 = nodeCpu();
          const hap0 = cpuMs(haproxy);
          const self0 = ctx.env.benchCpuMs();
          const machine0 = machineBusyMs();
          let stopLag!: () => void;
          const lag = sampleLag(cluster, replicaNodes, new Promise<void>((res) => (stopLag = res)));
          const t0 = performance.now();
          const results = await load(durationS, label);
          const wallMs = performance.now() - t0;
          stopLag();
          const lagMs = await lag;
          const app = procs.reduce((s, p) => s + p.cpuMs(), 0) - app0;
          const nodes = nodeCpu().map((c, i) => c - nodes0[i]!);
          const hap = cpuMs(haproxy) - hap0;
          const m = mergeLoads(results);
          const per = (x: number) => (m.requests ? round(x / m.requests, 4) : 0);
          const cores = (x: number) => round(x / wallMs, 2);
          const run: ConfigRun = {
            config,
            rps: m.rps,
            p50: m.latency.p50,
            p99: m.latency.p99,
            errors: m.failed,
            requests: m.requests,
            appCpuMsPerRequest: per(app),
            primaryCpuMsPerRequest: per(nodes[0]!),
            replicaCpuMsPerRequest: nodes.slice(1).map(per),
            haproxyCpuMsPerRequest: per(hap),
            cores: {
              app: cores(app),
              primary: cores(nodes[0]!),
              replicas: nodes.slice(1).map(cores),
              haproxy: cores(hap),
              loadGen: cores(ctx.env.benchCpuMs() - self0),
              machine: cores(machineBusyMs() - machine0),
            },
            lagMs,
          };
          runs.push(run);
          ctx.log(
            `${label}: ${run.rps} rps, p50 ${run.p50} ms, p99 ${run.p99} ms; CPU ms/req app ${run.appCpuMsPerRequest}, primary ${run.primaryCpuMsPerRequest}, replicas ${run.replicaCpuMsPerRequest.join(' / ')}, haproxy ${run.haproxyCpuMsPerRequest}; lag p50/p99 ${lagMs.map((l) => `${round(percentileOf(l, 50), 2)}/${round(percentileOf(l, 99), 2)}`).join(', ')} ms; errors ${run.errors}`,
          );
        } finally {
          await Promise.all(procs.map((p) => p.stop()));
        }
      }
    return summarise(runs, replicaNodes.length);
  } finally {
    await cluster.destroy().catch((err) => ctx.log(`cluster teardown: ${err}`));
  }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

function summarise(runs: ConfigRun[], replicas: number) {
  const of = (config: ConfigRun['config']) => {
    const rs = runs.filter((r) => r.config === config);
    if (!rs.length) return null;
    const requests = rs.reduce((s, r) => s + r.requests, 0);
    const weighted = (f: (r: ConfigRun) => number) =>
      round(rs.reduce((s, r) => s + f(r) * r.requests, 0) / requests, 4);
    const median = [...rs].sort((a, b) => a.rps - b.rps)[Math.floor(rs.length / 2)]!;
    const lag = (i: number) => rs.flatMap((r) => r.lagMs[i] ?? []);
    return {
      rounds: rs.map((r) => ({ rps: r.rps, p99: r.p99 })),
      rps: median.rps,
      p50: median.p50,
      p99: median.p99,
      errors: rs.reduce((s, r) => s + r.errors, 0),
      appCpuMsPerRequest: weighted((r) => r.appCpuMsPerRequest),
      primaryCpuMsPerRequest: weighted((r) => r.primaryCpuMsPerRequest),
      replicaCpuMsPerRequest: Array.from({ length: replicas }, (_, i) =>
        weighted((r) => r.replicaCpuMsPerRequest[i] ?? 0),
      ),
      haproxyCpuMsPerRequest: weighted((r) => r.haproxyCpuMsPerRequest),
      cores: median.cores,
      lag: Array.from({ length: replicas }, (_, i) => ({
        samples: lag(i).length,
        p50: round(percentileOf(lag(i), 50), 2),
        p99: round(percentileOf(lag(i), 99), 2),
        max: round(Math.max(0, ...lag(i)), 2),
      })),
    };
  };
  const primary = of('primary');
  const withReplicas = of('replicas');
  return {
    cores: os.cpus().length,
    replicas,
    primary,
    withReplicas,
    capacity:
      primary && withReplicas
        ? replicaCapacity(
            primary.primaryCpuMsPerRequest,
            withReplicas.primaryCpuMsPerRequest,
            // What the replicas spend anyway (replay, the lag probe) is not the reads' cost.
            Math.max(0, sum(withReplicas.replicaCpuMsPerRequest) - sum(primary.replicaCpuMsPerRequest)),
          )
        : null,
  };
}

/**
 * "How many replicas for N students": the Postgres CPU of a replica-eligible read, on the primary alone
 * (`alone`) and split between primary (`primaryPart`: the caller lookup) and replicas (`replicaPart`)
 * with DATABASE_READ_URL. Assumptions (stated in the report): 0.1 requests/s per active student, a
 * peak of 3×, 80 % of requests replica-eligible (pages, progress, gradebook) while the rest (sign-ins,
 * submissions, /me, events) costs what a read costs on the primary alone, database nodes of 4 cores kept
 * under 70 % busy, and one replica more than the load needs so that losing one keeps reads off the primary.
 */
export function replicaCapacity(alone: number, primaryPart: number, replicaPart: number) {
  const perStudent = 0.1;
  const peak = 3;
  const eligible = 0.8;
  const nodeCores = 4;
  const headroom = 0.7;
  return [10_000, 100_000, 1_000_000].map((students) => {
    const peakRps = students * perStudent * peak;
    const primaryAloneCores = (peakRps * alone) / 1000;
    const primaryCores = (peakRps * (eligible * primaryPart + (1 - eligible) * alone)) / 1000;
    const replicaCores = (peakRps * eligible * replicaPart) / 1000;
    const forLoad = Math.ceil(replicaCores / (nodeCores * headroom));
    return {
      students,
      peakRps: Math.round(peakRps),
      primaryAloneCores: round(primaryAloneCores, 2),
      primaryCores: round(primaryCores, 2),
      replicaCores: round(replicaCores, 2),
      replicas: Math.max(2, forLoad + 1),
    };
  });
}
