import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { BoundedPool, type PoolOptions } from '../src/db/pool.ts';

/** A fresh database for one test file, cloned from the migrated template (fast: a file copy). */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const adminUrl = inject('pgAdminUrl');
  const template = inject('templateDb');
  const name = `lab_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  // Cloning needs the template to have no other session; files starting at once take turns.
  for (let attempt = 0; ; attempt++) {
    try {
      await admin.query(`create database ${name} template ${template}`);
      break;
    } catch (err) {
      if (attempt > 50 || (err as { code?: string }).code !== '55006') throw err;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
    }
  }
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

/** A BoundedPool on a test database: one connection and a light pool's limits, `overrides` on top. */
export function testPool(url: string, applicationName: string, overrides: Partial<PoolOptions> = {}) {
  return new BoundedPool({
    connectionString: url,
    max: 1,
    acquireTimeoutMs: 2000,
    maxWaiting: 10,
    statementTimeoutMs: 5000,
    applicationName,
    ...overrides,
  });
}
