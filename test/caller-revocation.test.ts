import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.ts';
import { connectDatabase, type Database } from '../src/db/client.ts';
import { type Actor, createActor, ORIGIN, withTestApp } from './app.ts';
import { buildWorld, createLesson, setRole, type World } from './factories.ts';

/**
 * The caller cache (src/http/caller-cache.ts) on two instances of one database: a revoked session or
 * token is refused within 1 s on the other instance too, also while that instance's LISTEN connection
 * is stalled; a role change or a member removal needs no invalidation at all (the cache holds no
 * roles) and takes effect on the very next request.
 */

const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });
let appB: FastifyInstance;
let databaseB: Database;
let w: World;

beforeAll(async () => {
  databaseB = connectDatabase({ ...ctx.config, INSTANCE_NAME: 'revocation-b' }, ctx.url, 'test-b');
  appB = await buildApp({ ...ctx.config, INSTANCE_NAME: 'revocation-b' }, databaseB, { logger: false });
  await appB.ready();
  w = await buildWorld(ctx.app, 'Rev');
});

afterAll(async () => {
  await appB?.close();
  await databaseB?.close();
});

type Credential = { bearer: string } | { cookie: string };
const headersOf = (c: Credential): Record<string, string> =>
  'bearer' in c ? { authorization: `Bearer ${c.bearer}` } : { cookie: c.cookie };

function get(app: FastifyInstance, url: string, c: Credential) {
  return app.inject({ method: 'GET', url: `/api/v1${url}`, headers: headersOf(c) });
}

/** A turn of the event loop (not a delay): lets the LISTEN connection's notifications in between polls. */
const turn = () => new Promise<void>((r) => setImmediate(r));

async function hits(app: FastifyInstance): Promise<number> {
  const metric = app.deps.metrics.registry.getSingleMetric('lab_caller_lookups_total');
  const values = (await metric!.get()).values;
  return values.find((v) => v.labels.result === 'hit')?.value ?? 0;
}

/** Requests on `app` until one is answered from its caller cache (the cache is warm and trusted). */
async function servedFromCache(app: FastifyInstance, url: string, c: Credential) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const before = await hits(app);
    const res = await get(app, url, c);
    expect(res.statusCode, res.body).toBe(200);
    if ((await hits(app)) > before) return;
    if (Date.now() > deadline) throw new Error('the caller cache never served a hit');
    await turn();
  }
}

/**
 * Polls `app` until the credential is refused; returns the ms from `since` to that 401. Fails at once
 * past the 1 s bound.
 */
async function refusedWithin(app: FastifyInstance, url: string, c: Credential, since: number, ms = 1000) {
  for (;;) {
    const res: LightMyRequestResponse = await get(app, url, c);
    const at = performance.now() - since;
    if (res.statusCode === 401) {
      expect(res.json().error.code).toBe('unauthenticated');
      return at;
    }
    expect(res.statusCode).toBe(200);
    if (at > ms) throw new Error(`still accepted ${Math.round(at)} ms after the revocation`);
    await turn();
  }
}

async function listenBackendPid(name: string): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await ctx.database.pool.query<{ pid: number }>(
      `select pid from pg_stat_activity where datname = current_database() and application_name = $1`,
      [`lab:${name}:listen`],
    );
    if (rows[0]) return rows[0].pid;
    if (Date.now() > deadline) throw new Error(`no LISTEN connection named ${name}`);
    await turn();
  }
}

describe('a revoked credential is refused within 1 s on every instance', () => {
  it('logout: the cookie session, cached on both instances', async () => {
    const a = await createActor(ctx.app, 'Logout');
    const c = { cookie: a.cookie };
    await servedFromCache(ctx.app, '/me', c);
    await servedFromCache(appB, '/me', c);
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      headers: { cookie: a.cookie, origin: ORIGIN, host: 'localhost:80' },
    });
    expect(res.statusCode).toBe(204);
    const t0 = performance.now();
    // The instance that revoked forgets at once; the other within the bound.
    expect((await get(ctx.app, '/me', c)).statusCode).toBe(401);
    await refusedWithin(appB, '/me', c, t0);
    expect((await get(appB, '/me', c)).statusCode).toBe(401);
    // The bearer token is another credential: still valid on both.
    expect((await get(appB, '/me', { bearer: a.token })).statusCode).toBe(200);
  });

  it('token deletion: the bearer token, cached on both instances, on a hot read', async () => {
    const a = await createActor(ctx.app, 'Token');
    const made = await a.req('POST', '/auth/tokens', { name: 'doomed' });
    const { token, id } = made.json() as { token: string; id: string };
    await a.req('POST', '/courses/join', { joinCode: w.course.joinCode });
    const c = { bearer: token };
    const lesson = `/lessons/${w.lesson.id}`;
    await servedFromCache(ctx.app, lesson, c);
    await servedFromCache(appB, lesson, c);
    expect((await a.req('DELETE', `/auth/tokens/${id}`)).statusCode).toBe(204);
    const t0 = performance.now();
    expect((await get(ctx.app, lesson, c)).statusCode).toBe(401);
    await refusedWithin(appB, lesson, c, t0);
  });

  it('while the other instance’s LISTEN connection is stalled (no notification, no disconnect)', async () => {
    const a = await createActor(ctx.app, 'Stalled');
    const made = await a.req('POST', '/auth/tokens', { name: 'doomed' });
    const { token, id } = made.json() as { token: string; id: string };
    const c = { bearer: token };
    await servedFromCache(appB, '/me', c);
    // SIGSTOP the Postgres backend of B's LISTEN connection: the socket stays open, nothing arrives.
    const pid = await listenBackendPid('revocation-b');
    process.kill(pid, 'SIGSTOP');
    try {
      expect((await a.req('DELETE', `/auth/tokens/${id}`)).statusCode).toBe(204);
      const t0 = performance.now();
      await refusedWithin(appB, '/me', c, t0);
      // B still serves everyone else, from Postgres.
      expect((await get(appB, '/me', { bearer: a.token })).statusCode).toBe(200);
      expect(appB.callerCache.trusted()).toBe(false);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // Once the path is proven again, B caches again.
    await servedFromCache(appB, '/me', { bearer: a.token });
  });

  it('while the other instance’s LISTEN connection is cut (reconnection empties the cache)', async () => {
    const a = await createActor(ctx.app, 'Cut');
    const made = await a.req('POST', '/auth/tokens', { name: 'doomed' });
    const { token, id } = made.json() as { token: string; id: string };
    const c = { bearer: token };
    await servedFromCache(appB, '/me', c);
    const pid = await listenBackendPid('revocation-b');
    await ctx.database.pool.query('select pg_terminate_backend($1)', [pid]);
    expect((await a.req('DELETE', `/auth/tokens/${id}`)).statusCode).toBe(204);
    const t0 = performance.now();
    await refusedWithin(appB, '/me', c, t0);
    // And after B has reconnected (a new backend), the revoked token stays refused.
    const deadline = Date.now() + 10_000;
    while ((await listenBackendPid('revocation-b').catch(() => pid)) === pid) {
      if (Date.now() > deadline) throw new Error('B never reconnected');
      await turn();
    }
    await servedFromCache(appB, '/me', { bearer: a.token });
    expect((await get(appB, '/me', c)).statusCode).toBe(401);
  });
});

describe('a credential changed in SQL, behind the app, is refused within 1 s too (trigger → NOTIFY)', () => {
  it('a token deleted by hand, a session expired by hand, a user deleted', async () => {
    const a = await createActor(ctx.app, 'ByHand');
    const b = await createActor(ctx.app, 'Deleted');
    const token = { bearer: a.token };
    const session = { cookie: a.cookie };
    const gone = { bearer: b.token };
    for (const c of [token, session, gone]) await servedFromCache(appB, '/me', c);
    const pool = ctx.database.pool;
    await pool.query('delete from api_tokens where user_id = $1', [a.id]);
    let t0 = performance.now();
    await refusedWithin(appB, '/me', token, t0);
    await pool.query(`update sessions set expires_at = now() - interval '1 second' where user_id = $1`, [
      a.id,
    ]);
    t0 = performance.now();
    await refusedWithin(appB, '/me', session, t0);
    await pool.query('delete from users where id = $1', [b.id]);
    t0 = performance.now();
    await refusedWithin(appB, '/me', gone, t0);
  });
});

describe('roles are not cached: a change is effective on the next request, on any instance', () => {
  async function member(name: string): Promise<Actor> {
    const a = await createActor(ctx.app, name);
    expect((await a.req('POST', '/courses/join', { joinCode: w.course.joinCode })).statusCode).toBe(200);
    return a;
  }

  it('member removal: the lesson is 404 at once', async () => {
    const s = await member('Removed');
    const lesson = `/lessons/${w.lesson.id}`;
    await servedFromCache(appB, lesson, { bearer: s.token });
    const res = await w.instructor.req('DELETE', `/courses/${w.course.id}/members/${s.id}`);
    expect(res.statusCode).toBe(204);
    const after = await get(appB, lesson, { bearer: s.token });
    expect(after.statusCode).toBe(404);
    expect(after.json().error.code).toBe('not_found');
  });

  it('role change: a TA demoted to student loses the draft lesson at once', async () => {
    const t = await member('Demoted');
    await setRole(w.instructor, w.course.id, t.id, 'ta');
    const draft = await createLesson(w.instructor, w.course.id, { publishedAt: null });
    const url = `/lessons/${draft.id}`;
    await servedFromCache(appB, url, { bearer: t.token });
    await setRole(w.instructor, w.course.id, t.id, 'student');
    expect((await get(appB, url, { bearer: t.token })).statusCode).toBe(404);
    // And promoted back: visible again at once.
    await setRole(w.instructor, w.course.id, t.id, 'ta');
    expect((await get(appB, url, { bearer: t.token })).statusCode).toBe(200);
  });
});
