import type { BenchEnv, Proc } from './env.ts';
import type { Progress } from './progress.ts';
import type { SeededCourse } from './seed.ts';

export interface BenchOptions {
  reportOnly: boolean;
  scenarios: string[];
  quick: boolean;
  /** Classroom size (virtual students) of the first classroom step. */
  students: number;
  /** Students in the deadline burst. */
  burstStudents: number;
  /** Load generator processes for the classroom and burst (unset: by N, see students.ts). */
  generators?: number;
  /** Seconds of measured load per autocannon run. */
  durationS: number;
  /** autocannon connections for the read path. */
  connections: number;
  /** Target an already running Lab instead of starting instances. */
  url?: string;
  databaseUrl?: string;
  /** Largest N the classroom search may try. */
  maxStudents: number;
  /** Skip the classroom N search. */
  noSearch: boolean;
}

export interface Ctx {
  env: BenchEnv;
  progress: Progress;
  opts: BenchOptions;
  /** The main course: students with tokens, lessons, JS and Python exercises. */
  course: SeededCourse;
  log: (line: string) => void;
  /** Epoch ms after which no new step (scenario, search step) should start. */
  softDeadline: number;
}

/** Lab instances for a scenario: started by the bench, or the one given with --url. */
export async function withLab<T>(
  ctx: Ctx,
  instances: number,
  fn: (urls: string[], procs: Proc[]) => Promise<T>,
  extra: Record<string, string> = {},
): Promise<T> {
  if (ctx.opts.url) return fn([ctx.opts.url.replace(/\/$/, '')], []);
  const procs: Proc[] = [];
  try {
    for (let i = 0; i < instances; i++) procs.push(await ctx.env.startLab(i + 1, instances, extra));
    return await fn(
      procs.map((p) => p.url!),
      procs,
    );
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

/** Per-statement Postgres figures since the last reset (pg_stat_statements) for one role, top by total time. */
export async function statementStats(ctx: Ctx, role: string, limit = 8) {
  if (!ctx.env.pgStatStatements) return [];
  const { rows } = await ctx.env.admin.query<{
    query: string;
    calls: string;
    total_ms: number;
    mean_ms: number;
  }>(
    `select regexp_replace(query, '\\s+', ' ', 'g') as query, calls, round(total_exec_time::numeric, 1)::float8 as total_ms,
            round(mean_exec_time::numeric, 4)::float8 as mean_ms
     from pg_stat_statements
     where query not ilike '%pg_stat_statements%' and dbid = (select oid from pg_database where datname = current_database())
       and userid = (select oid from pg_roles where rolname = $2)
     order by total_exec_time desc limit $1`,
    [limit, role],
  );
  return rows.map((r) => ({
    query: r.query.slice(0, 160),
    calls: Number(r.calls),
    totalMs: r.total_ms,
    meanMs: r.mean_ms,
  }));
}

export async function resetStatements(ctx: Ctx) {
  if (ctx.env.pgStatStatements) await ctx.env.admin.query('select pg_stat_statements_reset()');
}

/** Mean execution time (ms) of the statements whose text matches a LIKE pattern, since the last reset. */
export async function statementMeanMs(ctx: Ctx, like: string): Promise<number | null> {
  if (!ctx.env.pgStatStatements) return null;
  const { rows } = await ctx.env.admin.query<{ mean: number | null }>(
    `select round((sum(total_exec_time) / nullif(sum(calls), 0))::numeric, 2)::float8 as mean
     from pg_stat_statements where query like $1`,
    [like],
  );
  return rows[0]?.mean ?? null;
}
