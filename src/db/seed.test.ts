import { eq, sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { createActor, withTestApp } from '../../test/app.ts';
import { exercises } from './schema/index.ts';
import { DEMO, seedDemo } from './seed.ts';

const ctx = withTestApp();

describe('seedDemo', () => {
  it('creates the demo course once, even when two processes seed at the same time', async () => {
    const [a, b] = await Promise.all([seedDemo(ctx.database.db), seedDemo(ctx.database.db)]);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(a.courseId).toBe(b.courseId);
    const again = await seedDemo(ctx.database.db);
    expect(again).toEqual({ created: false, courseId: a.courseId });
    const rows = await ctx.database.db
      .select({ language: exercises.language, tests: exercises.tests })
      .from(exercises)
      .where(eq(exercises.courseId, a.courseId));
    expect(new Set(rows.map((r) => r.language))).toEqual(new Set(['javascript', 'python']));
    const tests = rows.flatMap((r) => r.tests);
    expect(new Set(tests.map((t) => t.kind))).toEqual(new Set(['call', 'io']));
    expect(tests.some((t) => t.hidden)).toBe(true);
    const users = await ctx.database.db.execute(sql`select count(*)::int as n from users`);
    expect(users.rows[0]).toEqual({ n: 2 });
  });

  it('the printed credentials sign in, and the instructor sees the course', async () => {
    const login = await ctx.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: DEMO.instructor.email, password: DEMO.instructor.password },
    });
    expect(login.statusCode).toBe(200);
    const student = await ctx.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: DEMO.student.email, password: DEMO.student.password },
    });
    expect(student.statusCode).toBe(200);
  });

  it("the demo course's join code lets a new student join", async () => {
    const { courseId } = await seedDemo(ctx.database.db);
    const code = (await ctx.database.pool.query('select join_code from courses where id = $1', [courseId]))
      .rows[0].join_code as string;
    const student = await createActor(ctx.app, 'Newcomer');
    const join = await student.req('POST', '/courses/join', { joinCode: code });
    expect(join.statusCode, join.body).toBe(200);
    expect(join.json().course.id).toBe(courseId);
  });
});
