import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../test/db.ts';
import { BoundedPool } from './pool.ts';

let url: string;
let drop: () => Promise<void>;
beforeAll(async () => {
  ({ url, drop } = await createTestDatabase());
});
afterAll(() => drop());

describe('transactions over a pool of one (drizzle-fixes.ts)', () => {
  it('give the connection back when BEGIN fails on a dropped connection, so the next transaction runs', async () => {
    const pool = new BoundedPool({
      connectionString: url,
      max: 1,
      acquireTimeoutMs: 2000,
      maxWaiting: 10,
      statementTimeoutMs: 5000,
      applicationName: 'lab:drizzle-fix-test',
    });
    const db = drizzle(pool);
    try {
      await db.transaction(async (tx) => tx.execute(sql`select 1`));
      // The connection drops just as a transaction takes it from the pool (a restart, a failover).
      let drop = true;
      pool.on('acquire', (client) => {
        if (!drop) return;
        drop = false;
        (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      });
      await expect(db.transaction(async (tx) => tx.execute(sql`select 1`))).rejects.toThrow();
      // Without the fix the pool's only connection stays checked out and this waits for it, then times out.
      const again = await db.transaction(
        async (tx) => (await tx.execute<{ n: number }>(sql`select 2 as n`)).rows[0]!.n,
      );
      expect(again).toBe(2);
    } finally {
      await pool.end();
    }
  });

  it("keeps a healthy connection when the caller's own code throws", async () => {
    const pool = new BoundedPool({
      connectionString: url,
      max: 1,
      acquireTimeoutMs: 2000,
      maxWaiting: 10,
      statementTimeoutMs: 5000,
      applicationName: 'lab:drizzle-fix-test',
    });
    const db = drizzle(pool);
    try {
      const pid = () =>
        db.transaction(
          async (tx) => (await tx.execute<{ pid: number }>(sql`select pg_backend_pid() as pid`)).rows[0]!.pid,
        );
      const before = await pid();
      await expect(db.transaction(async () => Promise.reject(new Error('not found')))).rejects.toThrow(
        'not found',
      );
      expect(await pid()).toBe(before);
    } finally {
      await pool.end();
    }
  });
});
