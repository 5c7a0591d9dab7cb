/**
 * A highly available Postgres on one machine, from Debian packages: a single-node etcd, three
 * Patroni-managed Postgres nodes with synchronous replication, and HAProxy with a primary port (checked
 * on Patroni's /primary) and a replica port (checked on /replica?lag=…). Used by `npm run ha`, the
 * fault suite (test/fault/ha.test.ts) and the bench (bench/scenarios/replicas.ts).
 *
 * The recipe and its pitfalls are measured in ../shared/research/postgres-ha.md. As root, etcd, Patroni
 * and Postgres run as the `postgres` user; every daemon's own pid is recorded (pids/), each node logs
 * to its own folder (log/nN), and every folder is owned by the user that runs in it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from '../../src/db/embedded.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const NODE_NAMES = ['n1', 'n2', 'n3'] as const;
const TOOLS = { patroni: '/usr/bin/patroni', etcd: '/usr/bin/etcd', haproxy: '/usr/sbin/haproxy' };
const INSTALL_HINT = 'apt-get install -y patroni etcd-server haproxy postgresql-15';

export interface ClusterPorts {
  etcdClient: number;
  etcdPeer: number;
  /** Postgres port of n1, n2, n3. */
  pg: number[];
  /** Patroni REST port of n1, n2, n3. */
  rest: number[];
  /** HAProxy: read-write port (the primary), read-only port (replicas), stats page. */
  primary: number;
  replicas: number;
  stats: number;
}

export interface Timings {
  ttl: number;
  loopWait: number;
  retryTimeout: number;
}

/** Everything needed to drive a cluster later (`ha status`, `ha down`); kept in DIR/cluster.json. */
export interface ClusterState {
  scope: string;
  dir: string;
  ports: ClusterPorts;
  pgBin: string;
  timings: Timings;
  maxConnections: number;
  replicaMaxLag: string;
  passwords: { superuser: string; replication: string; rewind: string; lab: string };
}

export interface StartOptions {
  dir: string;
  /** Fixed ports (the CLI); by default every port is a free one (tests, bench). */
  ports?: ClusterPorts;
  timings?: Partial<Timings>;
  maxConnections?: number;
  /** HAProxy leaves a replica further behind than this out of the replica port. */
  replicaMaxLag?: string;
  /** SIGKILL every daemon when this process exits (tests: a crashed test run must not leave a cluster). */
  killOnExit?: boolean;
  log?: (line: string) => void;
}

export interface Member {
  name: string;
  role: 'leader' | 'replica' | 'sync_standby' | string;
  state: string;
  timeline?: number;
  lag?: number | string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value (not undefined/false) or the deadline passes. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false | null>,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false && v !== null) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`${what}: not reached within ${timeoutMs} ms${last ? ` (last error: ${last})` : ''}`);
    await sleep(everyMs);
  }
}

/** The newest Debian Postgres (≥ 15) with the tools Patroni needs (pg_basebackup, pg_rewind). */
export function findPgBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && Number(v) >= 15)
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const v of versions) {
    const bin = path.join(root, v, 'bin');
    if (
      ['postgres', 'initdb', 'pg_ctl', 'pg_basebackup', 'pg_rewind'].every((t) =>
        existsSync(path.join(bin, t)),
      )
    )
      return bin;
  }
  throw new Error(`No Postgres ≥ 15 server binaries under ${root}: ${INSTALL_HINT}`);
}

function requireTools() {
  const missing = Object.entries(TOOLS)
    .filter(([, file]) => !existsSync(file))
    .map(([name]) => name);
  if (missing.length) throw new Error(`Missing ${missing.join(', ')}: ${INSTALL_HINT}`);
}

interface RunAs {
  uid?: number;
  gid?: number;
}

/** As root, the daemons run as `postgres` (Postgres refuses root); otherwise as ourselves. */
function runAs(): RunAs {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const u = id('-u');
  const g = id('-g');
  if (u.status !== 0 || g.status !== 0)
    throw new Error('Running as root needs the `postgres` user (the postgresql-15 package creates it).');
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

async function own(file: string, who: RunAs, mode?: number) {
  if (who.uid !== undefined) await fs.chown(file, who.uid, who.gid!);
  if (mode !== undefined) await fs.chmod(file, mode);
}

/** Alive and not a zombie (here PID 1 reaps orphans late, so a killed daemon lingers as a zombie). */
export function isAlive(pid: number | null | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function kill(pid: number, signal: NodeJS.Signals) {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

function render(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`template value ${key} missing`);
    return String(values[key]);
  });
}

export async function freePorts(): Promise<ClusterPorts> {
  const n = async (k: number) => Promise.all(Array.from({ length: k }, () => freePort()));
  const ports = await n(12);
  if (new Set(ports).size !== ports.length) return freePorts();
  return {
    etcdClient: ports[0]!,
    etcdPeer: ports[1]!,
    pg: ports.slice(2, 5),
    rest: ports.slice(5, 8),
    primary: ports[8]!,
    replicas: ports[9]!,
    stats: ports[10]!,
  };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** The ports `npm run ha` uses (those of the research note). */
export const DEFAULT_PORTS: ClusterPorts = {
  etcdClient: 2379,
  etcdPeer: 2380,
  pg: [5441, 5442, 5443],
  rest: [8008, 8009, 8010],
  primary: 5000,
  replicas: 5001,
  stats: 7000,
};

export class Cluster {
  private exitHook: (() => void) | null = null;

  constructor(
    readonly state: ClusterState,
    private log: (line: string) => void = () => {},
  ) {}

  get dir() {
    return this.state.dir;
  }

  /** What Lab uses: DATABASE_URL (HAProxy's primary port) and DATABASE_READ_URL (its replica port). */
  url(kind: 'primary' | 'replicas' = 'primary', database = 'lab'): string {
    const port = kind === 'primary' ? this.state.ports.primary : this.state.ports.replicas;
    return `postgres://lab:${this.state.passwords.lab}@127.0.0.1:${port}/${database}`;
  }

  /** Superuser on one node directly (doctor-like checks, tests), or through the primary port. */
  adminUrl(node?: string, database = 'lab'): string {
    const port = node ? this.state.ports.pg[this.index(node)]! : this.state.ports.primary;
    return `postgres://postgres:${this.state.passwords.superuser}@127.0.0.1:${port}/${database}`;
  }

  index(node: string): number {
    const i = (NODE_NAMES as readonly string[]).indexOf(node);
    if (i < 0) throw new Error(`no node ${node}`);
    return i;
  }

  private pidFile(name: string) {
    return path.join(this.dir, 'pids', name);
  }

  pidOf(name: string): number | null {
    try {
      return Number(readFileSync(this.pidFile(name), 'utf8').trim()) || null;
    } catch {
      return null;
    }
  }

  /** The postmaster of a node, from its data folder (null when not running). */
  postmasterOf(node: string): number | null {
    try {
      const pid = Number(
        readFileSync(path.join(this.dir, node, 'data', 'postmaster.pid'), 'utf8').split('\n')[0],
      );
      return isAlive(pid) ? pid : null;
    } catch {
      return null;
    }
  }

  private async daemon(
    name: string,
    cmd: string,
    args: string[],
    who: RunAs,
    env: Record<string, string> = {},
  ) {
    const logFile = path.join(this.dir, 'log', `${name}.out`);
    const fd = openSync(logFile, 'a');
    await own(logFile, who);
    const child = spawn(cmd, args, {
      ...who,
      cwd: this.dir,
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8', ...env },
    });
    closeSync(fd);
    child.on('error', (err) => this.log(`${name}: ${err.message}`));
    child.unref();
    // spawn execs the daemon itself (no shell in between), so this is its own pid.
    await fs.writeFile(this.pidFile(name), `${child.pid}\n`);
    return child.pid!;
  }

  private async rest(node: string, urlPath: string, init?: RequestInit, timeoutMs = 2000): Promise<Response> {
    const port = this.state.ports.rest[this.index(node)]!;
    return fetch(`http://127.0.0.1:${port}${urlPath}`, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  }

  /** Members as Patroni sees them (asked of any node that answers), or [] when none does. */
  async members(): Promise<Member[]> {
    for (const node of NODE_NAMES) {
      try {
        const res = await this.rest(node, '/cluster');
        if (res.ok) return ((await res.json()) as { members: Member[] }).members;
      } catch {
        // try the next node
      }
    }
    return [];
  }

  async leader(): Promise<string | null> {
    return (await this.members()).find((m) => m.role === 'leader')?.name ?? null;
  }

  /** True when Patroni on `node` says it is the writable primary. */
  async isPrimary(node: string): Promise<boolean> {
    try {
      return (await this.rest(node, '/primary')).status === 200;
    } catch {
      return false;
    }
  }

  async startEtcd() {
    const who = runAs();
    const { etcdClient, etcdPeer } = this.state.ports;
    await this.daemon(
      'etcd',
      TOOLS.etcd,
      [
        '--name=e1',
        `--data-dir=${path.join(this.dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=e1=http://127.0.0.1:${etcdPeer}`,
        '--heartbeat-interval=100',
        '--election-timeout=1000',
      ],
      who,
    );
    await until(
      'etcd healthy',
      async () => {
        const res = await fetch(`http://127.0.0.1:${etcdClient}/health`, {
          signal: AbortSignal.timeout(1000),
        });
        return res.ok;
      },
      20_000,
    );
  }

  /** Starts (or restarts, after a crash) the Patroni of one node; it starts its own Postgres. */
  async startNode(node: string) {
    const who = runAs();
    const nodeDir = path.join(this.dir, node);
    await this.daemon(`patroni-${node}`, TOOLS.patroni, [path.join(nodeDir, 'patroni.yml')], who, {
      HOME: nodeDir,
    });
  }

  async startHaproxy() {
    const cfg = path.join(this.dir, 'haproxy.cfg');
    const check = spawnSync(TOOLS.haproxy, ['-c', '-f', cfg], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`haproxy.cfg is invalid:\n${check.stdout}${check.stderr}`);
    await this.daemon('haproxy', TOOLS.haproxy, ['-db', '-f', cfg], {});
  }

  /**
   * A whole-node crash: Patroni and Postgres (postmaster and every backend) killed with SIGKILL at once.
   * Postgres backends are not in the postmaster's process group, so they are found by parent pid.
   */
  crashNode(node: string) {
    const patroni = this.pidOf(`patroni-${node}`);
    const pm = this.postmasterOf(node);
    const pids = [patroni, pm, ...(pm ? childrenOf(pm) : [])].filter((p): p is number => !!p);
    for (const pid of pids) kill(pid, 'SIGKILL');
    return pids;
  }

  /** A graceful stop of one node: Patroni stops its Postgres and releases the leader key. */
  async stopNode(node: string, timeoutMs = 30_000) {
    const patroni = this.pidOf(`patroni-${node}`);
    if (patroni && isAlive(patroni)) {
      kill(patroni, 'SIGTERM');
      await until(`patroni ${node} stopped`, async () => !isAlive(patroni), timeoutMs);
    }
    await this.stopOrphanPostmaster(node);
  }

  /** A Postgres whose Patroni was SIGKILLed keeps running (an orphan primary): stop it immediately. */
  private async stopOrphanPostmaster(node: string) {
    const pm = this.postmasterOf(node);
    if (!pm) return;
    kill(pm, 'SIGQUIT');
    await until(`postmaster of ${node} stopped`, async () => !isAlive(pm), 15_000);
  }

  /**
   * Patroni's maintenance mode on or off; resolves once every member reports it. While it is on, Patroni
   * leaves Postgres alone: notably, on PostgreSQL 14+ it otherwise resumes a replica's paused WAL replay
   * on its next HA cycle (meant for a pause caused by a parameter change), undoing a pause made by hand.
   */
  async setMaintenance(on: boolean, timeoutMs = 15_000): Promise<void> {
    const members = await this.members();
    const via = members.find((m) => m.role === 'leader')?.name ?? members[0]?.name ?? NODE_NAMES[0]!;
    const res = await this.rest(via, '/config', {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pause: on }),
    });
    if (!res.ok) throw new Error(`maintenance ${on ? 'on' : 'off'}: ${res.status} ${await res.text()}`);
    await until(
      `maintenance ${on ? 'on' : 'off'} on every member`,
      async () => {
        const states = await Promise.all(
          members.map(async (m) => {
            const status = (await (await this.rest(m.name, '/patroni')).json()) as { pause?: boolean };
            return status.pause === true;
          }),
        );
        return states.every((paused) => paused === on);
      },
      timeoutMs,
      100,
    );
  }

  /** A planned switchover through Patroni's REST API; resolves once `candidate` is the writable primary. */
  async switchover(candidate?: string, timeoutMs = 30_000): Promise<string> {
    const leader = await this.leader();
    if (!leader) throw new Error('no leader to switch over from');
    const target =
      candidate ??
      (await this.members()).find((m) => m.role === 'sync_standby')?.name ??
      NODE_NAMES.find((n) => n !== leader)!;
    // Patroni answers once the candidate has taken over (~2–3 s).
    const res = await this.rest(
      leader,
      '/switchover',
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ leader, candidate: target }),
      },
      timeoutMs,
    );
    if (!res.ok) throw new Error(`switchover ${leader} → ${target}: ${res.status} ${await res.text()}`);
    await until(`${target} primary`, () => this.isPrimary(target), timeoutMs);
    return target;
  }

  /**
   * Healthy = one leader, every other node a streaming replica of the leader's timeline, one of them the
   * synchronous standby, and both HAProxy ports answering (primary: writable; replicas: in recovery).
   */
  async waitHealthy(timeoutMs = 60_000): Promise<{ leader: string; sync: string }> {
    return until(
      'cluster healthy',
      async () => {
        const members = await this.members();
        const leader = members.find((m) => m.role === 'leader');
        const sync = members.find((m) => m.role === 'sync_standby');
        if (!leader || !sync || members.length !== NODE_NAMES.length) return false;
        if (members.some((m) => m.state !== 'running' && m.state !== 'streaming')) return false;
        if (members.some((m) => m.timeline !== undefined && m.timeline !== leader.timeline)) return false;
        const streaming = await this.query(
          this.adminUrl(undefined, 'postgres'),
          `select count(*) filter (where state = 'streaming')::int as n,
                  count(*) filter (where sync_state = 'sync')::int as sync,
                  not pg_is_in_recovery() as writable
             from pg_stat_replication`,
        );
        const s = streaming.rows[0] as { n: number; sync: number; writable: boolean };
        if (s.n !== NODE_NAMES.length - 1 || s.sync !== 1 || !s.writable) return false;
        const replica = await this.query(
          `postgres://postgres:${this.state.passwords.superuser}@127.0.0.1:${this.state.ports.replicas}/postgres`,
          'select pg_is_in_recovery() as r',
        );
        if (!(replica.rows[0] as { r: boolean }).r) return false;
        return { leader: leader.name, sync: sync.name };
      },
      timeoutMs,
      200,
    );
  }

  /** One query on a short-lived connection. */
  async query(url: string, text: string, values: unknown[] = []) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    client.on('error', () => {});
    await client.connect();
    try {
      return await client.query(text, values);
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** A superuser connection through the primary port that is not in recovery (writes would succeed). */
  async isWritable(): Promise<boolean> {
    try {
      const r = await this.query(this.adminUrl(undefined, 'postgres'), 'select not pg_is_in_recovery() as w');
      return (r.rows[0] as { w: boolean }).w;
    } catch {
      return false;
    }
  }

  /** `node`'s Patroni and Postgres log lines stamped at or after `sinceMs` (epoch ms), for a test's report. */
  async logSince(node: string, sinceMs: number): Promise<string[]> {
    const files = [
      path.join(this.dir, 'log', node, 'patroni.log'),
      path.join(this.dir, 'log', `patroni-${node}.out`),
    ];
    const lines: { at: number; line: string }[] = [];
    for (const file of files) {
      const text = await fs.readFile(file, 'utf8').catch(() => '');
      let at = 0;
      for (const line of text.split('\n')) {
        // Both logs start a line with "YYYY-MM-DD HH:MM:SS[.,]mmm" in UTC; continuation lines keep the last stamp.
        const stamp = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)[.,](\d{3})/.exec(line);
        if (stamp) at = Date.parse(`${stamp[1]}T${stamp[2]}.${stamp[3]}Z`);
        if (at >= sinceMs && line.trim()) lines.push({ at, line: `${node} ${path.basename(file)}: ${line}` });
      }
    }
    return lines.sort((a, b) => a.at - b.at).map((l) => l.line);
  }

  /** The role and database Lab connects with (not a superuser; pg_monitor lets `lab doctor` see replication). */
  async ensureLabDatabase() {
    const admin = this.adminUrl(undefined, 'postgres');
    const pw = pg.escapeLiteral(this.state.passwords.lab);
    await this.query(
      admin,
      `do $$ begin
         if not exists (select 1 from pg_roles where rolname = 'lab') then create role lab login password ${pw}; end if;
       end $$`,
    );
    await this.query(admin, 'grant pg_monitor to lab');
    const exists = await this.query(admin, `select 1 from pg_database where datname = 'lab'`);
    if (!exists.rowCount) await this.query(admin, 'create database lab owner lab');
  }

  /** Stops everything by recorded pid: HAProxy, every Patroni (each stops its Postgres), then etcd. */
  async stop() {
    const haproxy = this.pidOf('haproxy');
    if (haproxy) kill(haproxy, 'SIGTERM');
    await Promise.all(NODE_NAMES.map((n) => this.stopNode(n).catch((err) => this.log(String(err)))));
    const etcd = this.pidOf('etcd');
    if (etcd) kill(etcd, 'SIGTERM');
    await until('etcd and haproxy stopped', async () => !isAlive(etcd) && !isAlive(haproxy), 15_000);
    if (this.exitHook) process.removeListener('exit', this.exitHook);
  }

  /** Stops everything and deletes the folder. */
  async destroy() {
    await this.stop();
    await fs.rm(this.dir, { recursive: true, force: true });
  }

  /** What is running, for `ha status`. */
  daemons(): { name: string; pid: number | null; alive: boolean }[] {
    const names = ['etcd', ...NODE_NAMES.map((n) => `patroni-${n}`), 'haproxy'];
    return names.map((name) => {
      const pid = this.pidOf(name);
      return { name, pid, alive: isAlive(pid) };
    });
  }

  /** SIGKILL every daemon and orphan postmaster when this process exits. */
  killOnExit() {
    this.exitHook = () => {
      for (const name of ['haproxy', 'etcd', ...NODE_NAMES.map((n) => `patroni-${n}`)]) {
        const pid = this.pidOf(name);
        if (pid) kill(pid, 'SIGKILL');
      }
      for (const node of NODE_NAMES) {
        const pm = this.postmasterOf(node);
        if (pm) kill(pm, 'SIGQUIT');
      }
    };
    process.once('exit', this.exitHook);
  }

  /** Renders haproxy.cfg and every node's patroni.yml from the templates beside this file. */
  async writeConfigs() {
    const s = this.state;
    const who = runAs();
    const servers = NODE_NAMES.map(
      (n, i) => `    server ${n} 127.0.0.1:${s.ports.pg[i]} check port ${s.ports.rest[i]}`,
    ).join('\n');
    const haproxy = render(await fs.readFile(path.join(HERE, 'haproxy.cfg.in'), 'utf8'), {
      PRIMARY_PORT: s.ports.primary,
      REPLICA_PORT: s.ports.replicas,
      STATS_PORT: s.ports.stats,
      REPLICA_MAX_LAG: s.replicaMaxLag,
      SERVERS: servers,
    });
    await fs.writeFile(path.join(this.dir, 'haproxy.cfg'), haproxy);
    const template = await fs.readFile(path.join(HERE, 'patroni.yml.in'), 'utf8');
    for (const [i, node] of NODE_NAMES.entries()) {
      const nodeDir = path.join(this.dir, node);
      const logDir = path.join(this.dir, 'log', node);
      for (const d of [nodeDir, logDir]) {
        await fs.mkdir(d, { recursive: true });
        await own(d, who, 0o700);
      }
      const file = path.join(nodeDir, 'patroni.yml');
      await fs.writeFile(
        file,
        render(template, {
          SCOPE: s.scope,
          NAME: node,
          LOG_DIR: logDir,
          REST_PORT: s.ports.rest[i]!,
          ETCD_PORT: s.ports.etcdClient,
          TTL: s.timings.ttl,
          LOOP_WAIT: s.timings.loopWait,
          RETRY_TIMEOUT: s.timings.retryTimeout,
          MAX_CONNECTIONS: s.maxConnections,
          PG_PORT: s.ports.pg[i]!,
          DATA_DIR: path.join(nodeDir, 'data'),
          PG_BIN: s.pgBin,
          NODE_DIR: nodeDir,
          SUPERUSER_PASSWORD: s.passwords.superuser,
          REPLICATION_PASSWORD: s.passwords.replication,
          REWIND_PASSWORD: s.passwords.rewind,
          RUN_DIR: path.join(this.dir, 'run'),
        }),
        { mode: 0o600 },
      );
      await own(file, who);
    }
  }
}

const stateFile = (dir: string) => path.join(dir, 'cluster.json');

/** The cluster whose folder is `dir`, or null when there is none. */
export async function openCluster(dir: string, log?: (line: string) => void): Promise<Cluster | null> {
  const text = await fs.readFile(stateFile(path.resolve(dir)), 'utf8').catch(() => null);
  return text ? new Cluster(JSON.parse(text) as ClusterState, log) : null;
}

/**
 * Starts the cluster in `dir`: creates it (initdb on n1, replicas cloned from it) when the folder is new,
 * or starts the existing one again. Resolves once it is healthy (see waitHealthy) and Lab's role and
 * database exist.
 */
export async function startCluster(opts: StartOptions): Promise<Cluster> {
  requireTools();
  const log = opts.log ?? (() => {});
  const dir = path.resolve(opts.dir);
  const who = runAs();
  let cluster = await openCluster(dir, log);
  const fresh = !cluster;
  if (!cluster) {
    const secret = () => randomBytes(18).toString('base64url');
    cluster = new Cluster(
      {
        scope: `lab-${randomBytes(3).toString('hex')}`,
        dir,
        ports: opts.ports ?? (await freePorts()),
        pgBin: findPgBin(),
        timings: { ttl: 10, loopWait: 1, retryTimeout: 4, ...opts.timings },
        maxConnections: opts.maxConnections ?? 100,
        replicaMaxLag: opts.replicaMaxLag ?? '1MB',
        passwords: { superuser: secret(), replication: secret(), rewind: secret(), lab: secret() },
      },
      log,
    );
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(stateFile(dir), JSON.stringify(cluster.state, null, 2), { mode: 0o600 });
  }
  const running = cluster.daemons().filter((d) => d.alive);
  if (running.length) throw new Error(`${dir}: already running (${running.map((d) => d.name).join(', ')})`);
  const p = cluster.state.ports;
  const busy = [];
  for (const port of [p.etcdClient, p.etcdPeer, ...p.pg, ...p.rest, p.primary, p.replicas, p.stats])
    if (!(await portFree(port))) busy.push(port);
  if (busy.length)
    throw new Error(`port(s) ${busy.join(', ')} on 127.0.0.1 already in use; stop what uses them first`);
  for (const sub of ['pids', 'log', 'run', 'etcd']) await fs.mkdir(path.join(dir, sub), { recursive: true });
  await own(dir, who, 0o755);
  for (const sub of ['log', 'pids']) await own(path.join(dir, sub), who, 0o755);
  for (const sub of ['run', 'etcd']) await own(path.join(dir, sub), who, 0o700);
  await cluster.writeConfigs();
  if (opts.killOnExit) cluster.killOnExit();

  const t0 = performance.now();
  const ms = () => `${Math.round(performance.now() - t0)} ms`;
  await cluster.startEtcd();
  log(`etcd healthy (${ms()})`);
  if (fresh) {
    // n1 first, so it wins the initialisation race and the others clone it.
    await cluster.startNode('n1');
    await until('n1 primary', () => cluster.isPrimary('n1'), 60_000);
    log(`n1 initialised and primary (${ms()})`);
    await Promise.all(NODE_NAMES.slice(1).map((n) => cluster.startNode(n)));
  } else {
    await Promise.all(NODE_NAMES.map((n) => cluster.startNode(n)));
  }
  await cluster.startHaproxy();
  // HAProxy starts with every server up until its first checks fail: retry until they have settled.
  await until(
    "Lab's role and database",
    async () => {
      await cluster.ensureLabDatabase();
      return true;
    },
    60_000,
  );
  log(`primary reachable through HAProxy (${ms()})`);
  const { leader, sync } = await cluster.waitHealthy(90_000);
  log(
    `healthy: leader ${leader}, sync standby ${sync}, ${NODE_NAMES.length - 1} replicas streaming (${ms()})`,
  );
  return cluster;
}
