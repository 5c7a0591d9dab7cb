import { drizzle } from 'drizzle-orm/node-postgres';
import type { Config } from '../config.ts';
import { BoundedPool } from './pool.ts';
import { ReadReplicas } from './replicas.ts';
import * as schema from './schema/index.ts';
import type { Db } from './types.ts';

export type { Db, Tx } from './types.ts';

export interface Database {
  /** Light requests. */
  db: Db;
  /** Heavy requests (gradebook, CSV, regrade) get their own small pool so they cannot starve light ones. */
  heavyDb: Db;
  pool: BoundedPool;
  heavyPool: BoundedPool;
  /** Lag-tolerant reads: on a replica (DATABASE_READ_URL) with read-your-writes, else the primary. */
  reads: ReadReplicas;
  close(): Promise<void>;
}

export function connectDatabase(
  config: Config,
  url: string,
  role = 'api',
  readUrl: string | undefined = config.DATABASE_READ_URL,
): Database {
  const name = config.INSTANCE_NAME || `${role}-${process.pid}`;
  const common = {
    connectionString: url,
    acquireTimeoutMs: config.DB_POOL_ACQUIRE_TIMEOUT_MS,
    maxWaiting: config.DB_POOL_MAX_WAITING,
    statementTimeoutMs: config.DB_STATEMENT_TIMEOUT_MS,
  };
  const pool = new BoundedPool({ ...common, max: config.DB_POOL_MAX, applicationName: `lab:${name}` });
  const heavyPool = new BoundedPool({
    ...common,
    max: config.DB_HEAVY_POOL_MAX,
    // Heavy queries (a big gradebook) legitimately run longer than light ones.
    statementTimeoutMs: Math.max(config.DB_STATEMENT_TIMEOUT_MS, 30_000),
    namedStatements: false,
    applicationName: `lab:${name}:heavy`,
  });
  const db = drizzle(pool, { schema });
  const heavyDb = drizzle(heavyPool, { schema });
  // The same pool sizes on the replicas; a replica that does not answer within a second is skipped.
  const replica = readUrl
    ? {
        pool: new BoundedPool({
          ...common,
          connectionString: readUrl,
          acquireTimeoutMs: Math.min(config.DB_POOL_ACQUIRE_TIMEOUT_MS, 1000),
          max: config.DB_POOL_MAX,
          applicationName: `lab:${name}:read`,
        }),
        heavyPool: new BoundedPool({
          ...common,
          connectionString: readUrl,
          acquireTimeoutMs: Math.min(config.DB_POOL_ACQUIRE_TIMEOUT_MS, 1000),
          max: config.DB_HEAVY_POOL_MAX,
          statementTimeoutMs: Math.max(config.DB_STATEMENT_TIMEOUT_MS, 30_000),
          namedStatements: false,
          applicationName: `lab:${name}:read-heavy`,
        }),
      }
    : null;
  return {
    db,
    heavyDb,
    pool,
    heavyPool,
    reads: new ReadReplicas({ db, heavyDb, pool, heavyPool }, replica),
    async close() {
      await Promise.all([pool.end(), heavyPool.end(), replica?.pool.end(), replica?.heavyPool.end()]);
    },
  };
}
