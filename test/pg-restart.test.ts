import fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { connectDatabase, type Database } from '../src/db/client.ts';
import { type EmbeddedHandle, startEmbeddedPostgres } from '../src/db/embedded.ts';
import { runMigrations } from '../src/db/migrate.ts';
import { startGrader } from '../src/grading/grader.ts';
import { buildWorld, type World } from './factories.ts';
import { openStream } from './sse.ts';

/**
 * Postgres restarts under a running API instance and grader (its own Postgres: the shared one cannot
 * be stopped). Neither crashes; the grader pauses and resumes, the LISTEN connection comes back.
 */
let dir: string;
let pg: EmbeddedHandle;
let database: Database;
let app: FastifyInstance;
let grader: { stop(): Promise<void> };
let w: World;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lab-restart-pg-'));
  await fs.chmod(dir, 0o777);
  pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), persistent: true, maxConnections: 40 });
  const url = pg.url('postgres');
  await runMigrations(url);
  const config = loadConfig({}, { DATABASE_URL: url, LOG_LEVEL: 'silent', MAX_EVENT_LOOP_DELAY_MS: 0 });
  database = connectDatabase(config, url, 'restart');
  app = await buildApp(config, database, { logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  grader = await startGrader(config, url, { pollMs: 500 });
  w = await buildWorld(app, 'Restart');
}, 120_000);

afterAll(async () => {
  await grader?.stop();
  await app?.close();
  await database?.close();
  await pg?.stop().catch(() => {});
  await fs.rm(dir, { recursive: true, force: true }).catch(() => {});
}, 60_000);

it('grader and event stream survive a Postgres restart', async () => {
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const s = await openStream(base, { authorization: `Bearer ${w.student.token}` });
  expect(s.status).toBe(200);

  await pg.stop();
  // While it is down, the grader retries and the API answers 503, not 500.
  await new Promise((r) => setTimeout(r, 1500));
  const down = await w.student.req('GET', `/exercises/${w.exercise.id}/submissions`);
  expect(down.statusCode).toBe(503);
  pg = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'data'),
    port: pg.port,
    persistent: true,
    maxConnections: 40,
  });

  const code =
    'function add(a, b) { return a + b; }\nlet l; while ((l = readLine()) !== null) console.log(l);';
  let res = await w.student.req('POST', `/exercises/${w.exercise.id}/submissions`, { code });
  for (let i = 0; i < 50 && res.statusCode === 503; i++) {
    await new Promise((r) => setTimeout(r, 200));
    res = await w.student.req('POST', `/exercises/${w.exercise.id}/submissions`, { code });
  }
  expect(res.statusCode).toBe(202);
  const id = res.json().submission.id as string;
  await s.waitFor((x) => x.events.some((e) => JSON.parse(e.data).submission.id === id), 20_000);
  const done = s.events.find((e) => JSON.parse(e.data).submission.id === id)!;
  expect(JSON.parse(done.data).submission.status).toBe('passed');
  s.close();
}, 90_000);
