import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import client from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuAccounts, procTreeCpuMs } from '../bench/lib/cpu-account.ts';
import { dueAt, runOpenLoad } from '../bench/lib/open-load.ts';
import { nodeOptionsOf, threadCpuMs } from '../bench/lib/procstat.ts';
import { parseRuntime, runtimeBetween, scrapeRuntime } from '../bench/lib/runtime-metrics.ts';
import { Recorder } from '../bench/lib/stats.ts';
import { capacitySentence, classroomCapacity } from '../bench/report/capacity.ts';
import { sameResponse } from '../bench/scenarios/read.ts';
import { until } from './wait.ts';

// The benchmark's own measuring pieces: the open-model generator's coordinated-omission handling,
// percentiles, and the CPU accounts that must see a process's children.

// Spins until it has used 400 ms of CPU (not wall time: the machine may be busy).
const BUSY = 'const t = process.cpuUsage(); while (process.cpuUsage(t).user < 400000) {}';

function exited(child: ReturnType<typeof spawn>) {
  return new Promise<void>((resolve) => child.once('exit', () => resolve()));
}

describe('Recorder', () => {
  it('gives nearest-rank percentiles', () => {
    const r = new Recorder();
    for (let i = 1; i <= 100; i++) r.record(i);
    expect(r.at(50)).toBe(50);
    expect(r.at(99)).toBe(99);
    expect(r.summary()).toMatchObject({ count: 100, p50: 50, p99: 99, max: 100, mean: 50.5 });
  });
});

describe('open-model load', () => {
  let server: http.Server;
  let url: string;
  let stallUntil = 0;
  let status = 200;
  beforeAll(async () => {
    // Answers at once, except while stalled: then every response waits for the stall to end.
    server = http.createServer((_req, res) => {
      const wait = Math.max(0, stallUntil - performance.now());
      setTimeout(() => res.writeHead(status).end('ok'), wait);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('schedules at a fixed rate', () => {
    expect(dueAt(0, 200)).toBe(0);
    expect(dueAt(200, 200)).toBe(1000);
    expect(dueAt(3, 4)).toBe(750);
  });

  it('counts the wait of every request scheduled during a stall, not just the one that met it', async () => {
    status = 200;
    // A 400 ms stall from the start: about 40 requests are scheduled while the server holds responses.
    stallUntil = performance.now() + 400;
    const r = await runOpenLoad({ url, ratePerS: 100, durationS: 1, maxConnections: 1, label: 'test' });
    expect(r.scheduled).toBe(100);
    expect(r.ok).toBe(100);
    expect(r.failed).toBe(0);
    // A closed-loop client would record one slow request; from the schedule, every waiting one counts.
    expect(r.latency.p95).toBeGreaterThan(50);
    expect(r.latency.max).toBeGreaterThan(300);
  });

  it('counts non-2xx responses as failures and not as served', async () => {
    status = 503;
    stallUntil = 0;
    const r = await runOpenLoad({ url, ratePerS: 50, durationS: 0.4, maxConnections: 4, label: 'test' });
    expect(r.ok).toBe(0);
    expect(r.okPerS).toBe(0);
    expect(r.non2xx).toBe(20);
    expect(r.failed).toBe(20);
    expect(r.statuses).toEqual({ 503: 20 });
  });
});

describe('read baseline check', () => {
  const servers: http.Server[] = [];
  const serve = async (body: string, type = 'application/json; charset=utf-8') => {
    const server = http.createServer((req, res) => {
      // Answers only the request the check makes, with its header.
      if (req.url !== '/api/v1/lessons/x' || req.headers.authorization !== 'Bearer t')
        res.writeHead(404).end();
      else res.writeHead(200, { 'content-type': type }).end(body);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  afterAll(() => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))));
  const headers = { authorization: 'Bearer t' };

  it('finds two servers alike only when status, content type and body are the same', async () => {
    const body = '{"lesson":{"id":"1","publishedAt":null},"exercises":[]}';
    const same = await sameResponse(await serve(body), await serve(body), '/api/v1/lessons/x', headers);
    expect(same).toMatchObject({
      identical: true,
      firstDifference: null,
      lab: { status: 200, bytes: body.length },
    });

    const shorter = await sameResponse(
      await serve(body),
      await serve('{"lesson":{"id":"1"},"exercises":[]}'),
      '/api/v1/lessons/x',
      headers,
    );
    expect(shorter.identical).toBe(false);
    expect(shorter.firstDifference).toMatch(/^at byte 19: Lab .*publishedAt.*, bare /);

    const otherType = await sameResponse(
      await serve(body),
      await serve(body, 'text/plain'),
      '/api/v1/lessons/x',
      headers,
    );
    expect(otherType.identical).toBe(false);
    expect(otherType.firstDifference).toBeNull();
  });
});

describe('CPU accounts', () => {
  it("includes a process's reaped children in its /proc tree", async () => {
    const before = procTreeCpuMs(process.pid);
    const child = spawn(process.execPath, ['-e', BUSY]);
    await exited(child);
    expect(procTreeCpuMs(process.pid) - before).toBeGreaterThanOrEqual(250);
  });

  it('counts a grandchild that was orphaned (reparented away from the tree) when cgroups are available', async (ctx) => {
    const accounts = CpuAccounts.detect();
    if (accounts.method === 'proc-tree') ctx.skip();
    const account = accounts.create('test');
    try {
      // The child starts a busy grandchild in the background and exits at once: the grandchild is
      // reparented to init, and its CPU never reaches the child's (or our) cutime.
      const done = path.join(os.tmpdir(), `bench-measure-${process.pid}`);
      const script = `${BUSY}; require('fs').writeFileSync('${done}', '')`;
      const cmd = account.wrap('/bin/sh', ['-c', `${process.execPath} -e "${script}" & exit 0`]);
      const child = spawn(cmd.file, cmd.args, { stdio: 'ignore' });
      const pid = child.pid!;
      await exited(child);
      for (let i = 0; i < 500 && !fs.existsSync(done); i++) await new Promise((r) => setTimeout(r, 100));
      fs.rmSync(done, { force: true });
      expect(account.cpuMs(pid)).toBeGreaterThanOrEqual(350);
    } finally {
      account.remove();
      accounts.close();
    }
  }, 60_000);
});

describe('settings read from the running system', () => {
  it("reads a Node process's options back from /proc, up to its script", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-opts-'));
    const script = path.join(dir, 'wait.mjs');
    fs.writeFileSync(script, "process.stdin.resume(); process.stdout.write('up');");
    const child = spawn(
      process.execPath,
      ['--max-semi-space-size=64', '--import', 'node:os', script, 'serve'],
      {
        stdio: ['pipe', 'pipe', 'ignore'],
      },
    );
    try {
      await new Promise((resolve) => child.stdout!.once('data', resolve));
      expect(nodeOptionsOf(child.pid!)).toEqual(['--max-semi-space-size=64', '--import', 'node:os']);
    } finally {
      child.stdin!.end();
      await exited(child);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(nodeOptionsOf(child.pid!)).toBeNull();
  });
});

describe('CPU by thread', () => {
  it("tells a process's main thread from its other threads", async () => {
    // The main thread spins 400 ms of CPU, then a worker thread does, then both wait.
    const script = `
      const { Worker } = require('node:worker_threads');
      ${BUSY}
      const w = new Worker(\`
        const { parentPort } = require('node:worker_threads');
        const c = require('node:process').cpuUsage;
        const start = c();
        while (c(start).user < 400000) {}
        parentPort.postMessage('spun');
        setInterval(() => {}, 1000);
      \`, { eval: true });
      w.once('message', () => process.stdout.write('up'));`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await new Promise((resolve) => child.stdout!.once('data', resolve));
      const cpu = threadCpuMs(child.pid!)!;
      expect(cpu.main).toBeGreaterThanOrEqual(380);
      expect(cpu.others).toBeGreaterThanOrEqual(380);
    } finally {
      child.kill();
      await exited(child);
    }
    expect(threadCpuMs(child.pid!)).toBeNull();
  });
});

describe('classroom CPU arithmetic', () => {
  const step = (students: number, complete: boolean, api: number, pg: number, gen: number) => ({
    students,
    errors: complete ? 0 : 12,
    wallS: 40,
    coresBy: {
      'lab-api-1': api / 2,
      'lab-api-2': api / 2,
      'lab-grader-1': 0.05,
      postgres: pg,
      generators: gen,
    },
  });

  it('takes the marginal cost between the smallest and largest complete steps; steps with errors do not count', () => {
    const cap = classroomCapacity(
      [step(400, true, 0.2, 0.1, 0.05), step(800, true, 0.4, 0.2, 0.09), step(1600, false, 0.5, 0.3, 0.1)],
      5000,
      2,
    )!;
    expect(cap.method).toBe('marginal');
    expect(cap.from).toEqual([400, 800]);
    // API: (0.4 - 0.2) × 40 s / 400 students = 20 ms; Postgres 10 ms; grader 0; generator 4 ms.
    expect(cap.msPerStudent.api).toBeCloseTo(20);
    expect(cap.msPerStudent.postgres).toBeCloseTo(10);
    expect(cap.msPerStudent.grader).toBeCloseTo(0);
    expect(cap.labMsPerStudent).toBeCloseTo(30);
    // Fixed: the grader's 2 CPU-s, API and Postgres extrapolate to 0.
    expect(cap.fixedLabS).toBeCloseTo(2);
    expect(cap.labCoresAtTarget).toBeCloseTo((2 + 0.03 * 5000) / 40);
    expect(cap.maxNAtFullMachine).toBe(Math.floor((2 * 40 - 2 - 0.4) / 0.034));
    expect(capacitySentence(cap)).toContain('beyond this machine by CPU alone');
  });

  it('fits a line through every complete step, a repeated N included', () => {
    // API CPU-s over 40 s: 400 → 8, 800 → 14, 800 again → 18: the line through all three has the slope
    // of the 400 → mean-of-the-800s pair, 20 ms per student (the extremes alone would give 15 or 25).
    const cap = classroomCapacity(
      [step(400, true, 0.2, 0.1, 0.05), step(800, true, 0.35, 0.2, 0.09), step(800, true, 0.45, 0.2, 0.09)],
      5000,
      2,
    )!;
    expect(cap.method).toBe('marginal');
    expect(cap.from).toEqual([400, 800, 800]);
    expect(cap.msPerStudent.api).toBeCloseTo(20);
    expect(cap.msPerStudent.postgres).toBeCloseTo(10);
    expect(cap.msPerStudent.generator).toBeCloseTo(4);
    expect(capacitySentence(cap)).toContain('fitted through the complete steps N = 400, 800, 800');
  });

  it('uses one complete step as an upper bound, and says nothing without one', () => {
    const cap = classroomCapacity([step(200, true, 0.1, 0.05, 0.02), step(400, false, 1, 1, 1)], 300, 2)!;
    expect(cap.method).toBe('average');
    expect(cap.msPerStudent.api).toBeCloseTo(20);
    expect(capacitySentence(cap)).toContain('it fits by CPU');
    expect(capacitySentence(cap)).toContain('N = 200 (the only complete step; fixed costs included');
    expect(capacitySentence(cap)).toContain('its fixed costs (start-up, instructors) counted per student');
    expect(classroomCapacity([step(400, false, 1, 1, 1)], 5000, 2)).toBeNull();
  });

  it('says why it fell back to the largest complete step when there were several', () => {
    const close = classroomCapacity(
      [step(2500, true, 0.5, 0.3, 0.1), step(2850, true, 0.6, 0.35, 0.12)],
      5000,
      2,
    )!;
    expect(close.method).toBe('average');
    expect(close.from).toEqual([2850]);
    expect(capacitySentence(close)).toContain(
      'N = 2,850 (the largest of the complete steps N = 2,500, 2,850, less than 1.5× apart: too close for a marginal cost',
    );
    // Far enough apart, but the bigger step cost less in all: no line to fit.
    const flat = classroomCapacity(
      [step(1000, true, 0.6, 0.3, 0.1), step(2000, true, 0.5, 0.3, 0.1)],
      5000,
      2,
    )!;
    expect(flat.method).toBe('average');
    expect(capacitySentence(flat)).toContain('whose CPU did not rise with N');
  });
});

describe("an instance's garbage collections between two scrapes", () => {
  it('counts the scavenges of a phase from /metrics, as Lab exposes them', async () => {
    const registry = new client.Registry();
    client.collectDefaultMetrics({ register: registry });
    const server = http.createServer(async (_req, res) => res.end(await registry.metrics()));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const before = await scrapeRuntime(url);
      // Young garbage: scavenges, which reach prom-client's GC observer a little later (polled).
      let kept: unknown[] = [];
      for (let i = 0; i < 2000; i++) kept = Array.from({ length: 500 }, (_, j) => ({ j, s: `x${j}` }));
      expect(kept).toHaveLength(500);
      const gc = await until(async () => {
        const r = runtimeBetween(before, await scrapeRuntime(url));
        return r.scavenges > 0 ? r : null;
      }, 'a scavenge to be counted');
      expect(gc.scavengesOver10ms).toBeLessThanOrEqual(gc.scavenges);
      expect(gc.gcMs).toBeGreaterThanOrEqual(0);
    } finally {
      server.close();
    }
  });

  it('reads the figures it needs from the exposition text and subtracts running totals', () => {
    const text = (count: number, under: number) =>
      [
        '# HELP nodejs_gc_duration_seconds x',
        `nodejs_gc_duration_seconds_bucket{le="0.001",kind="minor"} 0`,
        `nodejs_gc_duration_seconds_bucket{le="0.01",kind="minor"} ${under}`,
        `nodejs_gc_duration_seconds_sum{kind="minor"} ${count / 100}`,
        `nodejs_gc_duration_seconds_count{kind="minor"} ${count}`,
        'nodejs_gc_duration_seconds_sum{kind="major"} 0.5',
      ].join('\n');
    expect(runtimeBetween(parseRuntime(text(10, 8)), parseRuntime(text(25, 18)))).toEqual({
      scavenges: 15,
      scavengesOver10ms: 5,
      gcMs: 150,
    });
  });
});
