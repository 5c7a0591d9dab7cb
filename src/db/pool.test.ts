import net from 'node:net';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, testPool } from '../../test/db.ts';
import { until } from '../../test/wait.ts';
import { toAppError } from '../http/error-handler.ts';
import { AppError } from '../shared/errors.ts';
import { isDatabaseUnavailable, isOutcomeUnknown, isPoolBusy } from './errors.ts';
import { type BoundedPool, MAX_NAMED_STATEMENTS, statementKind, withStatementName } from './pool.ts';

let url: string;
let drop: () => Promise<void>;
let pool: BoundedPool;
let admin: pg.Client;

beforeAll(async () => {
  ({ url, drop } = await createTestDatabase());
  pool = testPool(url, 'lab:pool-test', { max: 2 });
  admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`
    create table t (n int);
    -- Runs at COMMIT: keeps a commit in flight long enough to cut its connection.
    create function slow_commit() returns trigger language plpgsql as
      $$ begin perform pg_sleep(2); return null; end $$;
    create table slow (n int);
    create constraint trigger slow_commit after insert on slow deferrable initially deferred
      for each row execute function slow_commit();`);
});

afterAll(async () => {
  await pool?.end();
  await admin?.end();
  await drop?.();
});

/** Terminates the backend running `pattern` as soon as it is seen running it. */
async function terminateWhenRunning(pattern: string) {
  for (let i = 0; i < 200; i++) {
    const { rows } = await admin.query(
      `select pid from pg_stat_activity
        where application_name = 'lab:pool-test' and state = 'active' and query ilike $1`,
      [pattern],
    );
    if (rows[0]) {
      await admin.query('select pg_terminate_backend($1)', [rows[0].pid]);
      return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no backend ran ${pattern}`);
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (err: unknown) => err,
  );

describe('statementKind', () => {
  it('tells transaction control, reads and writes apart by the first word', () => {
    expect(statementKind('begin')).toBe('begin');
    expect(statementKind('  START TRANSACTION')).toBe('begin');
    expect(statementKind('commit')).toBe('commit');
    expect(statementKind('rollback')).toBe('rollback');
    expect(statementKind('select 1')).toBe('read');
    expect(statementKind('fetch 500 from c')).toBe('read');
    expect(statementKind('insert into t values (1)')).toBe('write');
    expect(statementKind('with x as (update t set n = 1 returning 1) select * from x')).toBe('write');
  });
});

describe('BoundedPool clients through a lost connection', () => {
  it('a checked-out client whose backend is killed mid-transaction rejects, does not crash, and did not commit', async () => {
    const db = drizzle(pool);
    const tx = db.transaction(async (t) => {
      await t.execute(sql`insert into t values (1)`);
      await t.execute(sql`select pg_sleep(5)`);
    });
    await terminateWhenRunning('select pg_sleep(5)%');
    const err = await failure(tx);
    expect(isDatabaseUnavailable(err)).toBe(true);
    // The insert never committed, so a retry cannot double it.
    expect(isOutcomeUnknown(err)).toBe(false);
    expect((await admin.query('select count(*)::int as n from t')).rows[0].n).toBe(0);
    // The pool dropped the dead client and serves a fresh one.
    expect((await pool.query('select 1 as one')).rows[0].one).toBe(1);
  });

  it('a connection lost during COMMIT is an unknown outcome', async () => {
    const db = drizzle(pool);
    const tx = db.transaction(async (t) => {
      await t.execute(sql`insert into slow values (1)`);
    });
    await terminateWhenRunning('commit');
    const err = await failure(tx);
    expect(isDatabaseUnavailable(err)).toBe(true);
    expect(isOutcomeUnknown(err)).toBe(true);
  });

  it('an autocommit write whose connection dies is an unknown outcome; an autocommit read is not', async () => {
    const write = failure(pool.query('insert into t select 1 from pg_sleep(5)'));
    await terminateWhenRunning('insert into t select 1 from pg_sleep(5)');
    const werr = await write;
    expect(isDatabaseUnavailable(werr)).toBe(true);
    expect(isOutcomeUnknown(werr)).toBe(true);

    const read = failure(pool.query('select pg_sleep(5)'));
    await terminateWhenRunning('select pg_sleep(5)');
    const rerr = await read;
    expect(isDatabaseUnavailable(rerr)).toBe(true);
    expect(isOutcomeUnknown(rerr)).toBe(false);
  });

  it('a write refused as read-only (25006, a primary being promoted) is unavailable and did not happen', async () => {
    const db = drizzle(pool);
    const err = await failure(
      db.transaction(async (t) => {
        await t.execute(sql`set transaction read only`);
        await t.execute(sql`insert into t values (2)`);
      }),
    );
    expect((err as { cause?: { code?: string } }).cause?.code).toBe('25006');
    expect(isDatabaseUnavailable(err)).toBe(true);
    expect(isOutcomeUnknown(err)).toBe(false);
  });

  it('an idle client whose backend is killed is dropped without crashing', async () => {
    const client = await pool.connect();
    const { rows } = await client.query('select pg_backend_pid() as pid');
    client.release();
    await admin.query('select pg_terminate_backend($1)', [rows[0].pid]);
    // The next query may pick the dead client's slot; the pool reconnects.
    for (let i = 0; i < 3; i++) await pool.query('select 1').catch(() => {});
    expect((await pool.query('select 2 as two')).rows[0].two).toBe(2);
  });
});

/** A TCP proxy to Postgres that can cut a connection the moment the client sends its next statement. */
async function cuttingProxy(target: URL) {
  let cutNext = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    client.on('data', (chunk) => {
      if (cutNext) {
        cutNext = false;
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const u = new URL(target);
  u.port = String((server.address() as net.AddressInfo).port);
  return { url: u.toString(), cutNext: () => (cutNext = true), close: () => server.close() };
}

describe('a busy pool', () => {
  it('answers a checkout that waited its whole acquire timeout as overloaded, not as a database down', async () => {
    const busy = testPool(url, 'lab:pool-test-busy', { acquireTimeoutMs: 300 });
    const held = await busy.connect();
    try {
      const waits = [
        failure(busy.connect()),
        failure(busy.query('select 1')),
        failure(drizzle(busy).execute(sql`select 1`)),
      ];
      for (const err of await Promise.all(waits)) {
        expect(isPoolBusy(err)).toBe(true);
        // Down would mean "retry this request here" (db-retry) and an unready instance (/readyz).
        expect(isDatabaseUnavailable(err)).toBe(false);
        const answer = toAppError(err);
        expect(answer).toBeInstanceOf(AppError);
        expect(answer.statusCode).toBe(503);
        expect(answer.code).toBe('overloaded');
        expect(answer.message).toBe('No database connection came free within 300 ms; retry shortly.');
        expect(answer.headers?.['retry-after']).toBe('2');
      }
    } finally {
      held.release();
    }
    // The pool itself is fine once the connection is back.
    expect((await busy.query('select 2 as two')).rows[0].two).toBe(2);
    await busy.end();
  });
});

describe('a full wait queue', () => {
  it('refuses at once past maxWaiting, by every checkout path (a query, Drizzle, a transaction)', async () => {
    const busy = testPool(url, 'lab:pool-test-queue', { acquireTimeoutMs: 5000, maxWaiting: 2 });
    const held = await busy.connect();
    try {
      // Two wait (the bound); they are served once the connection is back.
      // (Drizzle's queries run when awaited: then() starts this one.)
      const queued = [
        busy.query('select 1 as n'),
        drizzle(busy)
          .execute(sql`select 2 as n`)
          .then((r) => r),
      ];
      // Drizzle reaches the pool a few ticks later.
      await until(() => busy.waitingCount >= 2, 'both checkouts waiting', 2000);
      expect(busy.waitingCount).toBe(2);
      const started = performance.now();
      const refused = [
        failure(busy.query('select 3')),
        failure(drizzle(busy).execute(sql`select 4`)),
        failure(drizzle(busy).transaction(async (t) => t.execute(sql`select 5`))),
        failure(busy.connect()),
      ];
      for (const err of await Promise.all(refused)) {
        expect(isPoolBusy(err)).toBe(true);
        const answer = toAppError(err);
        expect(answer.statusCode).toBe(503);
        expect(answer.message).toBe('Too many requests are waiting for the database; retry shortly.');
      }
      // At once: not after the acquire timeout.
      expect(performance.now() - started).toBeLessThan(2500);
      expect(busy.waitingCount).toBe(2);
      held.release();
      expect((await Promise.all(queued)).map((r) => r.rows[0].n)).toEqual([1, 2]);
    } finally {
      held.release();
      await busy.end();
    }
  });
});

describe('a connection lost on BEGIN', () => {
  it('does not leak the pool slot (Drizzle 0.45 releases nothing when BEGIN fails)', async () => {
    const proxy = await cuttingProxy(new URL(url));
    const small = onePool('begin', { connectionString: proxy.url, acquireTimeoutMs: 1000 });
    try {
      const db = drizzle(small);
      await small.query('select 1');
      proxy.cutNext();
      const err = await failure(db.transaction(async (t) => t.execute(sql`select 1`)));
      expect(isDatabaseUnavailable(err)).toBe(true);
      expect(isOutcomeUnknown(err)).toBe(false);
      // The only slot is free again: the next query gets a new connection instead of waiting in vain.
      expect((await small.query('select 3 as three')).rows[0].three).toBe(3);
      expect(small.totalCount).toBe(1);
    } finally {
      await small.end();
      proxy.close();
    }
  });
});

/** A pool of one connection (one backend, so its prepared statements can be listed). */
const onePool = (
  name: string,
  extra: { connectionString?: string; acquireTimeoutMs?: number; namedStatements?: boolean } = {},
) => testPool(url, `lab:pool-test-${name}`, extra);

describe('statements prepared by name', () => {
  it('a parameterised Drizzle query is prepared once per connection and then only executed', async () => {
    const one = onePool('named');
    try {
      const db = drizzle(one);
      const marker = `named-${Date.now()}`;
      for (let i = 0; i < 3; i++) {
        const r = await db.execute(sql`select ${marker}::text as m, ${i}::int as i`);
        expect(r.rows[0]).toEqual({ m: marker, i });
      }
      // The same backend (pool of 1) holds exactly one prepared statement with that text.
      const prepared = await db.execute(
        sql`select name from pg_prepared_statements where statement like ${'select $1::text as m%'}`,
      );
      expect(prepared.rows).toHaveLength(1);
      expect(String(prepared.rows[0]!.name)).toMatch(/^lab_\d+$/);
      // Without parameters (BEGIN, SET, scripts of several commands) nothing is prepared.
      await db.execute(sql.raw('select 1; select 2'));
      const client = await one.connect();
      try {
        await client.query('begin');
        await client.query({ text: 'select $1::int as n', values: [5], name: 'own_name' });
        await client.query('commit');
      } finally {
        client.release();
      }
      const names = await db.execute(
        sql`select name from pg_prepared_statements where ${1} = 1 order by name`,
      );
      expect(names.rows.map((r) => r.name)).toContain('own_name');
      expect(names.rows.every((r) => /^(lab_\d+|own_name)$/.test(String(r.name)))).toBe(true);
    } finally {
      await one.end();
    }
  });

  it('a pool with namedStatements off (the heavy pools) prepares nothing', async () => {
    const heavy = onePool('heavy', { namedStatements: false });
    try {
      const db = drizzle(heavy);
      for (let i = 0; i < 2; i++) await db.execute(sql`select ${i}::int as i`);
      const prepared = await db.execute(
        sql`select count(*)::int as n from pg_prepared_statements where ${1} = 1`,
      );
      expect(prepared.rows[0]).toEqual({ n: 0 });
    } finally {
      await heavy.end();
    }
  });

  it('names by text: a query with a name, without parameters or that is not a config runs as given', () => {
    const a = withStatementName({ text: 'select $1 as x' }, [1]) as { name: string };
    const b = withStatementName({ text: 'select $1 as x', rowMode: 'array' }, [2]) as {
      name: string;
      rowMode: string;
    };
    expect(a.name).toMatch(/^lab_\d+$/);
    expect(b.name).toBe(a.name);
    expect(b.rowMode).toBe('array');
    expect(withStatementName({ text: 'select $1 as y' }, [1])).not.toEqual(
      expect.objectContaining({ name: a.name }),
    );
    expect(withStatementName({ text: 'select $1', values: [1] }, undefined)).toEqual(
      expect.objectContaining({ name: expect.stringMatching(/^lab_\d+$/) }),
    );
    expect(withStatementName({ text: 'select $1', name: 'mine' }, [1])).toBeNull();
    expect(withStatementName({ text: 'begin' }, undefined)).toBeNull();
    expect(withStatementName({ text: 'select 1' }, [])).toBeNull();
    expect(withStatementName('select $1', [1])).toBeNull();
    expect(withStatementName(null, [1])).toBeNull();
  });

  // Last in this file: it fills the process's table of names.
  it('past MAX_NAMED_STATEMENTS distinct texts a new text runs unnamed; known texts keep their names', () => {
    const known = withStatementName({ text: 'select $1 as known' }, [1]) as { name: string };
    let i = 0;
    while (withStatementName({ text: `select $1 as c${i}` }, [1]) !== null) i++;
    expect(i).toBeLessThanOrEqual(MAX_NAMED_STATEMENTS);
    expect(withStatementName({ text: 'select $1 as brand_new' }, [1])).toBeNull();
    expect(withStatementName({ text: 'select $1 as known' }, [2])).toEqual(
      expect.objectContaining({ name: known.name }),
    );
  });
});
