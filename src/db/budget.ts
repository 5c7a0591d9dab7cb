import pg from 'pg';
import type { Config } from '../config.ts';
import { sslFor } from './pool.ts';

/** What the live server allows. */
export interface ServerLimits {
  version: string;
  versionNum: number;
  maxConnections: number;
  superuserReserved: number;
  /** `reserved_connections` exists from Postgres 16; 0 before. */
  reserved: number;
}

export interface FleetShape {
  instances: number;
  poolMax: number;
  heavyPoolMax: number;
  graders: number;
  graderPoolMax: number;
  reserve: number;
}

export interface BudgetRow {
  what: string;
  count: number;
  each: number;
  total: number;
}

export interface Budget {
  rows: BudgetRow[];
  need: number;
  available: number;
  fits: boolean;
  /** The arithmetic as one line, e.g. "3 × (200+1+1) + 2 × 5 + 5 = 621 > 100 − 3 = 97". */
  arithmetic: string;
}

/** Every API instance holds one extra connection outside its pools: the LISTEN connection for /events. */
export const LISTEN_CONNECTIONS_PER_INSTANCE = 1;

export function fleetFromConfig(config: Config, instances = config.INSTANCES): FleetShape {
  return {
    instances,
    poolMax: config.DB_POOL_MAX,
    heavyPoolMax: config.DB_HEAVY_POOL_MAX,
    graders: config.GRADERS,
    graderPoolMax: config.GRADER_POOL_MAX,
    reserve: config.DB_RESERVED_CONNECTIONS,
  };
}

/**
 * The connection budget of DESIGN.md, as a pure function: the fleet's worst case (every pool full)
 * must fit in what the server lets non-superusers open. Past max_connections clients get 53300 at
 * the worst moment (a deadline burst), so Lab refuses to start instead.
 */
export function computeBudget(fleet: FleetShape, limits: ServerLimits): Budget {
  const perInstance = fleet.poolMax + fleet.heavyPoolMax + LISTEN_CONNECTIONS_PER_INSTANCE;
  const rows: BudgetRow[] = [
    {
      what: `API instances (pool ${fleet.poolMax} + heavy ${fleet.heavyPoolMax} + listen ${LISTEN_CONNECTIONS_PER_INSTANCE})`,
      count: fleet.instances,
      each: perInstance,
      total: fleet.instances * perInstance,
    },
    {
      what: 'graders',
      count: fleet.graders,
      each: fleet.graderPoolMax,
      total: fleet.graders * fleet.graderPoolMax,
    },
    { what: 'reserve (migrations, admin, doctor)', count: 1, each: fleet.reserve, total: fleet.reserve },
  ];
  const need = rows.reduce((s, r) => s + r.total, 0);
  const available = limits.maxConnections - limits.superuserReserved - limits.reserved;
  const fits = need <= available;
  const lhs = `${fleet.instances} × (${fleet.poolMax}+${fleet.heavyPoolMax}+${LISTEN_CONNECTIONS_PER_INSTANCE}) + ${fleet.graders} × ${fleet.graderPoolMax} + ${fleet.reserve}`;
  const rhs = `${limits.maxConnections} − ${limits.superuserReserved}${limits.reserved ? ` − ${limits.reserved}` : ''}`;
  const arithmetic = `${lhs} = ${need} ${fits ? '≤' : '>'} ${rhs} = ${available}`;
  return { rows, need, available, fits, arithmetic };
}

/**
 * The budget of each read replica (DATABASE_READ_URL): every API instance's read pools, which may all
 * land on one replica when the other is down; graders and LISTEN connections stay on the primary.
 */
export function computeReplicaBudget(fleet: FleetShape, limits: ServerLimits): Budget {
  const perInstance = fleet.poolMax + fleet.heavyPoolMax;
  const rows: BudgetRow[] = [
    {
      what: `API instances (read pool ${fleet.poolMax} + read heavy ${fleet.heavyPoolMax})`,
      count: fleet.instances,
      each: perInstance,
      total: fleet.instances * perInstance,
    },
    { what: 'reserve (admin, doctor)', count: 1, each: fleet.reserve, total: fleet.reserve },
  ];
  const need = rows.reduce((sum, r) => sum + r.total, 0);
  const available = limits.maxConnections - limits.superuserReserved - limits.reserved;
  const fits = need <= available;
  const lhs = `${fleet.instances} × (${fleet.poolMax}+${fleet.heavyPoolMax}) + ${fleet.reserve}`;
  const rhs = `${limits.maxConnections} − ${limits.superuserReserved}${limits.reserved ? ` − ${limits.reserved}` : ''}`;
  return {
    rows,
    need,
    available,
    fits,
    arithmetic: `${lhs} = ${need} ${fits ? '≤' : '>'} ${rhs} = ${available}`,
  };
}

export function formatBudget(budget: Budget, limits: ServerLimits, title = 'Connection budget'): string {
  const lines = [title, `  ${'what'.padEnd(52)} ${'count'.padStart(5)} ${'each'.padStart(5)} total`];
  for (const r of budget.rows)
    lines.push(
      `  ${r.what.padEnd(52)} ${String(r.count).padStart(5)} ${String(r.each).padStart(5)} ${String(r.total).padStart(5)}`,
    );
  lines.push(`  ${'needed'.padEnd(64)} ${String(budget.need).padStart(5)}`);
  lines.push(
    `  ${`available (max_connections ${limits.maxConnections} − superuser_reserved ${limits.superuserReserved}${
      limits.versionNum >= 160000 ? ` − reserved ${limits.reserved}` : ''
    })`.padEnd(64)} ${String(budget.available).padStart(5)}`,
  );
  lines.push(`  ${budget.fits ? 'fits' : 'DOES NOT FIT'}: ${budget.arithmetic}`);
  return lines.join('\n');
}

export class BudgetError extends Error {
  constructor(
    readonly budget: Budget,
    readonly limits: ServerLimits,
    where = "the database's",
  ) {
    super(
      `The fleet does not fit in ${where} connections: ${budget.arithmetic}.\n` +
        'Lower DB_POOL_MAX / DB_HEAVY_POOL_MAX / GRADER_POOL_MAX / INSTANCES / GRADERS / DB_RESERVED_CONNECTIONS, ' +
        "or raise the server's max_connections (or put PgBouncer in front).\n" +
        formatBudget(budget, limits),
    );
    this.name = 'BudgetError';
  }
}

/** Opens one short admin connection (it is part of the reserve). */
export async function withAdminClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString: url,
    application_name: `lab:admin-${process.pid}`,
    connectionTimeoutMillis: 5000,
    ...sslFor(url),
  });
  // A dropped connection rejects the query in flight; without a listener it would also crash the process.
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export async function readServerLimits(client: pg.Client): Promise<ServerLimits> {
  const { rows } = await client.query<{ name: string; setting: string }>(
    `select name, setting from pg_settings
      where name in ('server_version', 'server_version_num', 'max_connections',
                     'superuser_reserved_connections', 'reserved_connections')`,
  );
  const s = Object.fromEntries(rows.map((r) => [r.name, r.setting]));
  return {
    version: s.server_version ?? 'unknown',
    versionNum: Number(s.server_version_num ?? 0),
    maxConnections: Number(s.max_connections),
    superuserReserved: Number(s.superuser_reserved_connections ?? 0),
    reserved: Number(s.reserved_connections ?? 0),
  };
}

export interface ConnectionUsage {
  applicationName: string;
  state: string;
  count: number;
}

/** Connections open on the server right now, by application_name (every Lab process names itself). */
export async function readConnectionUsage(client: pg.Client): Promise<ConnectionUsage[]> {
  const { rows } = await client.query<{ application_name: string; state: string | null; n: number }>(
    `select application_name, coalesce(state, 'background') as state, count(*)::int as n
       from pg_stat_activity
      where backend_type = 'client backend'
      group by 1, 2 order by 1, 2`,
  );
  return rows.map((r) => ({
    applicationName: r.application_name || '(none)',
    state: r.state ?? '',
    count: r.n,
  }));
}

/**
 * The live check run by `serve`, `grader` and `up` before they open their pools: throws BudgetError
 * (message with the arithmetic) when the configured fleet cannot fit.
 */
export async function checkBudget(
  url: string,
  fleet: FleetShape,
  readUrl?: string,
): Promise<{
  budget: Budget;
  limits: ServerLimits;
  usage: ConnectionUsage[];
  othersInUse: number;
  /** The replica behind readUrl: its budget, or why it could not be checked (then reads use the primary). */
  replica?: { budget: Budget; limits: ServerLimits } | { unreachable: string };
}> {
  const { limits, usage } = await withAdminClient(url, async (c) => ({
    limits: await readServerLimits(c),
    usage: await readConnectionUsage(c),
  }));
  const budget = computeBudget(fleet, limits);
  if (!budget.fits) throw new BudgetError(budget, limits);
  let replica: { budget: Budget; limits: ServerLimits } | { unreachable: string } | undefined;
  if (readUrl) {
    // A replica that is down must not keep the API from starting: its reads go to the primary.
    const replicaLimits = await withAdminClient(readUrl, readServerLimits).catch(
      (err: Error) => err.message || String(err),
    );
    if (typeof replicaLimits === 'string') replica = { unreachable: replicaLimits };
    else {
      replica = { budget: computeReplicaBudget(fleet, replicaLimits), limits: replicaLimits };
      if (!replica.budget.fits) throw new BudgetError(replica.budget, replicaLimits, "each read replica's");
    }
  }
  // Connections of other applications are not ours to budget, but they shrink what is left.
  const othersInUse = usage
    .filter((u) => !u.applicationName.startsWith('lab:'))
    .reduce((sum, u) => sum + u.count, 0);
  return { budget, limits, usage, othersInUse, replica };
}

/** A warning when connections of other applications leave less room than the fleet needs. */
export function crowdedWarning(result: { budget: Budget; othersInUse: number }): string | null {
  const { budget, othersInUse } = result;
  if (budget.need + othersInUse <= budget.available) return null;
  return `warning: other clients hold ${othersInUse} connections right now; with the fleet's ${budget.need} that is more than the ${budget.available} available.`;
}
