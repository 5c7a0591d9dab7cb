import { describe, expect, it } from 'vitest';
import { anon, createActor, ORIGIN, withTestApp } from '../../../test/app.ts';

const ctx = withTestApp();
const HOST = { host: 'localhost:80' };

describe('register', () => {
  it('creates the user, sets an HttpOnly SameSite=Lax cookie, and /me returns the user', async () => {
    const res = await anon(ctx.app, 'POST', '/auth/register', {
      email: 'Ada@Example.com',
      password: 'long enough password',
      name: 'Ada',
    });
    expect(res.statusCode).toBe(201);
    const { user } = res.json();
    expect(user).toMatchObject({ email: 'Ada@Example.com', name: 'Ada' });
    expect(new Date(user.createdAt).toISOString()).toBe(user.createdAt);
    const cookie = res.cookies.find((c) => c.name === 'lab_session')!;
    expect(cookie.httpOnly).toBe(true);
    expect(cookie.sameSite).toBe('Lax');
    const me = await ctx.app.inject({
      method: 'GET',
      url: '/api/v1/me',
      headers: { cookie: `lab_session=${cookie.value}` },
    });
    expect(me.json().user.id).toBe(user.id);
  });

  it('rejects a duplicate email case-insensitively with 409 email_taken', async () => {
    const body = { email: 'dup@example.com', password: 'long enough password', name: 'A' };
    expect((await anon(ctx.app, 'POST', '/auth/register', body)).statusCode).toBe(201);
    const again = await anon(ctx.app, 'POST', '/auth/register', { ...body, email: 'DUP@example.com' });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('email_taken');
  });

  it.each([
    [{ email: 'x@example.com', password: 'short', name: 'A' }, 'password'],
    [{ email: 'not-an-email', password: 'long enough password', name: 'A' }, 'email'],
    [{ email: 'x@example.com', password: 'long enough password', name: '' }, 'name'],
    [{ email: 'x@example.com', password: 'long enough password', name: 'A', admin: true }, 'admin'],
    [{ email: 'x@example.com', password: 'long enough password' }, 'name'],
  ])('400 validation_failed names the field for %j', async (body, field) => {
    const res = await anon(ctx.app, 'POST', '/auth/register', body);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('validation_failed');
    expect(res.json().error.details.map((d: { field: string }) => d.field)).toContain(field);
  });

  it('stores an argon2id hash, never the password', async () => {
    const a = await createActor(ctx.app, 'Hash');
    const { rows } = await ctx.database.pool.query('select password_hash from users where id = $1', [a.id]);
    expect(rows[0].password_hash).toMatch(/^\$argon2id\$/);
    expect(rows[0].password_hash).not.toContain(a.password);
  });
});

describe('login and logout', () => {
  it('logs in case-insensitively; logout revokes the session server-side', async () => {
    const a = await createActor(ctx.app, 'Login');
    const res = await anon(ctx.app, 'POST', '/auth/login', {
      email: a.email.toUpperCase(),
      password: a.password,
    });
    expect(res.statusCode).toBe(200);
    const cookie = `lab_session=${res.cookies.find((c) => c.name === 'lab_session')!.value}`;
    const out = await ctx.app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      headers: { cookie, origin: ORIGIN, ...HOST },
    });
    expect(out.statusCode).toBe(204);
    const me = await ctx.app.inject({ method: 'GET', url: '/api/v1/me', headers: { cookie } });
    expect(me.statusCode).toBe(401);
    // The bearer token is not affected by a cookie logout.
    expect((await a.req('GET', '/me')).statusCode).toBe(200);
  });

  it('wrong password and unknown email both give 401 invalid_credentials', async () => {
    const a = await createActor(ctx.app, 'Wrong');
    for (const body of [
      { email: a.email, password: 'wrong password!' },
      { email: 'nobody@example.com', password: 'whatever12345' },
    ]) {
      const res = await anon(ctx.app, 'POST', '/auth/login', body);
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('invalid_credentials');
    }
  });

  it('rate limits after 5 failures for one email, with Retry-After, even for the right password', async () => {
    const a = await createActor(ctx.app, 'Limited');
    for (let i = 0; i < 5; i++) {
      expect(
        (await anon(ctx.app, 'POST', '/auth/login', { email: a.email, password: `bad password ${i}` }))
          .statusCode,
      ).toBe(401);
    }
    const res = await anon(ctx.app, 'POST', '/auth/login', { email: a.email, password: a.password });
    expect(res.statusCode).toBe(429);
    expect(res.json().error.code).toBe('rate_limited');
    const retry = Number(res.headers['retry-after']);
    expect(retry).toBeGreaterThan(800);
    expect(retry).toBeLessThanOrEqual(900);
  });

  it('rate limits one IP after 100 failures across emails', async () => {
    await ctx.database.pool.query(
      `insert into login_failures (email, ip) select 'e' || g || '@x.com', '203.0.113.9' from generate_series(1, 100) g`,
    );
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: 'fresh@example.com', password: 'whatever12345' },
      remoteAddress: '203.0.113.9',
    });
    expect(res.statusCode).toBe(429);
    const other = await ctx.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: 'fresh@example.com', password: 'whatever12345' },
      remoteAddress: '203.0.113.10',
    });
    expect(other.statusCode).toBe(401);
  });
});

describe('API tokens', () => {
  it('creates a token shown once and stored hashed; deleting it revokes it', async () => {
    const a = await createActor(ctx.app, 'Tok');
    const res = await a.req('POST', '/auth/tokens', { name: 'ci' });
    expect(res.statusCode).toBe(201);
    const { token, id } = res.json();
    const { rows } = await ctx.database.pool.query('select token_hash from api_tokens where id = $1', [id]);
    expect(rows[0].token_hash).not.toBe(token);
    const me = await ctx.app.inject({
      method: 'GET',
      url: '/api/v1/me',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(me.json().user.id).toBe(a.id);
    expect((await a.req('DELETE', `/auth/tokens/${id}`)).statusCode).toBe(204);
    const after = await ctx.app.inject({
      method: 'GET',
      url: '/api/v1/me',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(after.statusCode).toBe(401);
  });

  it("cannot delete another user's token (404)", async () => {
    const a = await createActor(ctx.app, 'A');
    const b = await createActor(ctx.app, 'B');
    const { id } = (await a.req('POST', '/auth/tokens', { name: 'x' })).json();
    expect((await b.req('DELETE', `/auth/tokens/${id}`)).statusCode).toBe(404);
    expect((await b.req('DELETE', '/auth/tokens/not-a-uuid')).statusCode).toBe(404);
  });

  it('an invalid bearer token is 401 even with a valid cookie', async () => {
    const a = await createActor(ctx.app, 'Mixed');
    const res = await ctx.app.inject({
      method: 'GET',
      url: '/api/v1/me',
      headers: { authorization: 'Bearer nope', cookie: a.cookie },
    });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('unauthenticated');
  });
});

describe('CSRF for cookie sessions', () => {
  it('refuses a cookie POST without a matching Origin or Referer, accepts same-origin and bearer', async () => {
    const a = await createActor(ctx.app, 'Csrf');
    const post = (headers: Record<string, string>) =>
      ctx.app.inject({
        method: 'POST',
        url: '/api/v1/auth/tokens',
        payload: { name: 'x' },
        headers: { ...HOST, ...headers },
      });
    const none = await post({ cookie: a.cookie });
    expect(none.statusCode).toBe(403);
    expect(none.json().error.code).toBe('csrf_failed');
    expect((await post({ cookie: a.cookie, origin: 'http://evil.example' })).statusCode).toBe(403);
    expect((await post({ cookie: a.cookie, origin: ORIGIN })).statusCode).toBe(201);
    expect((await post({ cookie: a.cookie, referer: `${ORIGIN}/courses/1` })).statusCode).toBe(201);
    expect(
      (await post({ authorization: `Bearer ${a.token}`, origin: 'http://evil.example' })).statusCode,
    ).toBe(201);
  });
});
