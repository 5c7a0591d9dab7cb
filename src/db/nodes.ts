import type pg from 'pg';
import {
  type ConnectionUsage,
  readConnectionUsage,
  readServerLimits,
  type ServerLimits,
  withAdminClient,
} from './budget.ts';

/** One Postgres server of the cluster as `lab doctor` shows it. */
export interface NodeInfo {
  /** The server's own address (not the proxy's): inet_server_addr():inet_server_port(). */
  server: string;
  role: 'primary' | 'replica';
  /** Primary: current WAL position; replica: replayed position. */
  lsn: string | null;
  /** Replica: bytes of WAL it has not replayed yet, against the primary's position read just before. */
  lagBytes: number | null;
  /** Replica: age of the last transaction it replayed (grows while the primary is idle, too). */
  lastReplaySeconds: number | null;
  limits: ServerLimits;
  usage: ConnectionUsage[];
}

/** A standby as the primary sees it (pg_stat_replication; needs pg_monitor for the positions). */
export interface Standby {
  name: string;
  state: string;
  syncState: string;
  lagBytes: number | null;
  replayLag: string | null;
}

export async function inspectNode(client: pg.Client, primaryLsn: string | null = null): Promise<NodeInfo> {
  const { rows } = await client.query<{
    server: string;
    recovery: boolean;
    lsn: string | null;
    lag: string | null;
    age: number | null;
  }>(
    `select coalesce(host(inet_server_addr()), 'local') || ':' || coalesce(inet_server_port(), 0) as server,
            pg_is_in_recovery() as recovery,
            (case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end)::text as lsn,
            case when pg_is_in_recovery() and $1::pg_lsn is not null
                 then pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn()) end::text as lag,
            extract(epoch from now() - pg_last_xact_replay_timestamp())::float8 as age`,
    [primaryLsn],
  );
  const r = rows[0]!;
  return {
    server: r.server,
    role: r.recovery ? 'replica' : 'primary',
    lsn: r.lsn,
    lagBytes: r.lag === null ? null : Math.max(0, Number(r.lag)),
    lastReplaySeconds: r.recovery ? r.age : null,
    limits: await readServerLimits(client),
    usage: await readConnectionUsage(client),
  };
}

export async function readStandbys(client: pg.Client): Promise<Standby[]> {
  const { rows } = await client.query<{
    name: string;
    state: string | null;
    sync_state: string | null;
    lag: string | null;
    replay_lag: string | null;
  }>(
    `select application_name as name, state, sync_state,
            pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::text as lag, replay_lag::text
       from pg_stat_replication order by application_name`,
  );
  return rows.map((r) => ({
    name: r.name,
    state: r.state ?? '?',
    syncState: r.sync_state ?? '?',
    lagBytes: r.lag === null ? null : Number(r.lag),
    replayLag: r.replay_lag,
  }));
}

/**
 * Every replica behind a load-balanced read URL (HAProxy round-robin): connects up to `attempts` times,
 * one connection at a time, and keeps one report per distinct server.
 */
export async function reachReplicas(readUrl: string, primaryLsn: string | null, attempts: number) {
  const found = new Map<string, NodeInfo>();
  const errors: string[] = [];
  for (let i = 0; i < attempts; i++) {
    try {
      const node = await withAdminClient(readUrl, (c) => inspectNode(c, primaryLsn));
      if (!found.has(node.server)) found.set(node.server, node);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  return { nodes: [...found.values()], errors };
}

const bytes = (n: number | null) =>
  n === null
    ? '?'
    : n < 1024
      ? `${n} B`
      : n < 1 << 20
        ? `${(n / 1024).toFixed(1)} kB`
        : `${(n / (1 << 20)).toFixed(1)} MB`;

/** The "Nodes" part of `lab doctor`: role, position/lag and connections by application_name of each. */
export function formatNodes(nodes: NodeInfo[], standbys: Standby[]): string {
  const out = ['Nodes'];
  for (const n of nodes) {
    const lag =
      n.role === 'replica'
        ? `replay lag ${bytes(n.lagBytes)}${n.lastReplaySeconds === null ? '' : `, last replayed commit ${n.lastReplaySeconds.toFixed(1)} s ago`}`
        : `WAL at ${n.lsn}`;
    out.push(
      `  ${n.role.padEnd(8)} ${n.server.padEnd(22)} max_connections ${n.limits.maxConnections}  ${lag}`,
    );
    for (const u of n.usage)
      out.push(`      ${u.applicationName.padEnd(40)} ${u.state.padEnd(20)} ${u.count}`);
  }
  if (standbys.length) {
    out.push('  standbys seen by the primary (pg_stat_replication)');
    for (const s of standbys)
      out.push(
        `    ${s.name.padEnd(12)} ${s.state.padEnd(10)} ${s.syncState.padEnd(6)} lag ${bytes(s.lagBytes)}${s.replayLag ? `, replay_lag ${s.replayLag}` : ''}`,
      );
  }
  return out.join('\n');
}
