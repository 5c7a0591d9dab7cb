import os from 'node:os';
import { type Ctx, withLab } from '../lib/context.ts';
import { round } from '../lib/stats.ts';
import { combineRounds, type HttpMeasure, measureHttp } from './read.ts';

/**
 * Scenario 5: the read path with 1, 2 and 3 Lab instances, each loaded by its own autocannon run, and
 * a capacity model from the measured CPU per request of the app and of Postgres.
 */
export async function scalingScenario(ctx: Ctx) {
  if (ctx.opts.url) throw new Error('scaling starts its own instances; it cannot run with --url');
  const lessonPath = `/api/v1/lessons/${ctx.course.lessonIds[0]}`;
  const headers = { authorization: `Bearer ${ctx.course.students[0]!.token}` };
  const rounds = ctx.opts.quick ? 1 : 2;
  const segmentS = ctx.opts.quick ? 3 : Math.max(3, Math.round(ctx.opts.durationS / 2));
  // Three instances start once; each configuration loads the first n of them (idle ones cost nothing),
  // and the configurations take turns round by round so noise spreads over all of them.
  const byN = new Map<number, HttpMeasure[]>([
    [1, []],
    [2, []],
    [3, []],
  ]);
  await withLab(
    ctx,
    3,
    async (urls, procs) => {
      for (let r = 0; r < rounds; r++)
        for (const n of [1, 2, 3]) {
          const perInstance = Math.max(8, Math.round(ctx.opts.connections / n));
          byN
            .get(n)!
            .push(
              await measureHttp(
                ctx,
                `${n} instance${n > 1 ? 's' : ''} (round ${r + 1})`,
                urls.slice(0, n),
                procs.slice(0, n),
                lessonPath,
                headers,
                perInstance,
                { warmS: r === 0 ? undefined : 0, durationS: segmentS },
              ),
            );
        }
    },
    { SHUTDOWN_GRACE_MS: '0' },
  );
  const runs = [1, 2, 3].map((n) => combineRounds(byN.get(n)!));
  const one = runs[0]!;
  return {
    cores: os.cpus().length,
    rounds,
    segmentS,
    runs: runs.map((r) => ({
      instances: r.instances,
      rps: r.rps,
      p50: r.latency.p50,
      p99: r.latency.p99,
      errors: r.failed,
      appCpuMsPerRequest: r.appCpuMsPerRequest,
      pgCpuMsPerRequest: r.pgCpuMsPerRequest,
      appCores: r.appCores,
      pgCores: r.pgCores,
      loadGenCores: r.loadGenCores,
      machineCores: r.machineCores,
      othersCores: r.othersCores,
      speedup: round(r.rps / one.rps, 2),
    })),
    capacity: capacityModel(one.appCpuMsPerRequest, one.pgCpuMsPerRequest),
  };
}

/**
 * Students → requests/s → cores. Assumptions (stated in the report): an active student makes one
 * request every 10 s on average (page views, polling-free thanks to SSE), peaks are 3× that, an
 * instance is kept below 70 % of one core, and a Postgres connection serves about one core's worth of
 * statements, so a pool of ~2 connections per database core per instance is past the knee
 * (DESIGN.md: throughput peaks at 2–8 active connections per couple of cores).
 */
export function capacityModel(appMs: number | null, pgMs: number | null) {
  if (appMs == null || pgMs == null) return null;
  const requestsPerStudentPerS = 0.1;
  const peakFactor = 3;
  const headroom = 0.7;
  return [1_000, 10_000, 100_000].map((students) => {
    const peakRps = students * requestsPerStudentPerS * peakFactor;
    const appCores = (peakRps * appMs) / 1000;
    const pgCores = (peakRps * pgMs) / 1000;
    const instances = Math.max(2, Math.ceil(appCores / headroom));
    const dbCores = Math.max(2, Math.ceil(pgCores / headroom));
    // Enough connections to keep every database core busy across the fleet, at least 2 per instance.
    const poolPerInstance = Math.max(2, Math.ceil((dbCores * 2) / instances));
    return {
      students,
      peakRps: Math.round(peakRps),
      appCores: round(appCores, 2),
      pgCores: round(pgCores, 2),
      instances,
      dbCores,
      poolPerInstance,
      totalConnections: instances * poolPerInstance,
    };
  });
}
