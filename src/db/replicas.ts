import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import type pg from 'pg';
import type client from 'prom-client';
import { type Tally, talliedCounter } from '../lib/tallied-counter.ts';
import { isDatabaseUnavailable, isRecoveryConflict } from './errors.ts';
import type { BoundedPool } from './pool.ts';
import * as schema from './schema/index.ts';
import type { Db, Tx } from './types.ts';

/** A Postgres LSN ("16/B374D848") as a number that compares. */
export function parseLsn(lsn: string): bigint {
  const m = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i.exec(lsn);
  if (!m) throw new Error(`not an LSN: ${lsn}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

// A connection to a server that is not in recovery (a promoted replica) has everything committed.
const EVERYTHING = 1n << 64n;
// After a replica fails (connection refused, dropped, no server behind the proxy), reads skip replicas
// this long, then try again.
const REPLICA_PAUSE_MS = 1000;

type Reason = 'no_replica' | 'replayed' | 'lagging' | 'replica_down' | 'replica_failed';

export interface ReadPools {
  pool: BoundedPool;
  heavyPool: BoundedPool;
}

/**
 * Reads that tolerate a few ms of staleness go to a replica, with read-your-writes (the design of
 * GitLab's database load balancer): after a user's write commits, the primary's WAL insert position is
 * stored for that user (write_positions, read on the primary with the caller lookup, so every instance
 * sees it); that user's reads go to a replica only once it has replayed that position
 * (pg_last_wal_replay_lsn() ≥ it), otherwise to the primary. The check runs on the very connection the
 * read then uses, and what each pooled connection's server is known to have replayed is remembered, so
 * a user who wrote long ago costs no extra round trip.
 * A replica that cannot be reached, drops the connection or cancels the query (recovery conflict)
 * sends the read to the primary, and replicas are skipped for a second.
 */
export class ReadReplicas {
  private replayed = new WeakMap<pg.PoolClient, bigint>();
  private dbs = new WeakMap<pg.PoolClient, Db>();
  private pausedUntil = 0;
  private counted = new Map<string, Tally>();
  private readonly readsTally: ReturnType<typeof talliedCounter<'target' | 'reason'>>;
  readonly reads: client.Counter<'target' | 'reason'>;

  constructor(
    private primary: { db: Db; heavyDb: Db; pool: BoundedPool; heavyPool: BoundedPool },
    readonly replica: ReadPools | null,
  ) {
    this.readsTally = talliedCounter({
      name: 'lab_db_reads_total',
      help: 'Replica-eligible reads by where they ran and why',
      labelNames: ['target', 'reason'] as const,
      registers: [],
    });
    this.reads = this.readsTally.counter;
  }

  get enabled() {
    return this.replica !== null;
  }

  /**
   * Runs `read` on a replica that has replayed `writeLsn` (the caller's last write; null = none known),
   * else on the primary. `read` must only read: it may run twice (replica failed, then primary).
   */
  run<T>(writeLsn: string | null, read: (db: Db) => Promise<T>, opts: { heavy?: boolean } = {}): Promise<T> {
    if (this.replica) return this.runOnReplica(writeLsn, read, opts);
    // Without replicas, the read's own promise: no async wrapper, no extra await on the hot read path.
    this.count('primary', 'no_replica');
    return read(opts.heavy ? this.primary.heavyDb : this.primary.db);
  }

  private async runOnReplica<T>(
    writeLsn: string | null,
    read: (db: Db) => Promise<T>,
    opts: { heavy?: boolean },
  ): Promise<T> {
    const onPrimary = () => read(opts.heavy ? this.primary.heavyDb : this.primary.db);
    const replica = await this.replicaClient(writeLsn, opts.heavy);
    if (!replica) return onPrimary();
    try {
      const result = await read(this.dbFor(replica));
      replica.release();
      return result;
    } catch (err) {
      if (!isDatabaseUnavailable(err) && !isRecoveryConflict(err)) {
        replica.release();
        throw err;
      }
      replica.release(err as Error);
      this.failed(err);
      return onPrimary();
    }
  }

  /**
   * A checked-out client for a long read (the CSV gradebook's cursor): a replica's that has replayed
   * `writeLsn`, else the primary's. The caller releases it.
   */
  async connect(writeLsn: string | null, opts: { heavy?: boolean } = {}): Promise<pg.PoolClient> {
    return (
      (await this.replicaClient(writeLsn, opts.heavy)) ??
      (opts.heavy ? this.primary.heavyPool : this.primary.pool).connect()
    );
  }

  private count(target: 'replica' | 'primary', reason: Reason) {
    const key = `${target} ${reason}`;
    let child = this.counted.get(key);
    if (child === undefined) {
      child = this.readsTally.tally({ target, reason });
      this.counted.set(key, child);
    }
    child.inc();
  }

  private failed(_err: unknown) {
    this.pausedUntil = Date.now() + REPLICA_PAUSE_MS;
  }

  /** A replica connection whose server has replayed `writeLsn`, or null (then: the primary). */
  private async replicaClient(writeLsn: string | null, heavy?: boolean): Promise<pg.PoolClient | null> {
    if (!this.replica) {
      this.count('primary', 'no_replica');
      return null;
    }
    if (Date.now() < this.pausedUntil) {
      this.count('primary', 'replica_down');
      return null;
    }
    let c: pg.PoolClient;
    try {
      c = await (heavy ? this.replica.heavyPool : this.replica.pool).connect();
    } catch (err) {
      this.failed(err);
      this.count('primary', 'replica_down');
      return null;
    }
    try {
      if (writeLsn && !(await this.hasReplayed(c, parseLsn(writeLsn)))) {
        c.release();
        this.count('primary', 'lagging');
        return null;
      }
    } catch (err) {
      c.release(err as Error);
      this.failed(err);
      this.count('primary', 'replica_failed');
      return null;
    }
    this.count('replica', 'replayed');
    return c;
  }

  private async hasReplayed(c: pg.PoolClient, want: bigint): Promise<boolean> {
    const known = this.replayed.get(c);
    if (known !== undefined && known >= want) return true;
    const { rows } = await c.query<{ lsn: string | null }>('select pg_last_wal_replay_lsn()::text as lsn');
    const now = rows[0]?.lsn ? parseLsn(rows[0].lsn) : EVERYTHING;
    this.replayed.set(c, now);
    return now >= want;
  }

  /** A Drizzle instance bound to one pooled connection (prepared statements are per connection anyway). */
  private dbFor(c: pg.PoolClient): Db {
    let db = this.dbs.get(c);
    if (!db) {
      db = drizzle(c, { schema }) as unknown as Db;
      this.dbs.set(c, db);
    }
    return db;
  }
}

/**
 * A per-database memo of a prepare function: replica reads get a Drizzle instance per connection, and
 * each needs its own prepared query objects.
 */
export function perDb<T>(prepare: (db: Db) => T): (db: Db) => T {
  const cache = new WeakMap<Db, T>();
  return (db) => {
    let p = cache.get(db);
    if (!p) {
      p = prepare(db);
      cache.set(db, p);
    }
    return p;
  };
}

/**
 * Remembers, for each user, the primary's WAL insert position now — at or after the end of every
 * commit they have made — so their next reads wait for a replica that has replayed it. One statement;
 * its commit is flushed on the primary but does not wait for the synchronous replica
 * (synchronous_commit = local for this transaction only): the write it follows already did, and the
 * position streams to the replicas a moment later, so it survives a failover too.
 */
export async function recordWritePositions(tx: Tx, userIds: string[]): Promise<void> {
  if (userIds.length === 0) return;
  await tx.execute(sql`
    insert into write_positions (user_id, lsn, at)
    select u, pg_current_wal_insert_lsn(), now()
      from unnest(${`{${userIds.join(',')}}`}::uuid[]) u,
           (select set_config('synchronous_commit', 'local', true)) s
    on conflict (user_id) do update
       set lsn = greatest(write_positions.lsn, excluded.lsn), at = excluded.at`);
}
