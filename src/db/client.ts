import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { Config } from '../config.ts';
import { BoundedPool } from './pool.ts';
import * as schema from './schema/index.ts';

export type Db = NodePgDatabase<typeof schema>;
/** A transaction handle or the database itself: queries accept either. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0] | Db;

export interface Database {
  /** Light requests. */
  db: Db;
  /** Heavy requests (gradebook, CSV, regrade) get their own small pool so they cannot starve light ones. */
  heavyDb: Db;
  pool: BoundedPool;
  heavyPool: BoundedPool;
  close(): Promise<void>;
}

export function connectDatabase(config: Config, url: string, role = 'api'): Database {
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
    applicationName: `lab:${name}:heavy`,
  });
  return {
    db: drizzle(pool, { schema }),
    heavyDb: drizzle(heavyPool, { schema }),
    pool,
    heavyPool,
    async close() {
      await Promise.all([pool.end(), heavyPool.end()]);
    },
  };
}
