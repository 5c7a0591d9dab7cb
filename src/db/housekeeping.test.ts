import { describe, expect, it } from 'vitest';
import { createActor, withTestApp } from '../../test/app.ts';
import { pruneExpired } from './housekeeping.ts';

const ctx = withTestApp();

describe('pruneExpired', () => {
  it('deletes expired sessions, old login failures and old events, and keeps current ones', async () => {
    const a = await createActor(ctx.app, 'Keeper');
    const q = (text: string, params: unknown[] = []) => ctx.database.pool.query(text, params);
    await q(
      `insert into sessions (token_hash, user_id, expires_at) values ('old', $1, now() - interval '1 hour')`,
      [a.id],
    );
    await q(`insert into login_failures (email, ip, at) values ('x@y', '1.2.3.4', now() - interval '2 days'),
                                                               ('x@y', '1.2.3.4', now())`);
    const course = await q(`insert into courses (title, join_code) values ('C', 'PRUNE001') returning id`);
    const courseId = course.rows[0].id;
    await q(
      `insert into events (course_id, user_id, type, payload, created_at)
       values ($1, $2, 'submission.updated', '{}', now() - interval '8 days'),
              ($1, $2, 'submission.updated', '{}', now())`,
      [courseId, a.id],
    );

    // Rate-limit counters: one that expired two hours ago, one live (the registration above made one too).
    await q(`insert into rate_limits (key, points, expire) values
             ('join:10.0.0.1', 3, (extract(epoch from now() - interval '2 hours') * 1000)::bigint),
             ('join:10.0.0.2', 3, (extract(epoch from now() + interval '1 hour') * 1000)::bigint)`);

    // Runs: one finished two days ago (pruned), one queued as long ago (its job still needs it), one recent.
    const lesson = await q(
      `insert into lessons (course_id, title, position) values ($1, 'L', 0) returning id`,
      [courseId],
    );
    const ex = await q(
      `insert into exercises (course_id, lesson_id, title, language, tests, max_score, limits)
       values ($1, $2, 'E', 'python', '[]', 1, '{"timeMs": 100, "memoryMb": 16}') returning id`,
      [courseId, lesson.rows[0].id],
    );
    await q(
      `insert into runs (course_id, exercise_id, user_id, code, status, created_at) values
       ($1, $2, $3, 'old', 'passed', now() - interval '2 days'),
       ($1, $2, $3, 'stuck', 'queued', now() - interval '2 days'),
       ($1, $2, $3, 'new', 'passed', now())`,
      [courseId, ex.rows[0].id, a.id],
    );

    // Read-your-writes positions (replicas): one from two hours ago (pruned), one recent.
    const b = await createActor(ctx.app, 'Writer');
    await q(
      `insert into write_positions (user_id, lsn, at) values
       ($1, '0/1', now() - interval '2 hours'), ($2, pg_current_wal_lsn(), now())`,
      [a.id, b.id],
    );

    expect(await pruneExpired(ctx.database.db)).toEqual({
      sessions: 1,
      loginFailures: 1,
      events: 1,
      rateLimits: 1,
      runs: 1,
      writePositions: 1,
    });
    expect(await pruneExpired(ctx.database.db)).toEqual({
      sessions: 0,
      loginFailures: 0,
      events: 0,
      rateLimits: 0,
      runs: 0,
      writePositions: 0,
    });
    expect((await q(`select user_id from write_positions`)).rows).toEqual([{ user_id: b.id }]);
    expect((await q(`select code from runs order by code`)).rows.map((r) => r.code)).toEqual([
      'new',
      'stuck',
    ]);
    expect((await q(`select key from rate_limits order by key`)).rows.map((r) => r.key)).toEqual([
      'join:10.0.0.2',
      'register:127.0.0.1',
    ]);
    // The live session, the recent failure and the recent event are still there.
    expect((await a.req('GET', '/me')).statusCode).toBe(200);
    expect((await q(`select count(*)::int as n from login_failures`)).rows[0].n).toBe(1);
    expect((await q(`select count(*)::int as n from events`)).rows[0].n).toBe(1);
    const cookieMe = await ctx.app.inject({
      method: 'GET',
      url: '/api/v1/me',
      headers: { cookie: a.cookie },
    });
    expect(cookieMe.statusCode).toBe(200);
  });

  it('works in batches', async () => {
    const a = await createActor(ctx.app, 'Batch');
    await ctx.database.pool.query(
      `insert into sessions (token_hash, user_id, expires_at)
       select 'b' || g, $1, now() - interval '1 hour' from generate_series(1, 5) g`,
      [a.id],
    );
    expect((await pruneExpired(ctx.database.db, 3)).sessions).toBe(3);
    expect((await pruneExpired(ctx.database.db, 3)).sessions).toBe(2);
  });
});
