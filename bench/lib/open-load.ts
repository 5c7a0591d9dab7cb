import http from 'node:http';
import { sleep } from './env.ts';
import type { Progress } from './progress.ts';
import { type Latency, Recorder, round } from './stats.ts';

/*
 * An open-model load generator: requests start on a fixed schedule (one every 1000/rate ms) whether or
 * not earlier ones have been answered, over a pool of keep-alive connections. Latency is counted from
 * each request's scheduled start, not from when it was sent, so neither a slow server (requests wait
 * for a free connection) nor a late generator (its timer fired late) hides a delay: the correction for
 * coordinated omission that wrk2 makes, applied to every request rather than estimated afterwards.
 * The time from when the generator issued each request is kept too, and how late it issued it against
 * the schedule, so a generator that fell behind shows.
 */

export interface OpenLoadOptions {
  /** Full URL on loopback. */
  url: string;
  ratePerS: number;
  durationS: number;
  headers?: Record<string, string>;
  method?: string;
  /** Connections the generator may open; a request finding all busy waits (and that wait counts). */
  maxConnections: number;
  /** A request not answered within this is a failure. */
  timeoutMs?: number;
  label: string;
  progress?: Progress;
}

export interface OpenLoadResult {
  ratePerS: number;
  durationS: number;
  /** Requests scheduled (and issued). */
  scheduled: number;
  /** 2xx responses. */
  ok: number;
  /** 2xx responses per second of the schedule: what was served, not what was sent. */
  okPerS: number;
  non2xx: number;
  /** Connection errors and time-outs. */
  errors: number;
  timeouts: number;
  /** Requests still unanswered when the run gave up waiting for them (also failures). */
  unfinished: number;
  /** non2xx + errors + unfinished. */
  failed: number;
  statuses: Record<string, number>;
  /** Of the 2xx responses, from the scheduled start (corrected for coordinated omission). */
  latency: Latency;
  /** Of the 2xx responses, from when the generator issued the request (its own lateness left out). */
  serviceTime: Latency;
  /** How late the generator issued requests against their schedule, ms. */
  lateness: { p50: number; p99: number; max: number };
  curve: { percentile: number; ms: number }[];
}

/** When request i of a fixed-rate schedule is due, ms after the start. */
export function dueAt(i: number, ratePerS: number): number {
  return (i * 1000) / ratePerS;
}

export async function runOpenLoad(opts: OpenLoadOptions): Promise<OpenLoadResult> {
  if (!/^https?:\/\/(127\.0\.0\.1|localhost)[:/]/.test(opts.url))
    throw new Error(`refusing to load a non-loopback address: ${opts.url}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.maxConnections });
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const total = Math.max(1, Math.round(opts.ratePerS * opts.durationS));
  const latency = new Recorder();
  const service = new Recorder();
  const lateness = new Recorder();
  const statuses: Record<string, number> = {};
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;
  let pending = 0;
  const bar = opts.progress?.phase(opts.label, opts.durationS, 's');
  const once = (due: number) => {
    const sent = performance.now();
    lateness.record(Math.max(0, sent - due));
    pending += 1;
    const req = http.request(opts.url, {
      method: opts.method ?? 'GET',
      agent,
      headers: opts.headers,
      timeout: timeoutMs,
    });
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      pending -= 1;
      return true;
    };
    req.on('response', (res) => {
      res.on('data', () => {});
      res.on('end', () => {
        if (!settle()) return;
        const status = res.statusCode ?? 0;
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (status >= 200 && status < 300) {
          ok += 1;
          const end = performance.now();
          latency.record(end - due);
          service.record(end - sent);
        } else non2xx += 1;
      });
      res.on('error', () => {
        if (settle()) errors += 1;
      });
    });
    req.on('timeout', () => {
      if (settle()) {
        timeouts += 1;
        errors += 1;
      }
      req.destroy();
    });
    req.on('error', () => {
      if (settle()) errors += 1;
    });
    req.end();
  };
  const start = performance.now();
  let i = 0;
  while (i < total) {
    const now = performance.now();
    // Everything already due goes out now (a late timer issues its backlog at once, counted from the schedule).
    while (i < total && start + dueAt(i, opts.ratePerS) <= now) {
      once(start + dueAt(i, opts.ratePerS));
      i += 1;
    }
    bar?.update((now - start) / 1000, `${ok} ok`);
    if (i < total) await sleep(Math.max(0, start + dueAt(i, opts.ratePerS) - performance.now()));
  }
  const waitUntil = performance.now() + timeoutMs + 1000;
  while (pending > 0 && performance.now() < waitUntil) await sleep(20);
  const unfinished = pending;
  agent.destroy();
  bar?.done();
  const late = lateness.summary();
  return {
    ratePerS: opts.ratePerS,
    durationS: opts.durationS,
    scheduled: total,
    ok,
    okPerS: round(ok / opts.durationS, 1),
    non2xx,
    errors,
    timeouts,
    unfinished,
    failed: non2xx + errors + unfinished,
    statuses,
    latency: latency.summary(),
    serviceTime: service.summary(),
    lateness: { p50: late.p50, p99: late.p99, max: late.max },
    curve: latency.curve(),
  };
}
