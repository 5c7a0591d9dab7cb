import type { AddressInfo } from 'node:net';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordOutcome } from '../src/grading/queue.ts';
import { type Actor, anon, apiUrl, createActor, ORIGIN, withTestApp } from './app.ts';
import {
  buildWorld,
  createCourse,
  createExercise,
  createLesson,
  joinCourse,
  setRole,
  type World,
} from './factories.ts';
import { claimSubmissionJob } from './grading.ts';
import { routesFromTree } from './routes.ts';
import { openStream, type TestStream } from './sse.ts';

/**
 * API.md, point by point, for what the module tests do not already assert: conventions that hold on
 * every route (read from the router, so a new route is covered), and the small promises that are
 * easy to break (masking, rounding, defaults, replays).
 */

// A short heartbeat: revoked credentials are noticed one heartbeat later.
const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0, SSE_HEARTBEAT_MS: 100 });
let w: World;
let submissionId: string;

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const TIMESTAMP_KEYS = new Set(['createdAt', 'updatedAt', 'joinedAt', 'gradedAt', 'dueAt']);
const ID_KEYS = new Set(['id', 'courseId', 'lessonId', 'exerciseId', 'userId']);

/** Walks a JSON value and checks every timestamp is ISO-8601 UTC and every id a string. */
function checkShapes(value: unknown, path = '$'): string[] {
  const bad: string[] = [];
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) bad.push(...checkShapes(v, `${path}[${i}]`));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (TIMESTAMP_KEYS.has(k) && v !== null && !(typeof v === 'string' && ISO_UTC.test(v)))
        bad.push(`${path}.${k} = ${JSON.stringify(v)}`);
      if (ID_KEYS.has(k) && typeof v !== 'string') bad.push(`${path}.${k} = ${JSON.stringify(v)}`);
      bad.push(...checkShapes(v, `${path}.${k}`));
    }
  }
  return bad;
}

interface Route {
  method: InjectOptions['method'];
  path: string;
  url: string;
  takesBody: boolean;
}
let routes: Route[] = [];

/** Records a verdict through the queue as a grader would, to control the outcome. */
async function gradeByHand(id: string, results: { name: string; passed: boolean; hidden: boolean }[]) {
  const passed = results.filter((r) => r.passed).length;
  return recordOutcome(ctx.database.db, await claimSubmissionJob(ctx.database.pool, id), {
    status: passed === results.length ? 'passed' : 'failed',
    score: Math.round(((10 * passed) / results.length) * 100) / 100,
    message: null,
    infrastructure: false,
    results: results.map((r) => ({
      ...r,
      message: r.passed ? null : `secret detail of ${r.name}`,
      durationMs: 1,
      output: null,
      points: 1,
    })),
  });
}

beforeAll(async () => {
  w = await buildWorld(ctx.app, 'Contract');
  const res = await w.student.req('POST', `/exercises/${w.exercise.id}/submissions`, { code: 'x' });
  submissionId = res.json().submission.id;
  const doc = (await ctx.app.inject({ method: 'GET', url: '/docs' })).json() as {
    paths: Record<string, Record<string, { requestBody?: unknown }>>;
  };
  const ids: Record<string, string> = {
    courseId: w.course.id,
    lessonId: w.lesson.id,
    exerciseId: w.exercise.id,
    submissionId,
    userId: w.student.id,
    id: '00000000-0000-0000-0000-000000000000',
  };
  routes = routesFromTree(ctx.app.printRoutes({ commonPrefix: false }))
    .filter((r) => r.path.startsWith('/api/v1/') && r.method !== 'HEAD')
    .map(({ method, path }) => ({
      method: method as InjectOptions['method'],
      path,
      url: path.replace(/:(\w+)/g, (_, p: string) => ids[p]!),
      takesBody:
        doc.paths[path.replace(/:(\w+)/g, '{$1}')]?.[method.toLowerCase()]?.requestBody !== undefined,
    }));
});

const bearer = (a: Actor) => ({ authorization: `Bearer ${a.token}` });
const cookieFrom = (a: Actor) => ({ cookie: a.cookie, host: 'localhost:80' });

describe('conventions on every route', () => {
  it('finds the routes, and the body-taking ones', () => {
    expect(routes.length).toBeGreaterThanOrEqual(22);
    const bodied = routes.filter((r) => r.takesBody).map((r) => `${r.method} ${r.path}`);
    expect(bodied).toEqual(
      expect.arrayContaining([
        'POST /api/v1/auth/register',
        'PUT /api/v1/courses/:courseId/members/:userId',
        'PATCH /api/v1/exercises/:exerciseId',
        'POST /api/v1/exercises/:exerciseId/submissions',
      ]),
    );
  });

  it('a body over the route limit (1 MiB, 16 MiB for a course import) is 413 payload_too_large on every route, also those without a body schema', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(1024 * 1024) });
    const huge = JSON.stringify({ pad: 'x'.repeat(16 * 1024 * 1024) });
    for (const r of routes) {
      if (r.path === '/api/v1/events') continue; // an accepted stream never ends; checked anonymously below
      const res = await ctx.app.inject({
        method: r.method,
        url: r.url,
        headers: { ...bearer(w.instructor), 'content-type': 'application/json' },
        payload: r.path === '/api/v1/courses/import' ? huge : big,
      });
      expect(res.statusCode, `${r.method} ${r.path}`).toBe(413);
      expect(res.json().error.code).toBe('payload_too_large');
    }
  });

  it('a non-JSON body is 415 on every state-changing route', async () => {
    for (const r of routes.filter((x) => x.method !== 'GET')) {
      const res = await ctx.app.inject({
        method: r.method,
        url: r.url,
        headers: { ...bearer(w.instructor), 'content-type': 'text/plain' },
        payload: 'hello',
      });
      expect(res.statusCode, `${r.method} ${r.path}`).toBe(415);
      expect(res.json().error.code).toBe('unsupported_media_type');
    }
    // A non-empty body without any Content-Type is not assumed to be JSON.
    const bare = await ctx.app.inject({
      method: 'POST',
      url: apiUrl('/courses'),
      headers: bearer(w.instructor),
      payload: '{"title":"x"}',
    });
    expect(bare.statusCode).toBe(415);
  });

  it('an unknown JSON field is 400 on every body-taking route, with details naming it', async () => {
    for (const r of routes.filter((x) => x.takesBody)) {
      const res = await ctx.app.inject({
        method: r.method,
        url: r.url,
        headers: bearer(w.instructor),
        payload: { surplusField: 1 },
      });
      expect(res.statusCode, `${r.method} ${r.path}`).toBe(400);
      const error = res.json().error;
      expect(error.code).toBe('validation_failed');
      expect(error.details).toEqual(
        expect.arrayContaining([{ field: 'surplusField', message: expect.any(String) }]),
      );
    }
  });

  it('nested unknown fields are rejected too (exercise tests and limits)', async () => {
    const tests = [{ name: 't', kind: 'io', stdout: '', hidden: false, extra: true }];
    const a = await w.instructor.req('PATCH', `/exercises/${w.exercise.id}`, { tests });
    expect(a.statusCode).toBe(400);
    expect(a.json().error.details).toEqual(
      expect.arrayContaining([{ field: 'tests.0.extra', message: expect.any(String) }]),
    );
    const b = await w.instructor.req('PATCH', `/exercises/${w.exercise.id}`, { limits: { cpu: 1 } });
    expect(b.json().error.details).toEqual(
      expect.arrayContaining([{ field: 'limits.cpu', message: expect.any(String) }]),
    );
  });

  it('every 4xx on every route has {error: {code, message}} and JSON responses say charset=utf-8', async () => {
    for (const r of routes) {
      const res = await anon(ctx.app, r.method, r.url.replace('/api/v1', ''));
      if (r.takesBody) {
        // A body-taking route validates the (here missing) body before it looks at the caller.
        expect([400, 401], `${r.method} ${r.path}`).toContain(res.statusCode);
      } else {
        expect(res.statusCode, `${r.method} ${r.path}`).toBe(401);
        expect(res.json().error.code).toBe('unauthenticated');
      }
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(typeof res.json().error.message).toBe('string');
    }
    const ok = await w.student.req('GET', '/courses');
    expect(ok.headers['content-type']).toBe('application/json; charset=utf-8');
    const created = await w.student.req('POST', '/courses', { title: 'ct' });
    expect(created.headers['content-type']).toBe('application/json; charset=utf-8');
  });

  it('cookie-authenticated state changes need a matching Origin on every route', async () => {
    const outsider = await createActor(ctx.app, 'Csrf');
    for (const r of routes.filter((x) => x.method !== 'GET')) {
      if (r.path.startsWith('/api/v1/auth/register') || r.path.startsWith('/api/v1/auth/login')) continue;
      const res = await ctx.app.inject({
        method: r.method,
        url: r.url,
        headers: { ...cookieFrom(outsider), origin: 'https://evil.example' },
      });
      expect(res.statusCode, `${r.method} ${r.path}`).toBe(403);
      expect(res.json().error.code).toBe('csrf_failed');
    }
    // DELETE /lessons and PUT members with the cookie from our own origin are accepted.
    const lesson = await createLesson(w.instructor, w.course.id);
    const del = await ctx.app.inject({
      method: 'DELETE',
      url: apiUrl(`/lessons/${lesson.id}`),
      headers: { ...cookieFrom(w.instructor), origin: ORIGIN },
    });
    expect(del.statusCode).toBe(204);
    const put = await ctx.app.inject({
      method: 'PUT',
      url: apiUrl(`/courses/${w.course.id}/members/${w.student.id}`),
      headers: { ...cookieFrom(w.instructor), referer: `${ORIGIN}/courses/x` },
      payload: { role: 'student' },
    });
    expect(put.statusCode).toBe(200);
  });

  it('CSRF: Origin decides when present (even "null"); Referer only when Origin is absent', async () => {
    const post = (headers: Record<string, string>) =>
      ctx.app.inject({
        method: 'POST',
        url: apiUrl('/courses'),
        headers: { ...cookieFrom(w.student), ...headers },
        payload: { title: 'csrf' },
      });
    expect((await post({ origin: 'null', referer: `${ORIGIN}/x` })).statusCode).toBe(403);
    expect((await post({ origin: 'https://evil.example', referer: `${ORIGIN}/x` })).statusCode).toBe(403);
    expect((await post({ referer: `${ORIGIN}/x` })).statusCode).toBe(201);
    expect((await post({ origin: ORIGIN, referer: 'https://evil.example/' })).statusCode).toBe(201);
    expect((await post({})).statusCode).toBe(403);
  });

  it('bodiless POSTs need no Content-Type: logout and regrade', async () => {
    const regrade = await ctx.app.inject({
      method: 'POST',
      url: apiUrl(`/exercises/${w.exercise.id}/regrade`),
      headers: bearer(w.instructor),
    });
    expect(regrade.statusCode).toBe(202);
    expect(regrade.json()).toEqual({ queued: expect.any(Number) });
    const someone = await createActor(ctx.app, 'Leaver');
    const logout = await ctx.app.inject({
      method: 'POST',
      url: apiUrl('/auth/logout'),
      headers: { ...cookieFrom(someone), origin: ORIGIN },
    });
    expect(logout.statusCode).toBe(204);
    expect(logout.body).toBe('');
  });
});

describe('auth', () => {
  it('logout with a bearer token leaves the token valid and the cookie session alive', async () => {
    const a = await createActor(ctx.app, 'BearerOut');
    expect((await a.req('POST', '/auth/logout')).statusCode).toBe(204);
    expect((await a.req('GET', '/me')).statusCode).toBe(200);
    const me = await ctx.app.inject({ method: 'GET', url: apiUrl('/me'), headers: cookieFrom(a) });
    expect(me.statusCode).toBe(200);
  });

  it('an expired session is 401', async () => {
    const a = await createActor(ctx.app, 'Expired');
    await ctx.database.pool.query(
      `update sessions set expires_at = now() - interval '1 second' where user_id = $1`,
      [a.id],
    );
    // Changed behind the app's back, in SQL: a trigger NOTIFYs it and every instance's caller cache
    // drops the session within 1 s (src/http/caller-cache.ts); poll with that deadline.
    const since = Date.now();
    let me = await ctx.app.inject({ method: 'GET', url: apiUrl('/me'), headers: cookieFrom(a) });
    while (me.statusCode === 200 && Date.now() - since < 1000) {
      await new Promise((r) => setImmediate(r));
      me = await ctx.app.inject({ method: 'GET', url: apiUrl('/me'), headers: cookieFrom(a) });
    }
    expect(me.statusCode).toBe(401);
    expect(me.json().error.code).toBe('unauthenticated');
  });

  it('user objects are exactly {id, email, name, createdAt}: no password hash anywhere', async () => {
    const me = (await w.student.req('GET', '/me')).json();
    expect(Object.keys(me.user).sort()).toEqual(['createdAt', 'email', 'id', 'name']);
    const login = await anon(ctx.app, 'POST', '/auth/login', {
      email: w.student.email,
      password: w.student.password,
    });
    expect(Object.keys(login.json().user).sort()).toEqual(['createdAt', 'email', 'id', 'name']);
    const token = (await w.student.req('POST', '/auth/tokens', { name: 'k' })).json();
    expect(Object.keys(token).sort()).toEqual(['id', 'token']);
    const members = (await w.instructor.req('GET', `/courses/${w.course.id}/members`)).json();
    expect(Object.keys(members.items[0].user).sort()).toEqual(['email', 'id', 'name']);
    expect(JSON.stringify(members)).not.toMatch(/password|hash|\$argon/i);
  });
});

describe('courses', () => {
  it('a student never sees joinCode: list, detail, join, and role is on every course', async () => {
    const c = await createCourse(w.instructor, { title: 'Hidden code' });
    const s = await createActor(ctx.app, 'CodeStudent');
    const joined = await s.req('POST', '/courses/join', { joinCode: c.joinCode });
    expect(joined.json().course).not.toHaveProperty('joinCode');
    expect(joined.json().course.role).toBe('student');
    const list = (await s.req('GET', '/courses')).json();
    expect(list.items[0]).not.toHaveProperty('joinCode');
    expect(list.items[0].role).toBe('student');
    const detail = (await s.req('GET', `/courses/${c.id}`)).json();
    expect(detail.course).not.toHaveProperty('joinCode');
    expect(JSON.stringify([joined.json(), list, detail])).not.toContain(c.joinCode);
    // Staff see it, with their role.
    const created = (await w.instructor.req('POST', '/courses', { title: 'Mine' })).json().course;
    expect(Object.keys(created).sort()).toEqual(
      ['archived', 'createdAt', 'description', 'id', 'joinCode', 'role', 'title'].sort(),
    );
    expect(created).toMatchObject({ role: 'instructor', description: '' });
    const patched = (await w.instructor.req('PATCH', `/courses/${c.id}`, { title: 'T2' })).json().course;
    expect(patched).toMatchObject({ role: 'instructor', joinCode: c.joinCode, title: 'T2' });
  });

  it('a TA joining again by code stays TA', async () => {
    const again = await w.ta.req('POST', '/courses/join', { joinCode: w.course.joinCode });
    expect(again.statusCode).toBe(200);
    expect(again.json().course.role).toBe('ta');
    const members = (await w.instructor.req('GET', `/courses/${w.course.id}/members`)).json().items;
    expect(members.find((m: { user: { id: string } }) => m.user.id === w.ta.id).role).toBe('ta');
  });

  it('PUT member with an invalid role is 400 naming the field', async () => {
    const res = await w.instructor.req('PUT', `/courses/${w.course.id}/members/${w.student.id}`, {
      role: 'owner',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details[0].field).toBe('role');
  });

  it('member = {user: {id, name, email}, role, joinedAt}', async () => {
    const res = await w.instructor.req('PUT', `/courses/${w.course.id}/members/${w.student.id}`, {
      role: 'student',
    });
    const member = res.json().member;
    expect(Object.keys(member).sort()).toEqual(['joinedAt', 'role', 'user']);
    expect(member.user).toEqual({ id: w.student.id, name: w.student.name, email: w.student.email });
    expect(member.joinedAt).toMatch(ISO_UTC);
  });
});

describe('list endpoints', () => {
  const lists = () => [
    `/courses`,
    `/courses/${w.course.id}/members`,
    `/exercises/${w.exercise.id}/submissions`,
  ];

  it.each([
    ['0', 400],
    ['101', 400],
    ['1', 200],
    ['100', 200],
  ])('?limit=%s on every list endpoint is %i', async (limit, status) => {
    for (const path of lists()) {
      const res = await w.instructor.req('GET', `${path}?limit=${limit}`);
      expect(res.statusCode, path).toBe(status);
      if (status === 400) expect(res.json().error.details[0].field).toBe('limit');
    }
  });

  it('a forged cursor is 400 on every list endpoint, never a 500', async () => {
    const zero = '00000000-0000-0000-0000-000000000000';
    // Every list pages by [timestamp as Postgres prints it, id]; a microsecond count in place of the
    // timestamp is the courses' and members' cursor of before, still accepted (below).
    for (const k of ['1', '123', '2021-02-31 00:00:00+00', '2021-01-01 25:00:00+00', 1e300, -1.5, 2 ** 60]) {
      const cursor = Buffer.from(JSON.stringify([k, zero])).toString('base64url');
      for (const path of lists()) {
        const res = await w.instructor.req('GET', `${path}?cursor=${cursor}`);
        expect(res.statusCode, `${path} ${JSON.stringify(k)}`).toBe(400);
        expect(res.json().error.details[0].field).toBe('cursor');
      }
    }

    const legacy = Buffer.from(JSON.stringify([1, zero])).toString('base64url');
    for (const path of lists())
      expect((await w.instructor.req('GET', `${path}?cursor=${legacy}`)).statusCode, path).toBe(200);
  });

  it('default limit is 50 on every list endpoint; nextCursor is null on the last page', async () => {
    const big = await createCourse(w.instructor, { title: 'Big' });
    const lesson = await createLesson(w.instructor, big.id);
    const ex = await createExercise(w.instructor, lesson.id);
    const { rows } = await ctx.database.pool.query<{ id: string }>(
      `insert into users (email, name, password_hash)
       select 'lim-' || i || '-' || $1 || '@example.com', 'L' || i, 'x' from generate_series(1, 55) i
       returning id`,
      [Math.random().toString(36).slice(2)],
    );
    await ctx.database.pool.query(
      `insert into course_members (course_id, user_id, role) select $1, unnest($2::uuid[]), 'student'`,
      [big.id, rows.map((r) => r.id)],
    );
    await ctx.database.pool.query(
      `insert into submissions (course_id, exercise_id, user_id, code, status, body_hash)
       select $1, $2, unnest($3::uuid[]), 'c', 'passed', 'h'`,
      [big.id, ex.id, rows.map((r) => r.id)],
    );
    for (let i = 0; i < 55; i++) await createCourse(w.outsider, { title: `C${i}` });
    for (const [actor, path] of [
      [w.outsider, '/courses'],
      [w.instructor, `/courses/${big.id}/members`],
      [w.instructor, `/exercises/${ex.id}/submissions`],
    ] as const) {
      const first = (await actor.req('GET', path)).json();
      expect(first.items, path).toHaveLength(50);
      expect(typeof first.nextCursor).toBe('string');
      const second = (await actor.req('GET', `${path}?cursor=${first.nextCursor}`)).json();
      expect(second.items.length, path).toBeGreaterThanOrEqual(5);
      expect(second.items.length).toBeLessThan(50);
      expect(second.nextCursor).toBeNull();
      const ids = new Set(
        [...first.items, ...second.items].map(
          (x: { id?: string; user?: { id: string } }) => x.id ?? x.user!.id,
        ),
      );
      expect(ids.size).toBe(first.items.length + second.items.length);
    }
  });
});

describe('lessons', () => {
  it('default position is after the last; lessons list by position then creation time', async () => {
    const c = await createCourse(w.instructor);
    const first = await createLesson(w.instructor, c.id);
    expect(first.position).toBe(0);
    const at5 = await createLesson(w.instructor, c.id, { position: 5 });
    const next = await createLesson(w.instructor, c.id);
    expect(next.position).toBe(6);
    const again5 = await createLesson(w.instructor, c.id, { position: 5 });
    const detail = (await w.instructor.req('GET', `/courses/${c.id}`)).json();
    expect(detail.lessons.map((l: { id: string }) => l.id)).toEqual([first.id, at5.id, again5.id, next.id]);
    expect(Object.keys(detail.lessons[0]).sort()).toEqual([
      'exerciseCount',
      'id',
      'position',
      'publishedAt',
      'title',
    ]);
  });

  it('GET /lessons/:id shows exercises as {id, title, language, maxScore, dueAt, publishedAt} only, no tests', async () => {
    const res = (await w.student.req('GET', `/lessons/${w.lesson.id}`)).json();
    expect(Object.keys(res.lesson).sort()).toEqual([
      'body',
      'courseId',
      'id',
      'position',
      'publishedAt',
      'title',
    ]);
    expect(Object.keys(res.exercises[0]).sort()).toEqual([
      'dueAt',
      'id',
      'language',
      'maxScore',
      'publishedAt',
      'title',
    ]);
    expect(JSON.stringify(res)).not.toContain('hi\\n');
  });

  it('PATCH /lessons/:id answers 200 {lesson}', async () => {
    const l = await createLesson(w.instructor, w.course.id);
    const res = await w.ta.req('PATCH', `/lessons/${l.id}`, { title: 'Renamed' });
    expect(res.statusCode).toBe(200);
    expect(res.json().lesson).toMatchObject({ id: l.id, title: 'Renamed', courseId: w.course.id });
  });
});

describe('exercises', () => {
  it('students see a hidden test only as {name, kind, hidden: true}; visible tests in full', async () => {
    const ex = (await w.student.req('GET', `/exercises/${w.exercise.id}`)).json().exercise;
    expect(ex.tests[1]).toEqual({ name: 'echo', kind: 'io', hidden: true });
    expect(ex.tests[0]).toMatchObject({ name: 'small', args: [1, 2], expected: 3 });
  });

  it('timestamps are ISO-8601 UTC with Z, also a dueAt given with an offset', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id, { dueAt: '2030-01-01T12:00:00+02:00' });
    expect(ex.dueAt).toBe('2030-01-01T10:00:00.000Z');
    const lesson = (await w.student.req('GET', `/lessons/${w.lesson.id}`)).json();
    const detail = (await w.student.req('GET', `/courses/${w.course.id}`)).json();
    const courses = (await w.student.req('GET', '/courses')).json();
    const me = (await w.student.req('GET', '/me')).json();
    const members = (await w.instructor.req('GET', `/courses/${w.course.id}/members`)).json();
    const exercise = (await w.student.req('GET', `/exercises/${ex.id}`)).json();
    expect(checkShapes([ex, lesson, detail, courses, me, members, exercise])).toEqual([]);
    expect(
      lesson.exercises.some((e: { dueAt: string | null }) => e.dueAt === '2030-01-01T10:00:00.000Z'),
    ).toBe(true);
  });
});

describe('submissions', () => {
  it('hidden results are masked for students in GET, list, the POST replay and SSE payloads', async () => {
    const key = `mask-${Date.now()}`;
    const posted = await w.student.req(
      'POST',
      `/exercises/${w.exercise.id}/submissions`,
      { code: 'masked' },
      { 'idempotency-key': key },
    );
    expect(posted.statusCode).toBe(202);
    const id = posted.json().submission.id as string;
    await gradeByHand(id, [
      { name: 'small', passed: false, hidden: false },
      { name: 'echo', passed: false, hidden: true },
    ]);
    const hiddenOf = (s: { results: { hidden: boolean }[] }) => s.results.find((r) => r.hidden);
    const views = [
      (await w.student.req('GET', `/submissions/${id}`)).json().submission,
      (await w.student.req('GET', `/exercises/${w.exercise.id}/submissions`))
        .json()
        .items.find((s: { id: string }) => s.id === id),
    ];
    const replay = await w.student.req(
      'POST',
      `/exercises/${w.exercise.id}/submissions`,
      { code: 'masked' },
      { 'idempotency-key': key },
    );
    expect(replay.statusCode).toBe(200);
    expect(replay.json().submission.id).toBe(id);
    views.push(replay.json().submission);
    for (const v of views) {
      expect(hiddenOf(v)).toEqual({
        name: 'echo',
        passed: false,
        hidden: true,
        message: null,
        durationMs: 0,
        output: null,
        points: 1,
      });
      expect(v.results[0].message).toBe('secret detail of small');
      expect(JSON.stringify(v)).not.toContain('secret detail of echo');
    }
    const staff = (await w.ta.req('GET', `/submissions/${id}`)).json().submission;
    expect(hiddenOf(staff)).toMatchObject({ message: 'secret detail of echo' });
    const staffList = (
      await w.ta.req('GET', `/exercises/${w.exercise.id}/submissions?userId=${w.student.id}`)
    )
      .json()
      .items.find((s: { id: string }) => s.id === id);
    expect(hiddenOf(staffList)).toMatchObject({ message: 'secret detail of echo' });
  });

  it('submission JSON: ISO UTC timestamps, string ids, late marking, score rounded to 2 decimals', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id, {
      dueAt: '2020-01-01T00:00:00Z',
      tests: [
        { name: 'a', kind: 'io', stdout: '1', hidden: false },
        { name: 'b', kind: 'io', stdout: '2', hidden: false },
        { name: 'c', kind: 'io', stdout: '3', hidden: false },
      ],
    });
    const posted = await w.student.req('POST', `/exercises/${ex.id}/submissions`, { code: 'late' });
    expect(posted.json().submission.late).toBe(true);
    const id = posted.json().submission.id;
    await gradeByHand(id, [
      { name: 'a', passed: true, hidden: false },
      { name: 'b', passed: false, hidden: false },
      { name: 'c', passed: false, hidden: false },
    ]);
    const s = (await w.student.req('GET', `/submissions/${id}`)).json().submission;
    expect(s.score).toBe(3.33);
    expect(s.late).toBe(true);
    expect(checkShapes(s)).toEqual([]);
    expect(s.gradedAt).toMatch(ISO_UTC);
    const onTime = await w.student.req('POST', `/exercises/${w.exercise.id}/submissions`, { code: 'ok' });
    expect(onTime.json().submission.late).toBe(false);
  });

  it('another student of the course gets 404 for my submission; staff of another course too', async () => {
    const peer = await createActor(ctx.app, 'Peer');
    await joinCourse(peer, w.course.joinCode);
    expect((await peer.req('GET', `/submissions/${submissionId}`)).statusCode).toBe(404);
    const otherCourse = await createCourse(peer);
    expect(otherCourse.role).toBe('instructor');
    expect((await peer.req('GET', `/submissions/${submissionId}`)).statusCode).toBe(404);
    // ?userId does not widen a student's view.
    const list = (
      await peer.req('GET', `/exercises/${w.exercise.id}/submissions?userId=${w.student.id}`)
    ).json();
    expect(list.items).toEqual([]);
  });

  it('a TA promoted to instructor can regrade; a student cannot (403), an outsider 404', async () => {
    const c = await createCourse(w.instructor);
    const ta = await createActor(ctx.app, 'Promoted');
    await joinCourse(ta, c.joinCode);
    const lesson = await createLesson(w.instructor, c.id);
    const ex = await createExercise(w.instructor, lesson.id);
    expect((await ta.req('POST', `/exercises/${ex.id}/regrade`)).statusCode).toBe(403);
    await setRole(w.instructor, c.id, ta.id, 'ta');
    expect((await ta.req('POST', `/exercises/${ex.id}/regrade`)).json()).toEqual({ queued: 0 });
    expect((await w.outsider.req('POST', `/exercises/${ex.id}/regrade`)).statusCode).toBe(404);
  });
});

describe('GET /events', () => {
  const open: TestStream[] = [];
  afterAll(() => {
    for (const st of open) st.close();
  });

  it('live events go to the author and their course staff only, masked for the author', async () => {
    if (!ctx.app.server.listening) await ctx.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(ctx.app.server.address() as AddressInfo).port}`;
    const peer = await createActor(ctx.app, 'SsePeer');
    await joinCourse(peer, w.course.joinCode);
    const otherStaff = await createActor(ctx.app, 'OtherStaff');
    await createCourse(otherStaff);
    const listen = async (a: Actor) => {
      const st = await openStream(base, bearer(a));
      open.push(st);
      return st;
    };
    const [author, peerStream, ta, foreign] = (await Promise.all(
      [w.student, peer, w.ta, otherStaff].map(listen),
    )) as [TestStream, TestStream, TestStream, TestStream];
    const id = (
      await w.student.req('POST', `/exercises/${w.exercise.id}/submissions`, { code: 'sse' })
    ).json().submission.id as string;
    await gradeByHand(id, [
      { name: 'small', passed: true, hidden: false },
      { name: 'echo', passed: false, hidden: true },
    ]);
    const mine = (st: TestStream) =>
      st.events.filter((e) => e.event === 'submission.updated' && JSON.parse(e.data).submission.id === id);
    await author.waitFor((st) => mine(st).length === 1);
    await ta.waitFor((st) => mine(st).length === 1);
    const forAuthor = JSON.parse(mine(author)[0]!.data).submission;
    expect(forAuthor.results[1]).toEqual({
      name: 'echo',
      passed: false,
      hidden: true,
      message: null,
      durationMs: 0,
      output: null,
      points: 1,
    });
    expect(JSON.parse(mine(ta)[0]!.data).submission.results[1].message).toBe('secret detail of echo');
    expect(checkShapes(forAuthor)).toEqual([]);
    // The event has been written to every stream it was for (the author's and the TA's arrived). Two
    // heartbeats later on the others, anything written to them before has arrived: they heard nothing.
    await Promise.all([peerStream.heartbeats(2), foreign.heartbeats(2)]);
    expect(peerStream.events).toHaveLength(0);
    expect(foreign.events).toHaveLength(0);
  });
});

describe('GET /events after the credential is gone', () => {
  it('ends a stream when its session logs out or expires, or its token is deleted; reconnecting is 401', async () => {
    if (!ctx.app.server.listening) await ctx.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(ctx.app.server.address() as AddressInfo).port}`;
    const [a, b, c] = await Promise.all(['SseOut', 'SseExp', 'SseTok'].map((n) => createActor(ctx.app, n)));
    const loggedOut = await openStream(base, { cookie: a!.cookie });
    const expired = await openStream(base, { cookie: b!.cookie });
    const tokenGone = await openStream(base, bearer(c!));
    const kept = await openStream(base, bearer(a!));
    try {
      for (const st of [loggedOut, expired, tokenGone, kept]) expect(st.status).toBe(200);
      const out = await ctx.app.inject({
        method: 'POST',
        url: apiUrl('/auth/logout'),
        headers: { ...cookieFrom(a!), origin: ORIGIN },
      });
      expect(out.statusCode).toBe(204);
      await ctx.database.pool.query(`update sessions set expires_at = now() where user_id = $1`, [b!.id]);
      const tokenId = (
        await ctx.database.pool.query<{ id: string }>(`select id from api_tokens where user_id = $1`, [c!.id])
      ).rows[0]!.id;
      expect((await c!.req('DELETE', `/auth/tokens/${tokenId}`)).statusCode).toBe(204);
      await Promise.all([loggedOut.ended, expired.ended, tokenGone.ended]);
      // The bearer stream of the user who logged out their cookie session stays open: it keeps receiving
      // heartbeats through three more credential sweeps (they run at the heartbeat interval).
      await kept.heartbeats(3, 2000);
      const again = await openStream(base, { cookie: a!.cookie });
      expect(again.status).toBe(401);
    } finally {
      for (const st of [loggedOut, expired, tokenGone, kept]) st.close();
    }
  });
});

describe('gradebook and progress', () => {
  it('CSV has columns name, email, per exercise its title and "<title> (late)", total (v1.1)', async () => {
    const c = await createCourse(w.instructor);
    const lesson = await createLesson(w.instructor, c.id);
    await createExercise(w.instructor, lesson.id, { title: 'First, with comma' });
    await createExercise(w.instructor, lesson.id, { title: 'Second' });
    const res = await w.instructor.req('GET', `/courses/${c.id}/gradebook?format=csv`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(res.body.split('\n')[0]).toBe(
      'name,email,"First, with comma","First, with comma (late)",Second,Second (late),total',
    );
    expect(res.headers['content-disposition']).toMatch(
      /^attachment; filename=".*-gradebook-\d{4}-\d\d-\d\d\.csv"/,
    );
  });

  it('progress is {exercises: [{id, title, maxScore, bestScore, attempts, dueAt, attemptsLeft, late}], total, maxTotal}', async () => {
    const res = (await w.student.req('GET', `/courses/${w.course.id}/progress`)).json();
    expect(Object.keys(res).sort()).toEqual(['exercises', 'maxTotal', 'total']);
    expect(Object.keys(res.exercises[0]).sort()).toEqual([
      'attempts',
      'attemptsLeft',
      'bestScore',
      'dueAt',
      'id',
      'late',
      'maxScore',
      'title',
    ]);
  });
});
