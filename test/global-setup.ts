import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { runMigrations } from '../src/db/migrate.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    templateDb: string;
  }
}

/**
 * One Postgres for the whole run (DATABASE_URL, else an embedded one in a temp folder), a template
 * database migrated once, and every test file clones its own database from it (test/db.ts).
 */
export default async function setup(project: TestProject) {
  let adminUrl = process.env.DATABASE_URL;
  let stop = async () => {};
  if (!adminUrl) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lab-test-pg-'));
    await fs.chmod(dir, 0o777);
    const pgHandle = await startEmbeddedPostgres({
      dataDir: path.join(dir, 'data'),
      persistent: false,
      maxConnections: 300,
    });
    adminUrl = pgHandle.url('postgres');
    stop = async () => {
      await pgHandle.stop();
      await fs.rm(dir, { recursive: true, force: true });
    };
  }
  const templateDb = `lab_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${templateDb}`);
  await admin.query(`create database ${templateDb}`);
  const u = new URL(adminUrl);
  u.pathname = `/${templateDb}`;
  await runMigrations(u.toString());
  await admin.end();
  project.provide('pgAdminUrl', adminUrl);
  project.provide('templateDb', templateDb);
  return async () => {
    const a = new pg.Client({ connectionString: adminUrl });
    await a.connect();
    const dbs = await a.query<{ datname: string }>(
      `select datname from pg_database where datname like 'lab_t_%' or datname = $1`,
      [templateDb],
    );
    for (const { datname } of dbs.rows) await a.query(`drop database if exists ${datname} with (force)`);
    await a.end();
    await stop();
  };
}
