import { stringify } from 'csv-stringify/sync';
import { describe, expect, it } from 'vitest';
import { anon, createActor, withTestApp } from '../../../test/app.ts';
import {
  addMembers,
  buildWorld,
  createExercise,
  createLesson,
  insertSubmission,
  joinCourse,
  type World,
} from '../../../test/factories.ts';
import { round2 } from './gradebook.render.ts';
import type { Gradebook } from './gradebook.schemas.ts';

// Load shedding is tested elsewhere; a busy test machine must not turn these requests into 503s.
const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });

/** A course with two lessons (created out of order), three exercises, two students and some submissions. */
async function gradedWorld() {
  const w = await buildWorld(ctx.app, 'Grades');
  const second = await createLesson(w.instructor, w.course.id, { title: 'Second', position: 5 });
  const first = await createLesson(w.instructor, w.course.id, { title: 'First', position: 0 });
  const b = await createExercise(w.instructor, second.id, { title: 'B', maxScore: 5 });
  const a = await createExercise(w.instructor, first.id, { title: '=A, "quoted"', maxScore: 10 });
  const other = await createActor(ctx.app, '@Bob');
  await joinCourse(other, w.course.joinCode);
  const sub = (
    userId: string,
    exerciseId: string,
    status: 'passed' | 'failed' | 'error' | 'queued' | 'running',
    score: number | null,
    countsAsAttempt = true,
  ) =>
    insertSubmission(ctx.database.pool, {
      courseId: w.course.id,
      exerciseId,
      userId,
      status,
      score,
      countsAsAttempt,
    });
  await sub(w.student.id, a.id, 'failed', 3.33);
  await sub(w.student.id, a.id, 'passed', 10);
  await sub(w.student.id, a.id, 'queued', null);
  await sub(w.student.id, b.id, 'error', 0, false);
  await sub(w.student.id, b.id, 'failed', 1.115);
  await sub(other.id, b.id, 'running', null);
  // Staff submissions never make a gradebook row.
  await sub(w.ta.id, a.id, 'passed', 10);
  return { w, a, b, other };
}

describe('GET /courses/:courseId/gradebook', () => {
  it('has one row per student with best graded scores and totals', async () => {
    const { w, a, b, other } = await gradedWorld();
    const res = await w.ta.req('GET', `/courses/${w.course.id}/gradebook`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(body).toEqual(await referenceGradebook(w.course.id));
    // The world's own lesson is at position 0 and older than "First".
    expect(body.exercises.map((e: { id: string }) => e.id)).toEqual([w.exercise.id, a.id, b.id]);
    expect(body.exercises[1]).toEqual({
      id: a.id,
      title: '=A, "quoted"',
      maxScore: 10,
      publishedAt: expect.any(String),
    });
    expect(body.rows).toHaveLength(2);
    const byId = Object.fromEntries(body.rows.map((r: { user: { id: string } }) => [r.user.id, r]));
    expect(byId[w.student.id]).toEqual({
      user: { id: w.student.id, name: w.student.name, email: w.student.email },
      scores: { [w.exercise.id]: null, [a.id]: 10, [b.id]: 1.115 },
      late: { [w.exercise.id]: false, [a.id]: false, [b.id]: false },
      attempts: { [w.exercise.id]: 0, [a.id]: 3, [b.id]: 1 },
      total: 11.12,
    });
    expect(byId[other.id]).toMatchObject({
      scores: { [w.exercise.id]: null, [a.id]: null, [b.id]: null },
      total: 0,
    });
    expect(body.rows[0].user.name).toBe('@Bob');
  });

  it('exports CSV with name, email, one column per exercise title, total', async () => {
    const { w } = await gradedWorld();
    const res = await w.instructor.req('GET', `/courses/${w.course.id}/gradebook?format=csv`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    const day = new Date().toISOString().slice(0, 10);
    expect(res.headers['content-disposition']).toBe(
      `attachment; filename="${w.course.title}-gradebook-${day}.csv"; filename*=UTF-8''${encodeURIComponent(w.course.title)}-gradebook-${day}.csv`,
    );
    const lines = res.body.trim().split('\n');
    expect(lines[0]).toMatch(
      /^name,email,Sum \d+,Sum \d+ \(late\),"'=A, ""quoted""","'=A, ""quoted"" \(late\)",B,B \(late\),total$/,
    );
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^'@Bob,bob-.*@example.com,,,,,,,0$/);
    expect(lines[2]).toBe(`${w.student.name},${w.student.email},,,10,,1.115,,11.12`);
    expect((await w.instructor.req('GET', `/courses/${w.course.id}/gradebook?format=xml`)).statusCode).toBe(
      400,
    );
    const json = await w.instructor.req('GET', `/courses/${w.course.id}/gradebook?format=json`);
    expect(json.json().rows).toHaveLength(2);
  });

  it('counts the kept previous score of a submission being regraded, not a never-graded one', async () => {
    const { w, b, other } = await gradedWorld();
    // A regrade leaves the previous score on a queued/running submission until the new verdict lands.
    await insertSubmission(ctx.database.pool, {
      courseId: w.course.id,
      exerciseId: b.id,
      userId: other.id,
      status: 'queued',
      score: 4,
    });
    await insertSubmission(ctx.database.pool, {
      courseId: w.course.id,
      exerciseId: w.exercise.id,
      userId: other.id,
      status: 'running',
      score: 2.5,
    });
    const body = (await w.ta.req('GET', `/courses/${w.course.id}/gradebook`)).json();
    const row = body.rows.find((r: { user: { id: string } }) => r.user.id === other.id);
    expect(row).toMatchObject({ scores: { [w.exercise.id]: 2.5, [b.id]: 4 }, total: 6.5 });
    const csv = (await w.ta.req('GET', `/courses/${w.course.id}/gradebook?format=csv`)).body.split('\n');
    expect(csv[1]).toMatch(/^'@Bob,bob-.*@example.com,2.5,,,,4,,6.5$/);
    const progress = (await other.req('GET', `/courses/${w.course.id}/progress`)).json();
    expect(progress.exercises.map((e: { bestScore: number | null }) => e.bestScore)).toEqual([2.5, null, 4]);
  });

  it('an empty course has no columns and no rows', async () => {
    const owner = await createActor(ctx.app, 'Empty');
    const course = (await owner.req('POST', '/courses', { title: 'Empty' })).json().course;
    const res = await owner.req('GET', `/courses/${course.id}/gradebook`);
    expect(res.json()).toEqual({ exercises: [], rows: [] });
    const csv = await owner.req('GET', `/courses/${course.id}/gradebook?format=csv`);
    expect(csv.body).toBe('name,email,total\n');
  });

  it('students 403, outsiders 404, anonymous 401', async () => {
    const w: World = await buildWorld(ctx.app, 'GbAuthz');
    const url = `/courses/${w.course.id}/gradebook`;
    expect((await w.student.req('GET', url)).statusCode).toBe(403);
    expect((await w.outsider.req('GET', url)).statusCode).toBe(404);
    expect((await w.outsider.req('GET', '/courses/x/gradebook')).statusCode).toBe(404);
    expect((await anon(ctx.app, 'GET', url)).statusCode).toBe(401);
  });
});

/**
 * The gradebook as Lab built it before Postgres rendered it as text: one statement aggregating JSON,
 * then a JavaScript presenter. The rendered JSON and CSV must say exactly what it says.
 */
async function referenceGradebook(courseId: string): Promise<Gradebook> {
  const { rows } = await ctx.database.pool.query<{
    exercises: { id: string; title: string; maxScore: number; publishedAt: string | null }[];
    students: {
      id: string;
      name: string;
      email: string;
      scores: Record<string, number>;
      late: Record<string, boolean>;
      attempts: Record<string, number>;
    }[];
  }>(
    `with per_exercise as (
      select user_id, exercise_id,
             (array_agg(score order by score desc, late, created_at) filter (where score is not null))[1] as best,
             (array_agg(late order by score desc, late, created_at) filter (where score is not null))[1] as late,
             count(*) filter (where counts_as_attempt)::int as attempts
      from submissions where course_id = $1 group by user_id, exercise_id
    ),
    per_user as materialized (
      select user_id,
             coalesce(json_object_agg(exercise_id, best) filter (where best is not null), '{}'::json) as scores,
             coalesce(json_object_agg(exercise_id, late) filter (where best is not null), '{}'::json) as late,
             json_object_agg(exercise_id, attempts) as attempts
      from per_exercise group by user_id
    )
    select
      (select coalesce(json_agg(json_build_object('id', e.id, 'title', e.title, 'maxScore', e.max_score,
                                                  'publishedAt', e.published_at)
                                order by l.position, l.created_at, e.created_at, e.id), '[]'::json)
         from exercises e join lessons l on l.id = e.lesson_id where e.course_id = $1) as exercises,
      (select coalesce(json_agg(json_build_object('id', u.id, 'name', u.name, 'email', u.email,
                                                  'scores', coalesce(p.scores, '{}'::json),
                                                  'late', coalesce(p.late, '{}'::json),
                                                  'attempts', coalesce(p.attempts, '{}'::json))
                                order by lower(u.name), lower(u.email), u.id), '[]'::json)
         from course_members m join users u on u.id = m.user_id left join per_user p on p.user_id = m.user_id
        where m.course_id = $1 and m.role = 'student') as students`,
    [courseId],
  );
  const data = rows[0]!;
  const exercises = data.exercises.map((e) => ({
    id: e.id,
    title: e.title,
    maxScore: Number(e.maxScore),
    publishedAt: e.publishedAt === null ? null : new Date(e.publishedAt).toISOString(),
  }));
  return {
    exercises,
    rows: data.students.map((s) => {
      const scores: Record<string, number | null> = {};
      const late: Record<string, boolean> = {};
      const attempts: Record<string, number> = {};
      let total = 0;
      for (const e of exercises) {
        const best = s.scores[e.id];
        scores[e.id] = best === undefined ? null : Number(best);
        late[e.id] = s.late[e.id] === true;
        attempts[e.id] = s.attempts[e.id] ?? 0;
        total += best === undefined ? 0 : Number(best);
      }
      return {
        user: { id: s.id, name: s.name, email: s.email },
        scores,
        late,
        attempts,
        total: round2(total),
      };
    }),
  };
}

/** A spreadsheet runs a cell starting with = + - @ (or tab/CR) as a formula (OWASP "CSV injection"). */
const defuse = (cell: string) => (/^[=+\-@\t\r]/.test(cell) ? `'${cell}` : cell);

/** The CSV as the JSON gradebook renders through csv-stringify: what the streamed export must equal. */
function referenceCsv(gradebook: Gradebook): string {
  const header = [
    'name',
    'email',
    ...gradebook.exercises.flatMap((e) => [defuse(e.title), defuse(`${e.title} (late)`)]),
    'total',
  ];
  const lines = gradebook.rows.map((r) => [
    defuse(r.user.name),
    defuse(r.user.email),
    ...gradebook.exercises.flatMap((e) => [r.scores[e.id] ?? '', r.late[e.id] ? 'late' : '']),
    r.total,
  ]);
  return stringify([header, ...lines]);
}

/** Students inserted straight into the course (names the API may not accept, e.g. with newlines). */
async function addStudents(courseId: string, names: string[]) {
  const tag = Math.random().toString(36).slice(2, 8);
  await ctx.database.pool.query(
    `with u as (
       insert into users (email, name, password_hash)
       select $2 || '-' || i || '@example.com', n, 'x' from unnest($1::text[]) with ordinality as t(n, i)
       returning id
     )
     insert into course_members (course_id, user_id, role) select $3, id, 'student' from u`,
    [names, tag, courseId],
  );
}

const heavyPoolIsIdle = () =>
  expect(ctx.database.heavyPool.idleCount).toBe(ctx.database.heavyPool.totalCount);

describe('GET /courses/:courseId/gradebook?format=csv', () => {
  it('quotes cells with commas, quotes, CR and LF and defuses formulas as csv-stringify did', async () => {
    const w = await buildWorld(ctx.app, 'Quoting');
    const lesson = await createLesson(w.instructor, w.course.id, { title: 'L', position: 1 });
    for (const title of ['+1, "two"', '-minus', 'plain', '\ttab', 'multi\nline'])
      await createExercise(w.instructor, lesson.id, { title });
    await addStudents(w.course.id, [
      'Smith, Jane',
      'Say "hi"',
      'two\nlines',
      'carriage\rreturn',
      '=HYPERLINK("x")',
      '+plus',
      '-minus, and "quote"',
      '@at',
      '\ttab',
      '\rcr',
      "'already",
      ' space',
      'Émilie',
    ]);
    await ctx.database.pool.query(
      `insert into submissions (course_id, exercise_id, user_id, code, status, score, body_hash)
       select $1, e.id, m.user_id, 'x', 'passed', 0.1 * (row_number() over (order by m.user_id, e.id)), 'h'
       from exercises e, course_members m
       where e.course_id = $1 and m.course_id = $1 and m.role = 'student'`,
      [w.course.id],
    );
    const json = (await w.ta.req('GET', `/courses/${w.course.id}/gradebook`)).json();
    expect(json).toEqual(await referenceGradebook(w.course.id));
    expect(json.rows.map((r: { user: { name: string } }) => r.user.name)).toContain('two\nlines');
    const csv = await w.ta.req('GET', `/courses/${w.course.id}/gradebook?format=csv`);
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.body).toBe(referenceCsv(json));
    expect(csv.body).toContain('\n"two\nlines",');
    expect(csv.body).toContain('\n"carriage\rreturn",');
    expect(csv.body).toContain(`\n"'-minus, and ""quote""",`);
    expect(csv.body).toContain(`\n"'=HYPERLINK(""x"")",`);
    expect(csv.body).toContain(`\n"'\rcr",`);
    expect(csv.body).toContain(`\n'\ttab,`);
    expect(csv.body).toContain(`\n'already,`);
    expect(csv.body.split('\n')[0]).toBe(
      `name,email,${json.exercises[0].title},${json.exercises[0].title} (late),"'+1, ""two""","'+1, ""two"" (late)",'-minus,'-minus (late),plain,plain (late),'\ttab,'\ttab (late),"multi`,
    );
    heavyPoolIsIdle();
  });

  it('a course with exercises and no students has only the header', async () => {
    const w = await buildWorld(ctx.app, 'NoStudents');
    await ctx.database.pool.query(`delete from course_members where course_id = $1 and role = 'student'`, [
      w.course.id,
    ]);
    const json = (await w.instructor.req('GET', `/courses/${w.course.id}/gradebook`)).json();
    expect(json.rows).toEqual([]);
    const csv = await w.instructor.req('GET', `/courses/${w.course.id}/gradebook?format=csv`);
    expect(csv.statusCode).toBe(200);
    const title = json.exercises[0].title;
    expect(csv.body).toBe(`name,email,${title},${title} (late),total\n`);
  });

  it('streams a big course in batches: one line per student, totals as in the JSON gradebook', async () => {
    const w = await buildWorld(ctx.app, 'Big');
    const pool = ctx.database.pool;
    await pool.query(
      `insert into exercises (course_id, lesson_id, title, language, tests, max_score, limits)
       select $1, $2, 'Ex ' || i, 'python', '[{"name":"t","kind":"io","stdin":"","stdout":"","hidden":false}]', 10,
              '{"timeMs":2000,"memoryMb":64}' from generate_series(1, 12) i`,
      [w.course.id, w.lesson.id],
    );
    const users = await pool.query<{ id: string }>(
      `insert into users (email, name, password_hash)
       select 'big-' || i || '-' || $1 || '@example.com',
              case when i % 7 = 0 then 'Student "' || i || '", x' else 'Student ' || i end, 'x'
       from generate_series(1, 1200) i returning id`,
      [w.course.id],
    );
    await addMembers(
      pool,
      w.course.id,
      users.rows.map((r) => r.id),
    );
    // Fractions binary floating point cannot hold exactly, several attempts each, some students with none.
    await pool.query(
      `insert into submissions (course_id, exercise_id, user_id, code, status, score, late, counts_as_attempt, body_hash)
       select $1, e.id, m.user_id, 'x', 'failed',
              case when a = 1 and abs(hashtext(e.id::text || m.user_id::text)) % 9 = 0 then null
                   else (abs(hashtext(m.user_id::text || e.id::text || a)) % 1001) / 100.0 + 0.005 * a end,
              a = 2 and abs(hashtext(m.user_id::text || e.id::text)) % 3 = 0,
              a <> 0 or abs(hashtext(m.user_id::text)) % 2 = 0, 'h'
       from course_members m, exercises e, generate_series(0, 2) a
       where m.course_id = $1 and m.role = 'student' and e.course_id = $1
         and abs(hashtext(m.user_id::text)) % 5 <> 0 and abs(hashtext(e.id::text || m.user_id::text)) % 4 <> 0`,
      [w.course.id],
    );
    const jsonRes = await w.ta.req('GET', `/courses/${w.course.id}/gradebook`);
    expect(jsonRes.statusCode, jsonRes.body.slice(0, 500)).toBe(200);
    const json = jsonRes.json();
    // Streamed in batches of students, it is still the one document the reference builds.
    expect(json).toEqual(await referenceGradebook(w.course.id));
    expect(json.rows).toHaveLength(1201);
    expect(json.rows.some((r: Gradebook['rows'][number]) => Object.values(r.late).includes(true))).toBe(true);
    heavyPoolIsIdle();
    const csv = await w.ta.req('GET', `/courses/${w.course.id}/gradebook?format=csv`);
    expect(csv.statusCode, csv.body.slice(0, 500)).toBe(200);
    const lines = csv.body.split('\n');
    // Header, the world's student and the 1,200, and the final newline.
    expect(lines).toHaveLength(1 + 1201 + 1);
    expect(lines.at(-1)).toBe('');
    expect(csv.body).toBe(referenceCsv(json));
    const totals = lines.slice(1, -1).map((l) => Number(l.slice(l.lastIndexOf(',') + 1)));
    expect(totals).toEqual(json.rows.map((r: { total: number }) => r.total));
    expect(totals.filter((t) => t > 0).length).toBeGreaterThan(800);
    heavyPoolIsIdle();
  });

  it('answers the API error shape when no connection comes free before the first byte', async () => {
    const w = await buildWorld(ctx.app, 'Busy');
    // The heavy pool's only connection is taken: the export waits for it, then gives up.
    for (const format of ['csv', 'json']) {
      const url = `/courses/${w.course.id}/gradebook?format=${format}`;
      const held = await ctx.database.heavyPool.connect();
      try {
        const res = await w.ta.req('GET', url);
        expect(res.statusCode).toBe(503);
        expect(res.headers['content-type']).toMatch(/^application\/json/);
        // The database is up and busy: overloaded (a busy pool), not unavailable (a database down).
        expect(res.json().error.code).toBe('overloaded');
        expect(res.headers['retry-after']).toBeDefined();
      } finally {
        held.release();
      }
      const res = await w.ta.req('GET', url);
      expect(res.statusCode).toBe(200);
      heavyPoolIsIdle();
    }
  });
});

describe('GET /courses/:courseId/progress', () => {
  it('gives the caller their best score and attempts per exercise', async () => {
    const { w, a, b } = await gradedWorld();
    const unlimited = { dueAt: null, attemptsLeft: null, late: false };
    const res = await w.student.req('GET', `/courses/${w.course.id}/progress`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      exercises: [
        {
          ...unlimited,
          id: w.exercise.id,
          title: expect.any(String),
          maxScore: 10,
          bestScore: null,
          attempts: 0,
        },
        { ...unlimited, id: a.id, title: '=A, "quoted"', maxScore: 10, bestScore: 10, attempts: 3 },
        { ...unlimited, id: b.id, title: 'B', maxScore: 5, bestScore: 1.115, attempts: 1 },
      ],
      total: 11.12,
      maxTotal: 25,
    });
    const ta = (await w.ta.req('GET', `/courses/${w.course.id}/progress`)).json();
    expect(ta.total).toBe(10);
    expect((await w.outsider.req('GET', `/courses/${w.course.id}/progress`)).statusCode).toBe(404);
    expect((await anon(ctx.app, 'GET', `/courses/${w.course.id}/progress`)).statusCode).toBe(401);
  });

  it('rounds to two decimals and defuses formula cells', () => {
    expect(round2(0.1 + 0.2)).toBe(0.3);
    expect(defuse('=1+1')).toBe("'=1+1");
    expect(defuse('-x')).toBe("'-x");
    expect(defuse('Ada')).toBe('Ada');
  });
});
