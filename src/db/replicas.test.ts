import type { AddressInfo } from 'node:net';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTestApp } from '../../test/app.ts';
import { testPool } from '../../test/db.ts';
import { buildWorld, type World } from '../../test/factories.ts';
import { openStream } from '../../test/sse.ts';
import { freePort } from './embedded.ts';
import { parseLsn, ReadReplicas, recordWritePositions } from './replicas.ts';

/*
 * The "replica" is this file's own database reached with search_path = public, pg_catalog, where
 * public.pg_last_wal_replay_lsn() reads a table: a replica whose replay position the test sets. Real
 * replicas (Patroni, streaming, a replica that stops replaying) are in test/fault/ha.test.ts.
 */
const REPLICA_OPTIONS = `options=${encodeURIComponent('-c search_path=public,pg_catalog')}`;
const ctx = withTestApp((url) => ({ DATABASE_READ_URL: `${url}?${REPLICA_OPTIONS}` }));
let w: World;
let admin: pg.Client;

/** The fake replica has replayed everything written so far (like a real one, it never goes back). */
const catchUp = () => admin.query('update fake_replay set lsn = pg_current_wal_insert_lsn()');

/** Where the reads of one kind went since `before`: the replica-eligible read counter by target. */
async function readCounts() {
  const { values } = await ctx.database.reads.reads.get();
  const sum = (target: string) =>
    values.filter((v) => v.labels.target === target).reduce((s, v) => s + v.value, 0);
  return { replica: sum('replica'), primary: sum('primary') };
}

async function whereDoesItRead(fn: () => Promise<unknown>) {
  const before = await readCounts();
  await fn();
  const after = await readCounts();
  return after.replica > before.replica ? 'replica' : after.primary > before.primary ? 'primary' : 'none';
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: ctx.url });
  await admin.connect();
  await admin.query(`
    create table fake_replay (lsn pg_lsn not null);
    insert into fake_replay values ('0/0');
    create function public.pg_last_wal_replay_lsn() returns pg_lsn language sql as 'select lsn from fake_replay';`);
  w = await buildWorld(ctx.app, 'Replica');
});

afterAll(async () => {
  await admin?.end();
});

describe('read replicas with read-your-writes', () => {
  it('parses LSNs into comparable numbers', () => {
    expect(parseLsn('0/0')).toBe(0n);
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(parseLsn('1/0') > parseLsn('0/FFFFFFFF')).toBe(true);
    expect(() => parseLsn('nope')).toThrow();
  });

  it("keeps a user's reads on the primary until the replica has replayed their last write", async () => {
    // The staff wrote (the world was built through the API); the replica has replayed nothing.
    const patched = await w.instructor.req('PATCH', `/lessons/${w.lesson.id}`, { title: 'Fresh title' });
    expect(patched.statusCode).toBe(200);
    const { rows } = await admin.query('select lsn::text from write_positions where user_id = $1', [
      w.instructor.id,
    ]);
    expect(rows).toHaveLength(1);
    const read = () => w.instructor.req('GET', `/lessons/${w.lesson.id}`);
    expect(await whereDoesItRead(read)).toBe('primary');
    expect((await read()).json().lesson.title).toBe('Fresh title');
    // A user whose writes the replica has replayed (here: none recorded) reads from the replica.
    await admin.query('delete from write_positions where user_id = $1', [w.outsider.id]);
    expect(await whereDoesItRead(() => w.outsider.req('GET', '/courses'))).toBe('replica');
    // Once the replica is past the write position, the writer's reads go there too.
    await catchUp();
    expect(await whereDoesItRead(read)).toBe('replica');
    expect((await read()).json().lesson.title).toBe('Fresh title');
  });

  it('routes every lag-tolerant read (course, lesson, exercise, progress, gradebook, CSV) the same way', async () => {
    await catchUp();
    const c = w.course.id;
    for (const [actor, path] of [
      [w.student, `/courses/${c}`],
      [w.student, '/courses'],
      [w.student, `/lessons/${w.lesson.id}`],
      [w.student, `/exercises/${w.exercise.id}`],
      [w.student, `/courses/${c}/progress`],
      [w.instructor, `/courses/${c}/gradebook`],
      [w.instructor, `/courses/${c}/gradebook?format=csv`],
    ] as const) {
      let res: Awaited<ReturnType<typeof actor.req>> | undefined;
      expect(await whereDoesItRead(async () => (res = await actor.req('GET', path))), path).toBe('replica');
      expect(res!.statusCode, path).toBe(200);
    }
  });

  it('a submission makes the student sticky: their progress shows the attempt at once', async () => {
    const sub = await w.student.req('POST', `/exercises/${w.exercise.id}/submissions`, { code: 'x' });
    expect(sub.statusCode).toBe(202);
    let res: Awaited<ReturnType<typeof w.student.req>> | undefined;
    const progress = async () => (res = await w.student.req('GET', `/courses/${w.course.id}/progress`));
    expect(await whereDoesItRead(progress)).toBe('primary');
    expect(res!.json().exercises[0].attempts).toBe(1);
  });

  it('an SSE event makes its author sticky before it is delivered (a result the grader wrote)', async () => {
    await ctx.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(ctx.app.server.address() as AddressInfo).port}`;
    const s = await openStream(base, { authorization: `Bearer ${w.ta.token}` });
    await admin.query('delete from write_positions where user_id = $1', [w.ta.id]);
    // An event as a grader writes it (src/contracts/events.ts: the hub delivers only those).
    const submission = {
      id: '00000000-0000-4000-8000-000000000001',
      exerciseId: w.exercise.id,
      userId: w.ta.id,
      status: 'passed',
      score: 10,
      rawScore: 10,
      credit: 1,
      message: null,
      late: false,
      createdAt: new Date().toISOString(),
      gradedAt: new Date().toISOString(),
      results: [],
    };
    const { rows } = await admin.query(
      `insert into events (course_id, user_id, type, payload)
       values ($1, $2, 'submission.updated', $3) returning id`,
      [w.course.id, w.ta.id, JSON.stringify({ submission })],
    );
    await admin.query(`select pg_notify('lab_events', $1)`, [String(rows[0].id)]);
    await s.waitFor((x) => x.events.length > 0);
    s.close();
    const pos = await admin.query('select 1 from write_positions where user_id = $1', [w.ta.id]);
    expect(pos.rowCount).toBe(1);
  });

  it('keeps the greatest position when two writes of one user are recorded out of order', async () => {
    await admin.query(
      `insert into write_positions (user_id, lsn) values ($1, 'FFFFFFFF/0')
       on conflict (user_id) do update set lsn = excluded.lsn`,
      [w.outsider.id],
    );
    await recordWritePositions(ctx.database.db, [w.outsider.id]);
    const { rows } = await admin.query('select lsn::text from write_positions where user_id = $1', [
      w.outsider.id,
    ]);
    expect(rows[0].lsn).toBe('FFFFFFFF/0');
  });
});

describe('a replica that fails sends reads to the primary', () => {
  const PRIMARY = /^lab:test-\d+$/;
  const appName = (db: import('./client.ts').Db) =>
    db
      .execute<{ app: string }>(sql`select current_setting('application_name') as app`)
      .then((r) => r.rows[0]!.app);

  function replicasAt(url: string, acquireTimeoutMs = 1000) {
    const pool = (name: string) => testPool(url, name, { acquireTimeoutMs });
    return new ReadReplicas(
      {
        db: ctx.database.db,
        heavyDb: ctx.database.heavyDb,
        pool: ctx.database.pool,
        heavyPool: ctx.database.heavyPool,
      },
      { pool: pool('lab:replica'), heavyPool: pool('lab:replica-heavy') },
    );
  }

  it('an unreachable replica: the primary answers, and replicas are skipped for a moment', async () => {
    const dead = `postgres://x:y@127.0.0.1:${await freePort()}/none`;
    const reads = replicasAt(dead);
    expect(await reads.run(null, appName)).toMatch(PRIMARY);
    expect(await reads.run(null, appName)).toMatch(PRIMARY);
    const { values } = await reads.reads.get();
    expect(values.find((v) => v.labels.reason === 'replica_down')?.value).toBe(2);
    const client = await reads.connect(null, { heavy: true });
    expect((await client.query(`select current_setting('application_name') as a`)).rows[0].a).toMatch(
      /^lab:test-\d+:heavy$/,
    );
    client.release();
    await reads.replica!.pool.end();
    await reads.replica!.heavyPool.end();
  });

  it('a replica connection dropped mid-read, or a recovery conflict: the read runs again on the primary', async () => {
    const reads = replicasAt(`${ctx.url}?${REPLICA_OPTIONS}`);
    expect(await reads.run(null, appName)).toBe('lab:replica');
    const slow = reads.run(null, async (db) => {
      if ((await appName(db)) === 'lab:replica') await db.execute(sql`select pg_sleep(5)`);
      return appName(db);
    });
    for (let i = 0; i < 200; i++) {
      const { rowCount } = await admin.query(
        `select pg_terminate_backend(pid) from pg_stat_activity
          where application_name = 'lab:replica' and query like 'select pg_sleep(5)%'`,
      );
      if (rowCount) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(await slow).toMatch(PRIMARY);
    // After the pause, the replica is used again; a query cancelled by replay goes to the primary.
    const reads2 = replicasAt(`${ctx.url}?${REPLICA_OPTIONS}`);
    const conflict = await reads2.run(null, async (db) => {
      const app = await appName(db);
      if (app === 'lab:replica')
        throw Object.assign(new Error('Failed query'), {
          cause: { code: '40001', message: 'canceling statement due to conflict with recovery' },
        });
      return app;
    });
    expect(conflict).toMatch(PRIMARY);
    // Any other error is the read's own and is not retried.
    await expect(
      reads2.run(null, async () => {
        throw new Error('a bug');
      }),
    ).rejects.toThrow('a bug');
    for (const r of [reads, reads2]) {
      await r.replica!.pool.end();
      await r.replica!.heavyPool.end();
    }
  });
});
