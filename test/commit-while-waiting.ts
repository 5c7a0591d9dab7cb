import type pg from 'pg';
import { until } from './wait.ts';

/**
 * Interleaves two connections so that a statement's snapshot misses a row committed while it waited:
 * connection A takes a lock and inserts (`insert`), connection B starts `select` (whose first FROM item
 * waits for that lock, `pg_advisory_xact_lock(4242)::text as t`, so its snapshot is taken before A's
 * commit), A commits once B is seen waiting, and B's row is returned. How a test shows that a write gate
 * counts with a snapshot taken after its own lock, not the statement's.
 */
export async function selectAfterCommitWhileWaiting<Row>(
  pool: pg.Pool,
  insert: { sql: string; params: unknown[] },
  select: { sql: string; params: unknown[] },
): Promise<Row> {
  const a: pg.PoolClient = await pool.connect();
  const b: pg.PoolClient = await pool.connect();
  try {
    await a.query('begin');
    await a.query('select pg_advisory_xact_lock(4242)');
    await a.query(insert.sql, insert.params);
    const pending = b.query(select.sql, select.params);
    await until(async () => {
      const { rows } = await pool.query(
        `select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted`,
      );
      return rows[0].n > 0;
    }, 'the second statement waiting for the lock');
    await a.query('commit');
    return (await pending).rows[0] as Row;
  } finally {
    a.release();
    b.release();
  }
}
