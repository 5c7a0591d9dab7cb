import { sql } from 'drizzle-orm';
import type { Tx } from './client.ts';

/** How long rows that only serve a time window are kept. */
export const RETENTION = {
  // The login rate limit looks back 15 minutes; a day leaves room for investigating an attack.
  loginFailuresHours: 24,
  // SSE resume (Last-Event-ID) only needs recent events; a week covers a laptop closed over a weekend.
  eventsDays: 7,
  // Runs are kept at least an hour (API v1.1); a day lets a student come back to yesterday's.
  runsHours: 24,
  // A user's last write position only matters until replicas have replayed it (milliseconds; a
  // replica lagging past the HAProxy lag check is out of rotation anyway): an hour is far beyond that.
  writePositionsHours: 1,
};

export interface Pruned {
  sessions: number;
  loginFailures: number;
  events: number;
  rateLimits: number;
  runs: number;
  writePositions: number;
}

/**
 * Deletes expired sessions, old login failures and old events, so these tables stay bounded. Each
 * delete is capped per call (the caller runs it periodically), so one run never holds locks for long.
 */
export async function pruneExpired(tx: Tx, batch = 10_000): Promise<Pruned> {
  const count = async (query: ReturnType<typeof sql>) => (await tx.execute(query)).rowCount ?? 0;
  const sessions = await count(sql`
    delete from sessions where id in (select id from sessions where expires_at < now() limit ${batch})`);
  const loginFailures = await count(sql`
    delete from login_failures where id in (
      select id from login_failures
      where at < now() - make_interval(hours => ${RETENTION.loginFailuresHours}) limit ${batch})`);
  const events = await count(sql`
    delete from events where id in (
      select id from events
      where created_at < now() - make_interval(days => ${RETENTION.eventsDays}) limit ${batch})`);
  // rate-limiter-flexible's counters (http/rate-limits.ts); `expire` is in epoch milliseconds.
  const rateLimits = await count(sql`
    delete from rate_limits where key in (
      select key from rate_limits
      where expire < (extract(epoch from now()) * 1000)::bigint - 3600000 limit ${batch})`);
  // A run still queued or running keeps its job (the job row references it): only finished ones go.
  const runs = await count(sql`
    delete from runs where id in (
      select id from runs
      where created_at < now() - make_interval(hours => ${RETENTION.runsHours})
        and status not in ('queued', 'running') limit ${batch})`);
  const writePositions = await count(sql`
    delete from write_positions where user_id in (
      select user_id from write_positions
      where at < now() - make_interval(hours => ${RETENTION.writePositionsHours}) limit ${batch})`);
  return { sessions, loginFailures, events, rateLimits, runs, writePositions };
}
