import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { freePort } from '../../src/db/embedded.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const LAB_BIN = path.join(ROOT, 'bin', 'lab.mjs');
export const HAPROXY = '/usr/sbin/haproxy';

/** A child process with its output kept for the failure message. */
export interface Proc {
  name: string;
  child: ChildProcess;
  output: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: boolean;
}

// If the test process dies before its afterAll, its fleet must not outlive it.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export function spawnProc(name: string, cmd: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc: Proc = { name, child, output: [], exited: false, exit: undefined as never };
  const keep = (chunk: Buffer) => {
    proc.output.push(chunk.toString());
    if (proc.output.length > 200) proc.output.shift();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  live.add(child);
  proc.exit = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(child);
      proc.exited = true;
      resolve({ code, signal });
    }),
  );
  return proc;
}

export function spawnLab(name: string, args: string[], env: Record<string, string>): Proc {
  return spawnProc(name, process.execPath, [LAB_BIN, ...args], env);
}

export async function stopProc(
  proc: Proc | undefined,
  signal: NodeJS.Signals = 'SIGTERM',
  timeoutMs = 20_000,
) {
  if (!proc || proc.exited) return;
  proc.child.kill(signal);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
  await proc.exit;
  clearTimeout(timer);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls a URL until it answers `status` (or the process dies, or time runs out). */
export async function waitFor(url: string, proc?: Proc, timeoutMs = 60_000, status = 200) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc?.exited) throw new Error(`${proc.name} exited while starting:\n${proc.output.join('')}`);
    const res = await request('GET', url).catch(() => null);
    if (res?.status === status) return;
    await sleep(100);
  }
  throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms\n${proc?.output.join('') ?? ''}`);
}

/** deploy/haproxy.cfg with only its `bind` and `server` lines rewritten for this test's ports. */
export function renderHaproxy(lbPort: number, ports: number[]): string {
  const cfg = fs.readFileSync(path.join(ROOT, 'deploy', 'haproxy.cfg'), 'utf8');
  const lines = cfg.split('\n');
  const firstServer = lines.findIndex((l) => /^\s+server api\d+ /.test(l));
  if (firstServer < 0 || !cfg.includes('bind 127.0.0.1:8080'))
    throw new Error('deploy/haproxy.cfg changed shape');
  const kept = lines.filter((l) => !/^\s+server api\d+ /.test(l));
  kept.splice(firstServer, 0, ...ports.map((p, i) => `    server api${i + 1} 127.0.0.1:${p} check`));
  return kept.join('\n').replace('bind 127.0.0.1:8080', `bind 127.0.0.1:${lbPort}`);
}

export async function startHaproxy(
  ports: number[],
): Promise<{ proc: Proc; url: string; port: number; statsUrl: string }> {
  const port = await freePort();
  const statsPort = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-haproxy-'));
  const file = path.join(dir, 'haproxy.cfg');
  // A stats page for the test only, to see which instances HAProxy has marked up.
  const stats = `\nlisten stats\n    bind 127.0.0.1:${statsPort}\n    mode http\n    stats enable\n    stats uri /\n`;
  fs.writeFileSync(file, renderHaproxy(port, ports) + stats);
  const proc = spawnProc('haproxy', HAPROXY, ['-db', '-f', file]);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/healthz`, proc, 10_000);
  return { proc, url, port, statsUrl: `http://127.0.0.1:${statsPort}/` };
}

/** The status (UP, DOWN, …) of every server of `backend`, from HAProxy's CSV stats. */
export async function serverStatus(statsUrl: string, backend = 'lab_api'): Promise<Record<string, string>> {
  const csv = (await request('GET', `${statsUrl};csv`)).body;
  const [header, ...lines] = csv.replace(/^# /, '').trim().split('\n');
  const cols = header!.split(',');
  const [px, sv, st] = ['pxname', 'svname', 'status'].map((c) => cols.indexOf(c));
  const out: Record<string, string> = {};
  for (const l of lines) {
    const f = l.split(',');
    if (f[px!] === backend && f[sv!] !== 'BACKEND' && f[sv!] !== 'FRONTEND') out[f[sv!]!] = f[st!]!;
  }
  return out;
}

/** Polls until HAProxy has marked every server of the backend UP. */
export async function waitAllUp(statsUrl: string, n: number, timeoutMs = 20_000, backend = 'lab_api') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await serverStatus(statsUrl, backend).catch(() => ({}));
    const up = Object.values(status).filter((s) => s === 'UP').length;
    if (up === n) return;
    if (Date.now() > deadline)
      throw new Error(`HAProxy: ${up} of ${n} servers up: ${JSON.stringify(status)}`);
    await sleep(100);
  }
}

export interface Fleet {
  lbUrl: string;
  statsUrl: string;
  ports: number[];
  apis: Proc[];
  graders: Proc[];
  haproxy: Proc;
  env: Record<string, string>;
  startApi(i: number): Promise<void>;
  stop(): Promise<void>;
}

/** HAProxy (deploy/haproxy.cfg) + `instances` × `lab serve` + `graders` × `lab grader`, all real processes. */
export async function startFleet(opts: {
  databaseUrl: string;
  instances?: number;
  graders?: number;
  env?: Record<string, string>;
}): Promise<Fleet> {
  const n = opts.instances ?? 3;
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const env = {
    DATABASE_URL: opts.databaseUrl,
    HOST: '127.0.0.1',
    INSTANCES: String(n),
    GRADERS: String(opts.graders ?? 1),
    SHUTDOWN_GRACE_MS: '1500',
    TRUST_PROXY: 'true',
    // The load comes from a handful of users submitting hundreds of times a minute.
    SUBMISSIONS_PER_MINUTE: '1000000',
    REGISTRATIONS_PER_HOUR: '1000000',
    ...opts.env,
  };
  const apis: Proc[] = [];
  const startApi = async (i: number) => {
    apis[i] = spawnLab(`api-${i + 1}`, ['serve'], {
      ...env,
      PORT: String(ports[i]),
      INSTANCE_NAME: `api-${i + 1}`,
    });
    await waitFor(`http://127.0.0.1:${ports[i]}/readyz`, apis[i]);
  };
  const graders = Array.from({ length: opts.graders ?? 1 }, (_, i) =>
    spawnLab(`grader-${i + 1}`, ['grader'], { ...env, INSTANCE_NAME: `grader-${i + 1}` }),
  );
  await Promise.all(ports.map((_, i) => startApi(i)));
  const lb = await startHaproxy(ports);
  // HAProxy's checks must see every instance up (rise 2 × 500 ms) before any load.
  await waitAllUp(lb.statsUrl, n);
  return {
    lbUrl: lb.url,
    statsUrl: lb.statsUrl,
    ports,
    apis,
    graders,
    haproxy: lb.proc,
    env,
    startApi,
    async stop() {
      await Promise.all([...apis, ...graders].map((p) => stopProc(p)));
      await stopProc(lb.proc);
    },
  };
}

// --- HTTP client (keep-alive, like a browser or an API client behind one load balancer) ---

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export interface Res {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
  ms: number;
}

/** Requests resent because a kept-alive connection was closed by the peer just as it was reused. */
export const staleSocketRetries = { count: 0 };

/**
 * One HTTP request. Like browsers and undici, a GET whose kept-alive connection turns out to have been
 * closed by the other side (a race every keep-alive client has; HAProxy closes the connection after
 * the 503 it generates itself) is sent again once on a fresh connection; those are counted. So is a
 * write that carries an Idempotency-Key: API.md has clients resend those, and the server deduplicates.
 */
export async function request(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<Res> {
  try {
    return await requestOnce(method, url, body, headers, timeoutMs);
  } catch (err) {
    const resendable =
      method === 'GET' || Object.keys(headers).some((h) => h.toLowerCase() === 'idempotency-key');
    if (!resendable || !(err as { reusedSocket?: boolean }).reusedSocket) throw err;
    staleSocketRetries.count += 1;
    // Not through the pool: HAProxy closes every connection it answers a 503 on itself, so during an
    // outage the pool can hold several such connections, and the next one taken may be closed too.
    return requestOnce(method, url, body, headers, timeoutMs, false);
  }
}

function requestOnce(
  method: string,
  url: string,
  body: unknown,
  headers: Record<string, string>,
  timeoutMs: number,
  pooled: http.Agent | false = agent,
): Promise<Res> {
  const started = performance.now();
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method,
        agent: pooled,
        headers: {
          ...headers,
          ...(payload
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
            : {}),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            headers: res.headers,
            ms: performance.now() - started,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (err) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
    req.end(payload);
  });
}

// --- bounded load of mixed reads and idempotent submissions ---

export interface LoadOptions {
  baseUrl: string;
  token: string;
  reads: string[];
  concurrency: number;
  durationMs: number;
  maxRequests: number;
  /** Share of operations that are submissions (0..1), sent to this exercise. */
  submitRatio?: number;
  exerciseId?: string;
  code?: string;
  /** A client pauses this long after a failed read, as a real client honouring Retry-After would. */
  failurePauseMs?: number;
}

export interface LoadStats {
  sent: number;
  succeeded: number;
  failed: number;
  retried: number;
  /** Submits refused for now because the same user's previous one was being recorded (429), then resent. */
  busy: number;
  getsFailed: number;
  postsFailed: number;
  byStatus: Record<string, number>;
  /** Idempotency-Key → submission id, for every submission that got a 202/200. */
  accepted: Map<string, string>;
  /** Latencies (ms) of successful requests, and of 503 answers. */
  okMs: number[];
  shedMs: number[];
  samples: string[];
  networkErrors: string[];
  /** Date.now() of the last failed request (0: none). */
  lastFailureAt: number;
}

export function emptyStats(): LoadStats {
  return {
    sent: 0,
    succeeded: 0,
    failed: 0,
    retried: 0,
    busy: 0,
    getsFailed: 0,
    postsFailed: 0,
    byStatus: {},
    accepted: new Map(),
    okMs: [],
    shedMs: [],
    samples: [],
    lastFailureAt: 0,
    networkErrors: [],
  };
}

/**
 * Closed-loop load: `concurrency` clients, each sending one request at a time, until durationMs or
 * maxRequests. A submission that fails (connection error or 5xx) is retried by the client with the
 * same Idempotency-Key, as API.md tells clients to; each such retry is counted. One refused for now
 * (429: the same user's previous submit still being recorded) is resent after Retry-After, counted as
 * `busy`.
 */
export async function runLoad(opts: LoadOptions, stats = emptyStats()): Promise<LoadStats> {
  const deadline = Date.now() + opts.durationMs;
  const auth = { authorization: `Bearer ${opts.token}` };
  const note = (what: string) => {
    if (stats.samples.length < 20) stats.samples.push(what);
  };
  const record = (res: Res | null, err?: unknown) => {
    stats.sent += 1;
    const key = res ? String(res.status) : 'network';
    stats.byStatus[key] = (stats.byStatus[key] ?? 0) + 1;
    if (res?.status === 503) stats.shedMs.push(res.ms);
    if (!res || res.status >= 500) stats.lastFailureAt = Date.now();
    if (!res) stats.networkErrors.push(`${Date.now()}: ${String((err as Error)?.message ?? err)}`);
  };
  const client = async () => {
    let i = 0;
    while (Date.now() < deadline && stats.sent < opts.maxRequests) {
      i += 1;
      if (opts.exerciseId && Math.random() < (opts.submitRatio ?? 0)) {
        const key = randomUUID();
        const body = { code: opts.code ?? 'function add(a, b) { return a + b; }' };
        let done = false;
        let refusedBusy = false;
        for (let attempt = 0; attempt < 20 && !done; attempt++) {
          if (refusedBusy) stats.busy += 1;
          else if (attempt > 0) {
            stats.retried += 1;
            await sleep(100 * attempt);
          }
          refusedBusy = false;
          const res = await request(
            'POST',
            `${opts.baseUrl}/api/v1/exercises/${opts.exerciseId}/submissions`,
            body,
            {
              ...auth,
              'idempotency-key': key,
            },
          ).catch((err) => {
            record(null, err);
            return null;
          });
          if (!res) continue;
          record(res);
          if (res.status === 202 || res.status === 200) {
            stats.succeeded += 1;
            stats.okMs.push(res.ms);
            const id = JSON.parse(res.body).submission.id as string;
            const before = stats.accepted.get(key);
            if (before && before !== id) note(`key ${key} gave ${before} then ${id}`);
            stats.accepted.set(key, id);
            done = true;
          } else if (res.status === 429) {
            // Another submit of this user to this exercise was being recorded (one at a time): come
            // back when Retry-After says, as API.md tells clients to. Not a failure, not a retry.
            refusedBusy = true;
            await sleep(1000 * Number(res.headers['retry-after'] ?? 1));
          } else if (res.status < 500) {
            note(`POST ${res.status} ${res.body.slice(0, 200)}`);
            break;
          } else note(`POST ${res.status} ${res.body.slice(0, 200)}`);
        }
        if (!done) {
          stats.failed += 1;
          stats.postsFailed += 1;
        }
      } else {
        const path = opts.reads[i % opts.reads.length]!;
        const res = await request('GET', `${opts.baseUrl}${path}`, undefined, auth).catch((err) => {
          record(null, err);
          return null;
        });
        if (res) record(res);
        if (res && res.status >= 200 && res.status < 300) {
          stats.succeeded += 1;
          stats.okMs.push(res.ms);
        } else {
          stats.failed += 1;
          stats.getsFailed += 1;
          if (res) note(`GET ${path} ${res.status} ${res.body.slice(0, 200)}`);
          if (opts.failurePauseMs) await sleep(opts.failurePauseMs);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, client));
  return stats;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function printCounts(title: string, counts: Record<string, unknown>) {
  console.log(`[fault] ${title}: ${JSON.stringify(counts)}`);
}

/** Signs in through the app and returns a bearer token for the load clients. */
export async function tokenFor(app: FastifyInstance, email: string, password: string): Promise<string> {
  const login = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password } });
  if (login.statusCode !== 200) throw new Error(`login ${email}: ${login.statusCode} ${login.body}`);
  const cookie = `lab_session=${login.cookies.find((c) => c.name === 'lab_session')!.value}`;
  const tok = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/tokens',
    payload: { name: 'fault-test' },
    headers: { cookie, origin: 'http://localhost:80', host: 'localhost:80' },
  });
  if (tok.statusCode !== 201) throw new Error(`token: ${tok.statusCode} ${tok.body}`);
  return tok.json().token as string;
}

export { sleep };
