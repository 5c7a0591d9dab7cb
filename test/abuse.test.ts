import net, { type AddressInfo } from 'node:net';
import { sql } from 'drizzle-orm';
import type { FastifyInstance, InjectOptions } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.ts';
import { connectDatabase, type Database } from '../src/db/client.ts';
import { loggable } from '../src/http/error-handler.ts';
import { apiUrl, createActor, ORIGIN, withTestApp } from './app.ts';
import { buildWorld, createCourse, createExercise, createLesson, type World } from './factories.ts';
import { openStream } from './sse.ts';

// Abuse limits (issue 9, finding 7), with their production defaults: what one self-registered
// account or one address can do to others.
const ctx = withTestApp({
  REGISTRATIONS_PER_HOUR: 20,
  JOIN_FAILURES_PER_HOUR: 20,
  SUBMISSIONS_PER_MINUTE: 20,
  // The default heartbeat (15 s): a stream revoked within a second was ended by the NOTIFY, not a sweep.
  SSE_HEARTBEAT_MS: 15_000,
});
let w: World;
let appB: FastifyInstance;
let databaseB: Database;

const from = (ip: string, opts: InjectOptions) =>
  ctx.app.inject({ ...opts, url: apiUrl(opts.url as string), remoteAddress: ip });

beforeAll(async () => {
  w = await buildWorld(ctx.app, 'Abuse');
  databaseB = connectDatabase(ctx.config, ctx.url, 'abuse-b');
  appB = await buildApp(ctx.config, databaseB, { logger: false });
});

afterAll(async () => {
  await appB?.close();
  await databaseB?.close();
});

describe('per-address limits', () => {
  it('refuses a 21st registration from one address in an hour, not from another address', async () => {
    const register = (ip: string, i: number) =>
      from(ip, {
        method: 'POST',
        url: '/auth/register',
        payload: { email: `flood-${ip}-${i}@example.com`, password: 'long enough password', name: 'F' },
      });
    for (let i = 0; i < 20; i++) expect((await register('10.9.0.1', i)).statusCode).toBe(201);
    const refused = await register('10.9.0.1', 20);
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error.code).toBe('rate_limited');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(3000);
    expect((await register('10.9.0.2', 0)).statusCode).toBe(201);
  });

  it('stops join-code guessing from one address after 20 wrong codes; right codes do not count', async () => {
    const guesser = await createActor(ctx.app, 'Guesser');
    const join = (ip: string, joinCode: string, actor = guesser) =>
      from(ip, {
        method: 'POST',
        url: '/courses/join',
        payload: { joinCode },
        headers: { authorization: `Bearer ${actor.token}` },
      });
    const course = await createCourse(w.instructor);
    for (let i = 0; i < 25; i++) expect((await join('10.9.1.1', course.joinCode)).statusCode).toBe(200);
    for (let i = 0; i < 20; i++) {
      const res = await join('10.9.1.1', `WRONG${i}`);
      expect(res.json().error.code).toBe('invalid_join_code');
    }
    const blocked = await join('10.9.1.1', course.joinCode);
    expect(blocked.statusCode).toBe(429);
    expect(blocked.headers['retry-after']).toBeDefined();
    // Another address (another student) is unaffected.
    expect((await join('10.9.1.2', course.joinCode, w.outsider)).statusCode).toBe(200);
  });

  it('lets no stranger lock an owner out: failures count per email and address, then per email (higher)', async () => {
    const owner = await createActor(ctx.app, 'Owner');
    const login = (ip: string, password: string) =>
      from(ip, { method: 'POST', url: '/auth/login', payload: { email: owner.email, password } });
    for (let i = 0; i < 5; i++) expect((await login('10.9.2.1', 'wrong password!')).statusCode).toBe(401);
    const stranger = await login('10.9.2.1', owner.password);
    expect(stranger.statusCode).toBe(429);
    expect(stranger.headers['retry-after']).toBeDefined();
    // The owner, elsewhere, signs in (and that clears the failures).
    expect((await login('10.9.2.2', owner.password)).statusCode).toBe(200);
    // A campaign spread over many addresses still meets the per-email limit (50 in 15 minutes).
    for (let i = 0; i < 50; i++) expect((await login(`10.9.3.${i}`, 'wrong password!')).statusCode).toBe(401);
    expect((await login('10.9.4.1', owner.password)).statusCode).toBe(429);
  });
});

describe('per-user limits', () => {
  it('refuses a 21st submission in a minute with 429 and Retry-After; replays of a key still answer', async () => {
    const student = await createActor(ctx.app, 'Flooder');
    await student.req('POST', '/courses/join', { joinCode: w.course.joinCode });
    const ex = await createExercise(w.instructor, w.lesson.id);
    for (let i = 0; i < 20; i++) {
      const res = await student.req(
        'POST',
        `/exercises/${ex.id}/submissions`,
        { code: `v${i}` },
        { 'idempotency-key': `k${i}` },
      );
      expect(res.statusCode).toBe(202);
    }
    const refused = await student.req('POST', `/exercises/${ex.id}/submissions`, { code: 'one more' });
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error.code).toBe('rate_limited');
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const replay = await student.req(
      'POST',
      `/exercises/${ex.id}/submissions`,
      { code: 'v3' },
      { 'idempotency-key': 'k3' },
    );
    expect(replay.statusCode).toBe(200);
    // Someone else is not limited by it.
    expect((await w.student.req('POST', `/exercises/${ex.id}/submissions`, { code: 'x' })).statusCode).toBe(
      202,
    );
  });

  it('a burst of parallel submits or runs by one student holds no database connection: others are served meanwhile', async () => {
    const student = await createActor(ctx.app, 'Burster');
    await student.req('POST', '/courses/join', { joinCode: w.course.joinCode });
    const ex = await createExercise(w.instructor, w.lesson.id);
    // One submit and one run of theirs in progress: their transactions hold the student's locks.
    const held = await ctx.database.pool.connect();
    try {
      await held.query('begin');
      await held.query(
        'select pg_advisory_xact_lock(hashtextextended($1, 0)), pg_advisory_xact_lock(hashtextextended($2, 0))',
        [`submit:${student.id}:${ex.id}`, `lab:runs:${student.id}`],
      );
      // Far more parallel requests than the instance has connections (DB_POOL_MAX, 4 here; one is held
      // above). Waiting for the locks, they held every connection until the transaction above ended, and
      // the other student's read below timed out waiting for one (503).
      const burst = Array.from({ length: 24 }, (_, i) =>
        i % 2
          ? student.req('POST', `/exercises/${ex.id}/submissions`, { code: `burst ${i}` })
          : student.req('POST', `/exercises/${ex.id}/runs`, { code: `burst ${i}` }),
      );
      const other = await w.student.req('GET', `/exercises/${ex.id}`);
      expect(other.statusCode).toBe(200);
      const answers = await Promise.all(burst);
      expect(answers.map((r) => r.statusCode)).toEqual(answers.map(() => 429));
      expect(answers.every((r) => r.headers['retry-after'] === '1')).toBe(true);
      await held.query('commit');
    } finally {
      held.release();
    }
    expect((await student.req('POST', `/exercises/${ex.id}/submissions`, { code: 'after' })).statusCode).toBe(
      202,
    );
  });
});

describe('text Postgres cannot store', () => {
  it('is a 400 naming the field, in every kind of input (NUL, unpaired surrogates)', async () => {
    const course = await createCourse(w.instructor);
    const lesson = await createLesson(w.instructor, course.id);
    const nul = 'a\u0000b';
    const cases: Array<[string, Promise<import('light-my-request').Response>, string]> = [
      [
        'login email',
        ctx.app.inject({
          method: 'POST',
          url: apiUrl('/auth/login'),
          payload: { email: nul, password: 'x' },
        }),
        'email',
      ],
      [
        'register name',
        ctx.app.inject({
          method: 'POST',
          url: apiUrl('/auth/register'),
          payload: { email: 'nul@example.com', password: 'long enough password', name: nul },
        }),
        'name',
      ],
      ['course title', w.instructor.req('POST', '/courses', { title: nul }), 'title'],
      [
        'lesson body',
        w.instructor.req('POST', `/courses/${course.id}/lessons`, { title: 'L', body: nul }),
        'body',
      ],
      ['join code', w.student.req('POST', '/courses/join', { joinCode: nul }), 'joinCode'],
      ['token name', w.student.req('POST', '/auth/tokens', { name: nul }), 'name'],
      [
        'test stdin',
        w.instructor.req('POST', `/lessons/${lesson.id}/exercises`, {
          title: 'E',
          language: 'python',
          maxScore: 1,
          tests: [{ name: 't', kind: 'io', stdin: nul, stdout: '' }],
        }),
        'tests.0.stdin',
      ],
      [
        'test key',
        w.instructor.req('POST', `/lessons/${lesson.id}/exercises`, {
          title: 'E',
          language: 'python',
          entrypoint: 'f',
          maxScore: 1,
          tests: [{ name: 't', kind: 'call', args: [{ [nul]: 1 }], expected: 1 }],
        }),
        `tests.0.args.0.${nul}`,
      ],
      [
        'submission code',
        w.student.req('POST', `/exercises/${w.exercise.id}/submissions`, { code: nul }),
        'code',
      ],
      ['unpaired surrogate', w.instructor.req('POST', '/courses', { title: 'x\ud800y' }), 'title'],
      [
        'querystring',
        w.student.req('GET', `/exercises/${w.exercise.id}/submissions?cursor=%00`),
        'query.cursor',
      ],
    ];
    for (const [what, pending, field] of cases) {
      const res = await pending;
      expect(res.statusCode, `${what}: ${res.body}`).toBe(400);
      expect(res.json().error.code, what).toBe('validation_failed');
      expect(res.json().error.details[0].field, what).toBe(field);
    }
  });
});

describe('errors that never reach a route', () => {
  it('answers headers too large (431) in the API error shape', async () => {
    await ctx.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = ctx.app.server.address() as AddressInfo;
    const response = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write(`GET /api/v1/me HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      });
      let data = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => {
        data += d;
      });
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
    });
    expect(response).toMatch(/^HTTP\/1\.1 431 /);
    const body = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4));
    expect(body).toEqual({
      error: { code: 'request_header_fields_too_large', message: expect.any(String) },
    });
  });

  it('logs a failed query without its parameters (issue 9: an argon2 hash was logged on register)', async () => {
    const secret = '$argon2id$v=19$m=19456,t=2,p=1$c2VjcmV0$aGFzaA';
    const err = await ctx.database.db.execute(sql`select 1 / 0, ${secret}::text`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const lines: string[] = [];
    const log = pino({}, { write: (line: string) => lines.push(line) });
    log.error({ err: loggable(err) }, 'unhandled error');
    expect(lines.join('')).toContain('division by zero');
    expect(lines.join('')).not.toContain('argon2id');
  });
});

describe('event streams of revoked credentials', () => {
  it('end within a second on every instance when the session logs out or the token is deleted', async () => {
    await appB.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(appB.server.address() as AddressInfo).port}`;
    const user = await createActor(ctx.app, 'Revoked');
    const byCookie = await openStream(base, { cookie: user.cookie });
    const byToken = await openStream(base, { authorization: `Bearer ${user.token}` });
    expect([byCookie.status, byToken.status]).toEqual([200, 200]);
    try {
      // Logged out through the other instance.
      let started = performance.now();
      const out = await ctx.app.inject({
        method: 'POST',
        url: apiUrl('/auth/logout'),
        headers: { cookie: user.cookie, origin: ORIGIN },
      });
      expect(out.statusCode).toBe(204);
      await byCookie.ended;
      expect(performance.now() - started).toBeLessThan(1000);
      const tokenId = (
        await ctx.database.pool.query<{ id: string }>('select id from api_tokens where user_id = $1', [
          user.id,
        ])
      ).rows[0]!.id;
      started = performance.now();
      const another = await ctx.app.inject({
        method: 'POST',
        url: apiUrl('/auth/tokens'),
        payload: { name: 'second' },
        headers: { authorization: `Bearer ${user.token}` },
      });
      expect(another.statusCode).toBe(201);
      const del = await ctx.app.inject({
        method: 'DELETE',
        url: apiUrl(`/auth/tokens/${tokenId}`),
        headers: { authorization: `Bearer ${another.json().token}` },
      });
      expect(del.statusCode).toBe(204);
      await byToken.ended;
      expect(performance.now() - started).toBeLessThan(1000);
    } finally {
      byCookie.close();
      byToken.close();
    }
  });
});
