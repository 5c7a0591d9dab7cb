import { describe, expect, it } from 'vitest';
import { anon, createActor, ORIGIN, withTestApp } from '../../../test/app.ts';
import {
  addMembers,
  buildWorld,
  createCourse,
  createLesson,
  insertUsers,
  joinCourse,
} from '../../../test/factories.ts';
import { createCourse as createCourseService, newJoinCode, normaliseJoinCode } from './course.service.ts';

// Load shedding is tested elsewhere; a busy test machine must not turn these requests into 503s.
const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });

describe('POST /courses', () => {
  it('makes the creator instructor and shows them the join code', async () => {
    const a = await createActor(ctx.app, 'Creator');
    const res = await a.req('POST', '/courses', { title: 'Intro to CS', description: 'Basics' });
    expect(res.statusCode).toBe(201);
    const { course } = res.json();
    expect(course).toMatchObject({ title: 'Intro to CS', description: 'Basics', role: 'instructor' });
    expect(course.joinCode).toMatch(/^[A-Z2-7]{8}$/);
    expect(new Date(course.createdAt).toISOString()).toBe(course.createdAt);
    const noDesc = await a.req('POST', '/courses', { title: 'Second' });
    expect(noDesc.json().course.description).toBe('');
    expect(noDesc.json().course.joinCode).not.toBe(course.joinCode);
  });

  it('works with the session cookie from our own origin', async () => {
    const a = await createActor(ctx.app, 'Cookie');
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/api/v1/courses',
      payload: { title: 'Via cookie' },
      headers: { cookie: a.cookie, origin: ORIGIN, host: 'localhost:80' },
    });
    expect(res.statusCode).toBe(201);
  });

  it.each([[{}], [{ title: '' }], [{ title: 'x'.repeat(201) }], [{ title: 'ok', extra: 1 }], [{ title: 3 }]])(
    'rejects %j with 400',
    async (body) => {
      const a = await createActor(ctx.app, 'Bad');
      const res = await a.req('POST', '/courses', body);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('validation_failed');
    },
  );

  it('is 401 anonymous', async () => {
    expect((await anon(ctx.app, 'POST', '/courses', { title: 'x' })).statusCode).toBe(401);
  });

  it('retries with a fresh code when the join code collides', async () => {
    const a = await createActor(ctx.app, 'Collide');
    const first = await createCourse(a);
    const caller = { ...a, createdAt: new Date(), via: 'token' as const, credentialId: 'x' };
    const codes = [first.joinCode, first.joinCode, 'FRESHCD2'];
    const course = await createCourseService(
      ctx.database.db,
      caller,
      { title: 'Second' },
      () => codes.shift()!,
    );
    expect(course.joinCode).toBe('FRESHCD2');
    expect(codes).toHaveLength(0);
    const always = () => first.joinCode;
    await expect(createCourseService(ctx.database.db, caller, { title: 'Never' }, always)).rejects.toThrow();
    expect(new Set(Array.from({ length: 200 }, newJoinCode)).size).toBe(200);
    expect(normaliseJoinCode(' ab-cd efgh ')).toBe('ABCDEFGH');
  });
});

describe('POST /courses/join', () => {
  it('joins as student, is idempotent, and keeps an existing role', async () => {
    const w = await buildWorld(ctx.app, 'Join');
    const newcomer = await createActor(ctx.app, 'Newcomer');
    const first = await newcomer.req('POST', '/courses/join', { joinCode: w.course.joinCode.toLowerCase() });
    expect(first.statusCode).toBe(200);
    expect(first.json().course).toMatchObject({ id: w.course.id, role: 'student' });
    expect(first.json().course.joinCode).toBeUndefined();
    const again = await newcomer.req('POST', '/courses/join', { joinCode: w.course.joinCode });
    expect(again.statusCode).toBe(200);
    expect(again.json().course.role).toBe('student');
    const instr = await joinCourse(w.instructor, w.course.joinCode);
    expect(instr.role).toBe('instructor');
    expect(instr.joinCode).toBe(w.course.joinCode);
    const ta = await joinCourse(w.ta, w.course.joinCode);
    expect(ta.role).toBe('ta');
  });

  it('an unknown code is 404 invalid_join_code', async () => {
    const a = await createActor(ctx.app, 'Lost');
    const res = await a.req('POST', '/courses/join', { joinCode: 'ZZZZZZZZ' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('invalid_join_code');
  });
});

describe('GET /courses', () => {
  it('lists only the caller’s courses with their role, paginated', async () => {
    const a = await createActor(ctx.app, 'Lister');
    const b = await createActor(ctx.app, 'Other');
    const mine = [];
    for (let i = 0; i < 5; i++) mine.push(await createCourse(a, { title: `Mine ${i}` }));
    const theirs = await createCourse(b, { title: 'Theirs' });
    await joinCourse(a, theirs.joinCode);
    await createCourse(b, { title: 'Not mine' });

    const seen: { id: string; role: string; joinCode?: string }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await a.req('GET', `/courses?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.items.length).toBeLessThanOrEqual(2);
      seen.push(...body.items);
      cursor = body.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen.map((c) => c.id)).toEqual([...mine.map((c) => c.id), theirs.id]);
    expect(seen.at(-1)).toMatchObject({ role: 'student' });
    expect(seen.at(-1)!.joinCode).toBeUndefined();
    expect(seen[0]!.joinCode).toBeDefined();
    const all = await a.req('GET', '/courses');
    expect(all.json().items).toHaveLength(6);
    expect(all.json().nextCursor).toBeNull();
  });

  it.each([
    'limit=0',
    'limit=101',
    'limit=abc',
    'cursor=nope',
    `cursor=${Buffer.from('["x","y"]').toString('base64url')}`,
    'foo=1',
  ])('rejects ?%s with 400', async (qs) => {
    const a = await createActor(ctx.app, 'Q');
    const res = await a.req('GET', `/courses?${qs}`);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('validation_failed');
  });
});

describe('GET /courses/:courseId', () => {
  it('returns the course and its lessons by position then creation time, with exercise counts', async () => {
    const w = await buildWorld(ctx.app, 'Detail');
    const late = await createLesson(w.instructor, w.course.id, { title: 'At zero', position: 0 });
    const tie = await createLesson(w.ta, w.course.id, { title: 'Also zero', position: 0 });
    const res = await w.student.req('GET', `/courses/${w.course.id}`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.course).toMatchObject({ id: w.course.id, role: 'student' });
    expect(body.course.joinCode).toBeUndefined();
    expect(body.lessons.map((l: { id: string }) => l.id)).toEqual([w.lesson.id, late.id, tie.id]);
    expect(body.lessons[0]).toMatchObject({ position: 0, exerciseCount: 1 });
    expect(body.lessons[2]).toMatchObject({ title: 'Also zero', exerciseCount: 0 });
    expect((await w.ta.req('GET', `/courses/${w.course.id}`)).json().course.joinCode).toBe(w.course.joinCode);
  });

  it('is 404 to outsiders and for ids that are not ours', async () => {
    const w = await buildWorld(ctx.app, 'Hidden');
    for (const id of [w.course.id, '00000000-0000-0000-0000-000000000000', 'not-a-uuid']) {
      const res = await w.outsider.req('GET', `/courses/${id}`);
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('not_found');
    }
  });
});

describe('PATCH /courses/:courseId', () => {
  it('lets the instructor edit; TA and student get 403', async () => {
    const w = await buildWorld(ctx.app, 'Patch');
    const res = await w.instructor.req('PATCH', `/courses/${w.course.id}`, { title: 'Renamed' });
    expect(res.statusCode).toBe(200);
    expect(res.json().course).toMatchObject({ title: 'Renamed', description: '', role: 'instructor' });
    const both = await w.instructor.req('PATCH', `/courses/${w.course.id}`, { description: 'New' });
    expect(both.json().course).toMatchObject({ title: 'Renamed', description: 'New' });
    const empty = await w.instructor.req('PATCH', `/courses/${w.course.id}`, {});
    expect(empty.json().course.title).toBe('Renamed');
    expect((await w.ta.req('PATCH', `/courses/${w.course.id}`, { title: 'x' })).statusCode).toBe(403);
    expect((await w.student.req('PATCH', `/courses/${w.course.id}`, { title: 'x' })).statusCode).toBe(403);
    expect((await w.outsider.req('PATCH', `/courses/${w.course.id}`, { title: 'x' })).statusCode).toBe(404);
    expect((await w.instructor.req('PATCH', `/courses/${w.course.id}`, { joinCode: 'x' })).statusCode).toBe(
      400,
    );
  });
});

describe('members', () => {
  it('lists members for staff with pagination; students get 403', async () => {
    const w = await buildWorld(ctx.app, 'Members');
    const ids = await insertUsers(ctx.database.pool, 7);
    await addMembers(ctx.database.pool, w.course.id, ids);
    const seen: { user: { id: string; name: string; email: string }; role: string; joinedAt: string }[] = [];
    let cursor: string | null = null;
    do {
      const res = await w.ta.req(
        'GET',
        `/courses/${w.course.id}/members?limit=4${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(res.statusCode).toBe(200);
      seen.push(...res.json().items);
      cursor = res.json().nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(10);
    expect(new Set(seen.map((m) => m.user.id)).size).toBe(10);
    expect(seen[0]).toMatchObject({
      user: { id: w.instructor.id, email: w.instructor.email },
      role: 'instructor',
    });
    expect(Object.keys(seen[0]!.user).sort()).toEqual(['email', 'id', 'name']);
    expect((await w.student.req('GET', `/courses/${w.course.id}/members`)).statusCode).toBe(403);
    expect((await w.outsider.req('GET', `/courses/${w.course.id}/members`)).statusCode).toBe(404);
  });

  it('changes roles; demoting the last instructor is 409; non-members are 404', async () => {
    const w = await buildWorld(ctx.app, 'Roles');
    const url = (id: string) => `/courses/${w.course.id}/members/${id}`;
    const promoted = await w.instructor.req('PUT', url(w.student.id), { role: 'ta' });
    expect(promoted.statusCode).toBe(200);
    expect(promoted.json().member).toMatchObject({
      user: { id: w.student.id, name: w.student.name },
      role: 'ta',
    });
    const last = await w.instructor.req('PUT', url(w.instructor.id), { role: 'student' });
    expect(last.statusCode).toBe(409);
    expect(last.json().error.code).toBe('last_instructor');
    expect((await w.instructor.req('PUT', url(w.instructor.id), { role: 'instructor' })).statusCode).toBe(
      200,
    );
    expect((await w.instructor.req('PUT', url(w.outsider.id), { role: 'ta' })).statusCode).toBe(404);
    expect((await w.instructor.req('PUT', url('nope'), { role: 'ta' })).statusCode).toBe(404);
    expect((await w.instructor.req('PUT', url(w.ta.id), { role: 'owner' })).statusCode).toBe(400);
    expect((await w.ta.req('PUT', url(w.student.id), { role: 'student' })).statusCode).toBe(403);
    // With two instructors one may step down, and then the other is the last.
    await w.instructor.req('PUT', url(w.ta.id), { role: 'instructor' });
    expect((await w.instructor.req('PUT', url(w.instructor.id), { role: 'ta' })).statusCode).toBe(200);
    expect((await w.ta.req('PUT', url(w.ta.id), { role: 'student' })).json().error.code).toBe(
      'last_instructor',
    );
  });

  it('two instructors stepping down at once leave one instructor', async () => {
    for (let round = 0; round < 3; round++) {
      const w = await buildWorld(ctx.app, `Race${round}`);
      const url = (id: string) => `/courses/${w.course.id}/members/${id}`;
      await w.instructor.req('PUT', url(w.ta.id), { role: 'instructor' });
      const [a, b] = await Promise.all([
        w.instructor.req('PUT', url(w.instructor.id), { role: 'student' }),
        w.ta.req('PUT', url(w.ta.id), { role: 'student' }),
      ]);
      expect([a.statusCode, b.statusCode].sort()).toEqual([200, 409]);
      const { rows } = await ctx.database.pool.query(
        `select count(*)::int as n from course_members where course_id = $1 and role = 'instructor'`,
        [w.course.id],
      );
      expect(rows[0].n).toBe(1);
    }
  });
});

describe('malformed URLs', () => {
  it('a bad %-escape is 400 and an overlong id 404, both in the error shape', async () => {
    const a = await createActor(ctx.app, 'Url');
    const bad = await a.req('GET', '/courses/%');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'validation_failed', details: [{ field: 'url' }] });
    const long = await a.req('GET', `/courses/${'x'.repeat(300)}/members`);
    expect(long.statusCode).toBe(404);
    expect(long.json().error.code).toBe('not_found');
  });
});
