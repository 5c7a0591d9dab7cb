import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { drizzle } from 'drizzle-orm/node-postgres';
import { createParser } from 'eventsource-parser';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, NODE_NAMES, startCluster, until } from '../../deploy/ha/cluster.ts';
import { runMigrations } from '../../src/db/migrate.ts';
import * as schema from '../../src/db/schema/index.ts';
import { DEMO, seedDemo } from '../../src/db/seed.ts';
import {
  type Fleet,
  printCounts,
  type Res,
  request,
  spawnLab,
  staleSocketRetries,
  startFleet,
  waitAllUp,
} from './harness.ts';

/*
 * Lab on a highly available Postgres (deploy/ha: etcd, 3 Patroni nodes with synchronous replication,
 * HAProxy with a primary and a replica port), with real processes: 2 × `lab serve` behind HAProxy
 * (deploy/haproxy.cfg) and a `lab grader`, under load (reads ~100/s, submissions ~20/s, and users who
 * read right after they write). Faults: the primary node crashes (SIGKILL of Patroni, the postmaster and
 * every backend) and comes back; a planned switchover; both replicas crash. Timings are those of the
 * research note: ttl 10 s, loop_wait 1 s, retry_timeout 4 s; HAProxy checks every 500 ms.
 */

const TTL_MS = 10_000;
/**
 * Lab's share of a switchover: from the new primary accepting writes to the last failure. Measured
 * 0.2–2.7 s over 12 runs on this 2-core machine, 11 of them under 1.8 s (the demoted primary's connections end
 * with 57P01, HAProxy moves its primary port within a check, the API instances come back into service,
 * clients retry after Retry-After). The timeline of what Lab's connections did is printed from
 * SWITCHOVER_SLOW_MS on, so a slow one shows where the time went even when it passes.
 */
const SWITCHOVER_LAB_MS = 4000;
const SWITCHOVER_SLOW_MS = 2000;
let cluster: Cluster;
let fleet: Fleet;
let dir: string;
const tokens = { student: '', instructor: '', writer: '' };
/**
 * Who submits in the background traffic: the demo student (whose event stream the crash test follows)
 * and classmates, each with at most one submission in flight, as the web app does (its button waits for
 * the answer). Spread as in a class: one student's submits to one exercise are recorded one at a time (a
 * parallel one is refused, 429 Retry-After 1), so one student sending 20/s, each retried through an
 * outage, measured that rule rather than the failover.
 */
const submitters: string[] = [];
let courseId: string;
let lessonId: string;
let exerciseId: string;
let reads: string[];

// --- the API through the load balancer ---

async function signIn(email: string, password: string): Promise<string> {
  const login = await request('POST', `${fleet.lbUrl}/api/v1/auth/login`, { email, password });
  if (login.status !== 200) throw new Error(`login ${email}: ${login.status} ${login.body}`);
  const cookie = String(login.headers['set-cookie']![0]).split(';')[0]!;
  const tok = await request(
    'POST',
    `${fleet.lbUrl}/api/v1/auth/tokens`,
    { name: 'ha' },
    { cookie, origin: fleet.lbUrl },
  );
  return JSON.parse(tok.body).token as string;
}

const api = (
  method: string,
  p: string,
  token: string,
  body?: unknown,
  headers: Record<string, string> = {},
) => request(method, `${fleet.lbUrl}/api/v1${p}`, body, { authorization: `Bearer ${token}`, ...headers });

// --- traffic: open-loop reads and submissions, and read-your-writes checkers ---

interface Outcome {
  kind: 'read' | 'write';
  started: number;
  at: number;
  status: number | 'network';
  detail?: string;
}

interface Traffic {
  outcomes: Outcome[];
  /** Idempotency-Key → submission id of every submission answered 202/200. */
  accepted: Map<string, string>;
  /** The ids among them submitted by the student whose event stream the test follows. */
  students: Set<string>;
  ryw: { checks: number; violations: string[] };
  stop(): Promise<void>;
}

// The traffic of the running test; stopped after each test even when it failed half-way.
let current: Traffic | null = null;
afterEach(async () => {
  await current?.stop();
  current = null;
});

function startTraffic(): Traffic {
  const outcomes: Outcome[] = [];
  const accepted = new Map<string, string>();
  const students = new Set<string>();
  const ryw = { checks: 0, violations: [] as string[] };
  let running = true;
  const inflight = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };
  const call = async (kind: Outcome['kind'], send: () => Promise<Res>): Promise<Res | null> => {
    const started = Date.now();
    try {
      const res = await send();
      const o: Outcome = { kind, started, at: Date.now(), status: res.status };
      if (res.status >= 300) o.detail = res.body.slice(0, 160);
      outcomes.push(o);
      return res;
    } catch (err) {
      const reused = (err as { reusedSocket?: boolean }).reusedSocket ? ' (reused keep-alive socket)' : '';
      outcomes.push({ kind, started, at: Date.now(), status: 'network', detail: `${err}${reused}` });
      return null;
    }
  };
  const ok = (r: Res | null) => !!r && r.status >= 200 && r.status < 300;

  // Reads, ~100/s, a mix of replica-eligible pages and the caller itself.
  let i = 0;
  const readTimer = setInterval(() => {
    if (inflight.size > 300) return;
    const p = reads[i++ % reads.length]!;
    track(call('read', () => api('GET', p, tokens.student)));
  }, 10);
  // Submissions, ~20/s, each retried with its Idempotency-Key until accepted (as API.md tells clients).
  let turn = 0;
  const submitting = new Set<string>();
  const submitTimer = setInterval(() => {
    if (inflight.size > 300) return;
    const key = randomUUID();
    const who = submitters[turn++ % submitters.length]!;
    if (submitting.has(who)) return;
    submitting.add(who);
    track(
      (async () => {
        for (let attempt = 0; attempt < 200; attempt++) {
          const res = await call('write', () =>
            api(
              'POST',
              `/exercises/${exerciseId}/submissions`,
              who,
              { code: 'function add(a, b) { return a + b; }' },
              { 'idempotency-key': key },
            ),
          );
          if (ok(res)) {
            const id = JSON.parse(res!.body).submission.id;
            accepted.set(key, id);
            if (who === tokens.student) students.add(id);
            return;
          }
          // 429: another submit of this student is being recorded; Retry-After says when to come back.
          if (res && res.status === 429) {
            await new Promise((r) => setTimeout(r, 1000 * Number(res.headers['retry-after'] ?? 1)));
            continue;
          }
          if (res && res.status < 500) return;
          await new Promise((r) => setTimeout(r, 100 + Math.min(attempt, 10) * 50));
        }
      })().finally(() => submitting.delete(who)),
    );
  }, 50);
  // Read-your-writes: the instructor renames a lesson and reads it back at once; a student submits and
  // reads their progress at once. Both reads are replica-eligible.
  const checkers = [
    (async () => {
      for (let n = 0; running; n++) {
        const title = `Lesson v${n} ${randomUUID().slice(0, 8)}`;
        const w = await call('write', () =>
          api('PATCH', `/lessons/${lessonId}`, tokens.instructor, { title }),
        );
        if (!ok(w)) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        const r = await call('read', () => api('GET', `/lessons/${lessonId}`, tokens.instructor));
        if (!ok(r)) continue;
        ryw.checks += 1;
        const seen = JSON.parse(r!.body).lesson.title;
        if (seen !== title) ryw.violations.push(`wrote "${title}", read "${seen}"`);
      }
    })(),
    (async () => {
      let mine = 0;
      while (running) {
        const key = randomUUID();
        let done = false;
        for (let attempt = 0; attempt < 200 && !done && running; attempt++) {
          const w = await call('write', () =>
            api(
              'POST',
              `/exercises/${exerciseId}/submissions`,
              tokens.writer,
              { code: 'function add(a, b) { return a + b; }' },
              { 'idempotency-key': key },
            ),
          );
          if (ok(w)) {
            if (w!.status === 202) mine += 1;
            accepted.set(key, JSON.parse(w!.body).submission.id);
            done = true;
          } else await new Promise((r) => setTimeout(r, 100));
        }
        if (!done) continue;
        const r = await call('read', () => api('GET', `/courses/${courseId}/progress`, tokens.writer));
        if (!ok(r)) continue;
        ryw.checks += 1;
        const attempts = JSON.parse(r!.body).exercises.find(
          (e: { id: string }) => e.id === exerciseId,
        ).attempts;
        if (attempts < mine) ryw.violations.push(`submitted ${mine}, progress shows ${attempts} attempts`);
      }
    })(),
  ];
  current = {
    outcomes,
    accepted,
    students,
    ryw,
    async stop() {
      running = false;
      clearInterval(readTimer);
      clearInterval(submitTimer);
      await Promise.all(checkers);
      while (inflight.size) await Promise.all([...inflight]);
    },
  };
  return current;
}

const isOk = (o: Outcome) => typeof o.status === 'number' && o.status >= 200 && o.status < 300;
/** A submit refused because the same student's previous one was still being recorded: not an outage. */
const isBusy = (o: Outcome) => o.status === 429;

/**
 * Around a fault at `t0`: when reads and writes were back (the first success of a request started after
 * the first failure; the fault time when nothing failed), the last failure, and the statuses seen.
 */
function measure(outcomes: Outcome[], t0: number) {
  const after = outcomes.filter((o) => o.started >= t0 - 1000 || o.at >= t0);
  const failures = after.filter((o) => !isOk(o) && !isBusy(o));
  const firstFailure = failures.length ? Math.min(...failures.map((f) => f.at)) : null;
  const back = (kind: Outcome['kind']) => {
    if (firstFailure === null) return 0;
    const ok = after.filter((o) => o.kind === kind && isOk(o) && o.started >= firstFailure);
    return ok.length ? Math.min(...ok.map((o) => o.at)) - t0 : null;
  };
  const byStatus: Record<string, number> = {};
  for (const o of after) byStatus[String(o.status)] = (byStatus[String(o.status)] ?? 0) + 1;
  return {
    requests: after.length,
    failed: failures.length,
    firstFailureMs: firstFailure === null ? null : firstFailure - t0,
    lastFailureMs: failures.length ? Math.max(...failures.map((f) => f.at)) - t0 : null,
    writesBackMs: back('write'),
    readsBackMs: back('read'),
    byStatus,
    // Failures after both reads and writes were back: which request, how long it had been running, why.
    late: failures
      .filter((f) => f.at - t0 > Math.max(back('write') ?? 0, back('read') ?? 0))
      .map(
        (f) => `${f.kind} ${f.status} at ${f.at - t0} ms (sent at ${f.started - t0} ms): ${f.detail ?? ''}`,
      ),
    otherThan503: failures
      .filter((f) => f.status !== 503)
      .map(
        (f) => `${f.kind} ${f.status} at ${f.at - t0} ms (sent at ${f.started - t0} ms): ${f.detail ?? ''}`,
      ),
  };
}

/**
 * Every 200 ms until stopped, what Lab's connections on each node are doing (non-idle, by wait event)
 * and each node's role and synchronous standby: printed with a fault test's counts, so a slow recovery
 * shows whether commits waited for a standby (SyncRep), for a lock, or for Lab (ClientRead).
 */
function sampleActivity(t0: number) {
  const timeline: string[] = [];
  let running = true;
  const sql = `select pg_is_in_recovery() as standby, current_setting('synchronous_standby_names') as sync,
      coalesce((select string_agg(w || '×' || n, ' ' order by w) from (
        select coalesce(wait_event, state) as w, count(*) as n from pg_stat_activity
         where application_name like 'lab:%' and state <> 'idle' group by 1) a), '') as busy`;
  const done = (async () => {
    const nodes = (await cluster.members()).map((m) => m.name);
    while (running) {
      const at = Date.now();
      const parts = await Promise.all(
        nodes.map(async (n) => {
          try {
            const { rows } = await cluster.query(cluster.adminUrl(n), sql);
            const r = rows[0] as { standby: boolean; sync: string; busy: string };
            return `${n}${r.standby ? '' : `(P sync=${r.sync || '-'})`} ${r.busy}`.trim();
          } catch {
            return `${n} down`;
          }
        }),
      );
      timeline.push(`+${at - t0}ms ${parts.join(' | ')}`);
      await new Promise((r) => setTimeout(r, Math.max(0, 200 - (Date.now() - at))));
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return timeline;
    },
  };
}

/** Keeps the traffic going until reads and writes have succeeded for `steadyMs` after the fault. */
async function untilSteady(t: Traffic, t0: number, steadyMs: number, timeoutMs: number) {
  await until(
    'traffic steady after the fault',
    async () => {
      const m = measure(t.outcomes, t0);
      if (m.writesBackMs === null || m.readsBackMs === null) return false;
      const lastFailure = m.lastFailureMs ?? 0;
      return Date.now() - t0 - lastFailure >= steadyMs && Date.now() - t0 >= steadyMs;
    },
    timeoutMs,
    100,
  );
}

/**
 * When (ms after t0) the first of `nodes` accepted writes in its own Postgres, asked directly every 20 ms.
 * Patroni's `/primary` (HAProxy's check) says 200 as soon as a node holds the leader key, which can be
 * seconds before Postgres has left recovery: Lab cannot write before this moment, so its share of an
 * outage is measured from it.
 */
async function firstWritable(nodes: string[], t0: number, timeoutMs: number) {
  // One open connection per node, asked every 20 ms: a new connection per check lagged by up to 0.3 s
  // on this loaded machine. A node that cannot be reached is asked again on a new connection.
  const clients = new Map<string, pg.Client>();
  const writable = async (node: string) => {
    try {
      let client = clients.get(node);
      if (!client) {
        client = new pg.Client({
          connectionString: cluster.adminUrl(node, 'postgres'),
          connectionTimeoutMillis: 1000,
        });
        client.on('error', () => {});
        clients.set(node, client);
        await client.connect();
      }
      const { rows } = await client.query('select not pg_is_in_recovery() as w');
      return (rows[0] as { w: boolean }).w;
    } catch {
      clients
        .get(node)
        ?.end()
        .catch(() => {});
      clients.delete(node);
      return false;
    }
  };
  try {
    return await until(
      'a node whose Postgres accepts writes',
      async () => {
        const states = await Promise.all(nodes.map(writable));
        const i = states.indexOf(true);
        return i >= 0 ? { node: nodes[i]!, ms: Date.now() - t0 } : false;
      },
      timeoutMs,
      20,
    );
  } finally {
    await Promise.all([...clients.values()].map((c) => c.end().catch(() => {})));
  }
}

/** The new primary's Patroni and Postgres log since t0, when its promotion took long after it held the key. */
async function printSlowPromotion(node: string, t0: number, keyMs: number, writableMs: number) {
  if (writableMs - keyMs <= 1000) return;
  const lines = await cluster.logSince(node, t0);
  console.log(
    `[ha] ${node} held the leader key at ${keyMs} ms but accepted writes only at ${writableMs} ms; its logs since the fault:\n${lines.join('\n')}`,
  );
}

// --- audit: every accepted submission stored once, graded, with one final event ---

async function audit(accepted: Map<string, string>, waitMs = 60_000) {
  const ids = [...new Set(accepted.values())];
  const pool = new pg.Pool({ connectionString: cluster.adminUrl(), max: 1 });
  pool.on('error', () => {});
  try {
    const pending = await until(
      'every accepted submission graded',
      async () => {
        const { rows } = await pool.query<{ n: number }>(
          `select count(*)::int as n from submissions where id = any($1::uuid[]) and status in ('queued', 'running')`,
          [ids],
        );
        return rows[0]!.n === 0 ? 0 : false;
      },
      waitMs,
      250,
    ).catch(() => -1);
    const stored = await pool.query(`select count(*)::int as n from submissions where id = any($1::uuid[])`, [
      ids,
    ]);
    const finals = await pool.query<{ id: string; n: number }>(
      `select payload->'submission'->>'id' as id, count(*)::int as n from events
        where type = 'submission.updated' and payload->'submission'->>'status' in ('passed', 'failed', 'error')
          and payload->'submission'->>'id' = any($1::text[])
        group by 1`,
      [ids],
    );
    const errors = await pool.query<{ message: string; n: number }>(
      `select coalesce(message, '') as message, count(*)::int as n from submissions
        where id = any($1::uuid[]) and status = 'error' group by 1`,
      [ids],
    );
    return {
      accepted: ids.length,
      lost: ids.length - stored.rows[0].n,
      pending,
      gradedOnce: finals.rows.filter((r) => r.n === 1).length,
      gradedTwice: finals.rows.filter((r) => r.n > 1).length,
      errorVerdicts: errors.rows.reduce((sum, r) => sum + r.n, 0),
      errorMessages: errors.rows.map((r) => `${r.n} × ${r.message.slice(0, 120)}`),
    };
  } finally {
    await pool.end();
  }
}

// --- SSE: one stream of the student, resumed with Last-Event-ID whenever it ends ---

function followEvents(token: string) {
  const finals = new Set<string>();
  let lastId: string | undefined;
  let stopped = false;
  let req: http.ClientRequest | null = null;
  let reconnects = 0;
  const open = () => {
    if (stopped) return;
    const again = () => {
      if (stopped) return;
      reconnects += 1;
      setTimeout(open, 200);
    };
    req = http.get(`${fleet.lbUrl}/api/v1/events`, {
      headers: { authorization: `Bearer ${token}`, ...(lastId ? { 'last-event-id': lastId } : {}) },
    });
    req.on('error', again);
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        res.on('end', again);
        return;
      }
      const parser = createParser({
        onEvent(e) {
          if (e.id) lastId = e.id;
          const s = JSON.parse(e.data).submission;
          if (s && ['passed', 'failed', 'error'].includes(s.status)) finals.add(s.id);
        },
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => parser.feed(chunk));
      res.on('end', again);
      res.on('error', () => {});
    });
  };
  open();
  return {
    finals,
    reconnects: () => reconnects,
    close() {
      stopped = true;
      req?.destroy();
    },
  };
}

const exited = () =>
  [...fleet.apis, ...fleet.graders, fleet.haproxy].filter((p) => p.exited).map((p) => p.name);

/** Sums a counter of /metrics over both instances, filtered by a label fragment. */
async function metricSum(name: string, labels: string) {
  let sum = 0;
  for (const port of fleet.ports) {
    const text = (await request('GET', `http://127.0.0.1:${port}/metrics`)).body;
    for (const line of text.split('\n'))
      if (line.startsWith(`${name}{`) && line.includes(labels)) sum += Number(line.split(' ').pop());
  }
  return sum;
}

/** When grading stalls: what the grader said, where its connections are, and the state of the queue. */
async function diagnoseGrader() {
  console.log(`[ha] grader output:\n${fleet.graders[0]!.output.join('').slice(-30000)}`);
  const pid = fleet.graders[0]!.child.pid;
  const ss = spawnSync('ss', ['-tnpi'], { encoding: 'utf8' }).stdout ?? '';
  console.log(
    `[ha] grader sockets:\n${ss
      .split('\n')
      .filter((l) => l.includes(`pid=${pid},`))
      .join('\n')}`,
  );
  const rows = async (text: string, node?: string) =>
    JSON.stringify(
      (await cluster.query(cluster.adminUrl(node), text).catch((e) => ({ rows: String(e) }))).rows,
    );
  console.log(
    '[ha] jobs:',
    await rows(`select j.locker_pid, j.locked_until > now() as leased, j.attempts, count(*)::int,
                       exists (select 1 from pg_stat_activity a where a.pid = j.locker_pid) as locker_alive
                  from grading_jobs j group by 1, 2, 3, 5`),
  );
  for (const node of NODE_NAMES)
    console.log(
      `[ha] ${node} grader backends:`,
      await rows(
        `select pid, application_name, state, wait_event_type, wait_event, now() - state_change as for, left(query, 80) as q
           from pg_stat_activity where application_name like 'lab:grader%'`,
        node,
      ),
    );
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-ha-'));
  const t = Date.now();
  cluster = await startCluster({ dir, killOnExit: true, log: (l) => console.log(`[ha] ${l}`) });
  await runMigrations(cluster.url());
  const pool = new pg.Pool({ connectionString: cluster.url(), max: 1 });
  ({ courseId } = await seedDemo(drizzle(pool, { schema })));
  await pool.end();
  fleet = await startFleet({
    databaseUrl: cluster.url(),
    instances: 2,
    graders: 1,
    env: { DATABASE_READ_URL: cluster.url('replicas'), MAX_EVENT_LOOP_DELAY_MS: '0' },
  });
  tokens.student = await signIn(DEMO.student.email, DEMO.student.password);
  tokens.instructor = await signIn(DEMO.instructor.email, DEMO.instructor.password);
  const email = `writer-${randomUUID().slice(0, 8)}@example.com`;
  const reg = await request('POST', `${fleet.lbUrl}/api/v1/auth/register`, {
    email,
    password: 'correct horse battery',
    name: 'Writer',
  });
  expect(reg.status).toBe(201);
  tokens.writer = await signIn(email, 'correct horse battery');
  const course = JSON.parse((await api('GET', `/courses/${courseId}`, tokens.instructor)).body);
  const join = await api('POST', '/courses/join', tokens.writer, { joinCode: course.course.joinCode });
  expect(join.status, join.body).toBe(200);
  submitters.push(tokens.student);
  for (let i = 0; i < 15; i++) {
    const classmate = `classmate-${i}-${randomUUID().slice(0, 8)}@example.com`;
    const r = await request('POST', `${fleet.lbUrl}/api/v1/auth/register`, {
      email: classmate,
      password: 'correct horse battery',
      name: `Classmate ${i}`,
    });
    expect(r.status, r.body).toBe(201);
    const token = await signIn(classmate, 'correct horse battery');
    const joined = await api('POST', '/courses/join', token, { joinCode: course.course.joinCode });
    expect(joined.status, joined.body).toBe(200);
    submitters.push(token);
  }
  lessonId = course.lessons[0].id;
  const lesson = JSON.parse((await api('GET', `/lessons/${lessonId}`, tokens.instructor)).body);
  exerciseId = lesson.exercises.find((e: { title: string }) => e.title === 'Sum two numbers').id;
  reads = [
    `/courses/${courseId}`,
    `/lessons/${lessonId}`,
    `/exercises/${exerciseId}`,
    `/courses/${courseId}/progress`,
    '/me',
  ];
  console.log(`[ha] cluster + fleet ready in ${Date.now() - t} ms`);
}, 240_000);

afterAll(async () => {
  await fleet?.stop();
  await cluster?.destroy();
}, 120_000);

describe('fault tests: Lab on Patroni + etcd + HAProxy', () => {
  it('lab doctor shows every node: role, lag and connections by application_name', async () => {
    const doctor = spawnLab('lab doctor', ['doctor'], {
      DATABASE_URL: cluster.url(),
      DATABASE_READ_URL: cluster.url('replicas'),
      INSTANCES: '2',
    });
    expect((await doctor.exit).code).toBe(0);
    const out = doctor.output.join('');
    const [, nodes = ''] = out.split('\nNodes\n');
    expect(nodes.match(/^ {2}primary /gm)).toHaveLength(1);
    expect(nodes.match(/^ {2}replica .* replay lag /gm)).toHaveLength(2);
    expect(nodes).toMatch(/lab:api-1:read/);
    expect(nodes).toMatch(/streaming\s+sync/);
    expect(out).toContain('DATABASE_READ_URL reached 2 replica(s) of 2 standby(s)');
    expect(out.match(/Connection budget of replica/g)).toHaveLength(2);
  }, 60_000);

  it('a user reads their own write even from a replica that stopped replaying; others read from the replica', async () => {
    const replicas = (await cluster.members()).filter((m) => m.role !== 'leader').map((m) => m.name);
    const onEach = (sql: string) => Promise.all(replicas.map((n) => cluster.query(cluster.adminUrl(n), sql)));
    // Every write so far — the student's own included, whose position their reads wait for — replayed
    // on both replicas before the pause: a replica paused while still behind would send the student's
    // read to the primary as 'lagging' (one CI dry run failed that way), which is not what this tests.
    const { lsn } = (await cluster.query(cluster.adminUrl(), 'select pg_current_wal_lsn()::text as lsn'))
      .rows[0] as { lsn: string };
    await until(
      'replicas replayed every write so far',
      async () =>
        (
          await Promise.all(
            replicas.map(
              async (n) =>
                (
                  (
                    await cluster.query(
                      cluster.adminUrl(n),
                      `select pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn as done`,
                    )
                  ).rows[0] as { done: boolean }
                ).done,
            ),
          )
        ).every(Boolean),
      20_000,
      50,
    );
    // Patroni (PostgreSQL 14+) resumes a paused replay on its next HA cycle unless in maintenance mode:
    // seen in this test as the other user reading the new title from a replica, no read on the primary.
    await cluster.setMaintenance(true);
    await onEach('select pg_wal_replay_pause()');
    try {
      // A pause takes effect at the next WAL record a replica reads: write one, then wait until both
      // say they are paused, so the write below is certainly not replayed.
      await cluster.query(
        cluster.adminUrl(),
        'create table if not exists ha_probe (x int); insert into ha_probe values (1)',
      );
      // Each poll writes another record too: a replica that had nothing left to read when the pause
      // was requested (seen once on a loaded machine) reaches the pause with the next one. A replica
      // still reporting 'not paused' (its request did not take; seen once in a CI dry run, cause not
      // established) is asked again.
      await until(
        'replicas paused',
        async () => {
          await cluster.query(cluster.adminUrl(), 'insert into ha_probe values (2)');
          const states = await Promise.all(
            replicas.map(async (n) => {
              const url = cluster.adminUrl(n);
              const { s } = (await cluster.query(url, 'select pg_get_wal_replay_pause_state() s'))
                .rows[0] as {
                s: string;
              };
              if (s === 'not paused') await cluster.query(url, 'select pg_wal_replay_pause()');
              return s;
            }),
          );
          return states.every((s) => s === 'paused');
        },
        20_000,
        50,
      );
      const before = JSON.parse((await api('GET', `/lessons/${lessonId}`, tokens.instructor)).body).lesson
        .title;
      const title = `Paused ${randomUUID().slice(0, 8)}`;
      expect((await api('PATCH', `/lessons/${lessonId}`, tokens.instructor, { title })).status).toBe(200);
      // The writer: from the primary, at once.
      expect(
        JSON.parse((await api('GET', `/lessons/${lessonId}`, tokens.instructor)).body).lesson.title,
      ).toBe(title);
      // Anyone else reads from a replica, which has not replayed the write: proof the reads go there.
      const other = JSON.parse((await api('GET', `/lessons/${lessonId}`, tokens.student)).body).lesson.title;
      if (other !== before)
        console.log(
          '[ha] the other user read the new title; reads on the primary by reason:',
          await metricSum('lab_db_reads_total', 'target="primary"'),
          {
            lagging: await metricSum('lab_db_reads_total', 'reason="lagging"'),
            down: await metricSum('lab_db_reads_total', 'reason="replica_down"'),
            failed: await metricSum('lab_db_reads_total', 'reason="replica_failed"'),
          },
        );
      expect(other).toBe(before);
    } finally {
      await onEach('select pg_wal_replay_resume()');
      await cluster.setMaintenance(false);
    }
    await until(
      'the replica caught up',
      async () =>
        JSON.parse((await api('GET', `/lessons/${lessonId}`, tokens.student)).body).lesson.title.startsWith(
          'Paused',
        ),
      10_000,
    );
  }, 60_000);

  it('the primary node crashes under load: 0 acknowledged submissions lost or graded twice, only 503s, writes back within 2 s of the new primary accepting them, the old primary rejoins', async () => {
    const sse = followEvents(tokens.student);
    const traffic = startTraffic();
    await until('warm-up traffic', async () => traffic.outcomes.filter(isOk).length >= 300, 30_000);
    const leader = (await cluster.leader())!;
    const t0 = Date.now();
    const killed = cluster.crashNode(leader);
    const activity = sampleActivity(t0);
    const writable = firstWritable(
      NODE_NAMES.filter((n) => n !== leader),
      t0,
      40_000,
    );
    const newLeader = await until(
      "a new leader (Patroni's /primary says 200; its Postgres may still be promoting)",
      async () => {
        const l = await cluster.leader();
        return l && l !== leader && (await cluster.isPrimary(l)) ? l : false;
      },
      40_000,
    );
    const promotedMs = Date.now() - t0;
    const writableMs = (await writable).ms;
    await untilSteady(traffic, t0, 3000, 60_000);
    await traffic.stop();
    const timeline = await activity.stop();
    const m = measure(traffic.outcomes, t0);
    if ((m.writesBackMs ?? Infinity) > writableMs + 2000 || (m.readsBackMs ?? Infinity) > promotedMs + 2000)
      console.log(`[ha] activity after the crash:\n${timeline.join('\n')}`);
    await printSlowPromotion(newLeader, t0, promotedMs, writableMs);
    // The crashed machine comes back: its Patroni rewinds it and it follows the new primary.
    const restartAt = Date.now();
    await cluster.startNode(leader);
    const healthy = await cluster.waitHealthy(90_000);
    const rejoinMs = Date.now() - restartAt;
    const role = (await cluster.members()).find((x) => x.name === leader)?.role;
    const audited = await audit(traffic.accepted);
    if (audited.pending !== 0) await diagnoseGrader();
    await until(
      "every result of the student's submissions on their SSE stream",
      async () => [...traffic.students].every((id) => sse.finals.has(id)),
      30_000,
    ).catch(() => null);
    const missingOnSse = [...traffic.students].filter((id) => !sse.finals.has(id)).length;
    sse.close();
    printCounts('HA NODE CRASH', {
      killed: `${leader} (${killed.length} processes)`,
      newLeader,
      promotedMs,
      writableMs,
      ...m,
      ...audited,
      missingOnSse,
      sseReconnects: sse.reconnects(),
      ryw: { checks: traffic.ryw.checks, violations: traffic.ryw.violations.slice(0, 5) },
      rejoinMs,
      oldPrimaryRole: role,
      syncStandby: healthy.sync,
      staleKeepAliveResends: staleSocketRetries.count,
      exited: exited(),
    });
    expect(exited()).toEqual([]);
    expect(m.otherThan503).toEqual([]);
    expect(m.failed).toBeGreaterThan(0);
    expect(m.writesBackMs).not.toBeNull();
    // Patroni's share: a writable primary within a few HA cycles after ttl (its key is taken at about ttl;
    // Postgres then leaves recovery, seen taking 0.1 s and, once in CI, 5 s).
    expect(writableMs).toBeLessThanOrEqual(TTL_MS + 10_000);
    // Lab's share: writes succeed within 2 s of the new primary accepting them, reads within 2 s of the new
    // leader taking the key.
    expect(m.writesBackMs!).toBeLessThanOrEqual(writableMs + 2000);
    expect(m.readsBackMs!).toBeLessThanOrEqual(promotedMs + 2000);
    expect(audited.lost).toBe(0);
    expect(audited.pending).toBe(0);
    expect(audited.gradedTwice).toBe(0);
    expect(audited.gradedOnce).toBe(audited.accepted);
    expect(audited.errorVerdicts).toBe(0);
    expect(missingOnSse).toBe(0);
    expect(traffic.ryw.violations).toEqual([]);
    expect(traffic.ryw.checks).toBeGreaterThan(0);
    expect(['replica', 'sync_standby']).toContain(role);
    await waitAllUp(fleet.statsUrl, 2);
  }, 240_000);

  it('a planned switchover under load: the new primary writable within 5 s, Lab back within 4 s of it, only 503s, nothing lost', async () => {
    const traffic = startTraffic();
    await until('warm-up traffic', async () => traffic.outcomes.filter(isOk).length >= 200, 30_000);
    const from = (await cluster.leader())!;
    const t0 = Date.now();
    const activity = sampleActivity(t0);
    const writable = firstWritable(
      NODE_NAMES.filter((n) => n !== from),
      t0,
      30_000,
    );
    const to = await cluster.switchover();
    const switchedMs = Date.now() - t0;
    const writableMs = (await writable).ms;
    await untilSteady(traffic, t0, 3000, 30_000);
    await traffic.stop();
    const timeline = await activity.stop();
    const m = measure(traffic.outcomes, t0);
    if (
      (m.lastFailureMs ?? 0) > writableMs + SWITCHOVER_SLOW_MS ||
      (m.writesBackMs ?? Infinity) > writableMs + SWITCHOVER_SLOW_MS ||
      (m.readsBackMs ?? Infinity) > 5000
    )
      console.log(`[ha] activity during the switchover:\n${timeline.join('\n')}`);
    await printSlowPromotion(to, t0, switchedMs, writableMs);
    await cluster.waitHealthy(60_000);
    const audited = await audit(traffic.accepted);
    if (audited.pending !== 0) await diagnoseGrader();
    printCounts('HA SWITCHOVER', {
      from,
      to,
      switchedMs,
      writableMs,
      ...m,
      ...audited,
      ryw: { checks: traffic.ryw.checks, violations: traffic.ryw.violations.slice(0, 5) },
      staleKeepAliveResends: staleSocketRetries.count,
      exited: exited(),
    });
    expect(exited()).toEqual([]);
    expect(m.otherThan503).toEqual([]);
    // Patroni's share: the target accepts writes within 5 s (about 2 s measured).
    expect(writableMs).toBeLessThanOrEqual(5000);
    // Lab's share: no failure later than SWITCHOVER_LAB_MS after that, writes back by then; reads never
    // out for 5 s.
    expect(m.lastFailureMs ?? 0).toBeLessThanOrEqual(writableMs + SWITCHOVER_LAB_MS);
    expect(m.writesBackMs!).toBeLessThanOrEqual(writableMs + SWITCHOVER_LAB_MS);
    expect(m.readsBackMs!).toBeLessThanOrEqual(5000);
    expect(audited.lost).toBe(0);
    expect(audited.pending).toBe(0);
    expect(audited.gradedTwice).toBe(0);
    expect(traffic.ryw.violations).toEqual([]);
  }, 180_000);

  it('both replicas crash: reads continue from the primary, writes continue, replicas rejoin', async () => {
    const fellBack = () => metricSum('lab_db_reads_total', 'target="primary",reason="replica_');
    const onReplica = () => metricSum('lab_db_reads_total', 'target="replica"');
    const fellBackBefore = await fellBack();
    const traffic = startTraffic();
    await until('warm-up traffic', async () => traffic.outcomes.filter(isOk).length >= 200, 30_000);
    const leader = (await cluster.leader())!;
    const victims = NODE_NAMES.filter((n) => n !== leader);
    const t0 = Date.now();
    for (const n of victims) cluster.crashNode(n);
    // Keep reading for a while with no replica at all.
    await until('3 s of reads without replicas', async () => Date.now() - t0 >= 3000, 10_000);
    await traffic.stop();
    const m = measure(traffic.outcomes, t0);
    const readsFailed = traffic.outcomes.filter((o) => o.kind === 'read' && o.at >= t0 && !isOk(o)).length;
    const readsOk = traffic.outcomes.filter((o) => o.kind === 'read' && o.at >= t0 + 1000 && isOk(o)).length;
    const fellBackAfter = await fellBack();
    for (const n of victims) await cluster.startNode(n);
    await cluster.waitHealthy(90_000);
    // Back on the replicas once they are: the replica counter moves again.
    const replicaReads = await onReplica();
    await until(
      'reads on a replica again',
      async () => {
        await api('GET', `/courses/${courseId}`, tokens.student);
        return (await onReplica()) > replicaReads;
      },
      20_000,
    );
    const audited = await audit(traffic.accepted);
    if (audited.pending !== 0) await diagnoseGrader();
    printCounts('HA REPLICAS CRASH', {
      crashed: victims,
      ...m,
      readsFailed,
      readsOkAfter1s: readsOk,
      readsSentToPrimaryBecauseReplicaFailed: fellBackAfter - fellBackBefore,
      ...audited,
      ryw: { checks: traffic.ryw.checks, violations: traffic.ryw.violations.slice(0, 5) },
      staleKeepAliveResends: staleSocketRetries.count,
      exited: exited(),
    });
    expect(exited()).toEqual([]);
    expect(readsFailed).toBe(0);
    expect(readsOk).toBeGreaterThan(100);
    const writesOk = traffic.outcomes.filter((o) => o.kind === 'write' && o.started >= t0 + 1000 && isOk(o));
    expect(writesOk.length).toBeGreaterThan(0);
    expect(fellBackAfter).toBeGreaterThan(fellBackBefore);
    expect(m.otherThan503).toEqual([]);
    expect(audited.lost).toBe(0);
    expect(audited.pending).toBe(0);
    expect(audited.gradedTwice).toBe(0);
    expect(traffic.ryw.violations).toEqual([]);
  }, 240_000);
});
