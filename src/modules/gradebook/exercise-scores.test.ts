import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { createActor, withTestApp } from '../../../test/app.ts';
import { buildWorld, createExercise, joinCourse, type World } from '../../../test/factories.ts';
import { until } from '../../../test/wait.ts';

// exercise_scores (kept by triggers, migration 0009) must always equal what the gradebook used to
// compute from submissions on every request.
const EXPECTED = `
  select exercise_id, user_id, course_id,
         (array_agg(score order by score desc, late, created_at) filter (where score is not null))[1] as best,
         (array_agg(late order by score desc, late, created_at) filter (where score is not null))[1] as late,
         count(*) filter (where counts_as_attempt)::int as attempts
    from submissions group by exercise_id, user_id, course_id order by exercise_id, user_id`;
const ACTUAL = `select exercise_id, user_id, course_id, best, late, attempts from exercise_scores
                 order by exercise_id, user_id`;

const ctx = withTestApp();
let w: World;
let exerciseId: string;

async function expectInStep() {
  const [expected, actual] = await Promise.all([
    ctx.database.pool.query(EXPECTED),
    ctx.database.pool.query(ACTUAL),
  ]);
  expect(actual.rows).toEqual(expected.rows);
  return actual.rows as {
    exercise_id: string;
    user_id: string;
    best: number | null;
    late: boolean | null;
    attempts: number;
  }[];
}

/** Inserts a submission as the API would (ungraded unless a score is given); returns its id. */
async function insert(userId: string, fields: { score?: number; late?: boolean; minutesAgo?: number } = {}) {
  const { rows } = await ctx.database.pool.query<{ id: string }>(
    `insert into submissions (course_id, exercise_id, user_id, code, body_hash, score, late, created_at)
     values ($1, $2, $3, 'x', 'h', $4, $5, now() - make_interval(mins => $6)) returning id`,
    [w.course.id, exerciseId, userId, fields.score ?? null, fields.late ?? false, fields.minutesAgo ?? 0],
  );
  return rows[0]!.id;
}

const setScore = (id: string, score: number | null, late = false) =>
  ctx.database.pool.query('update submissions set score = $2, late = $3 where id = $1', [id, score, late]);

const rowOf = (rows: Awaited<ReturnType<typeof expectInStep>>, userId: string) =>
  rows.find((r) => r.user_id === userId && r.exercise_id === exerciseId);

beforeAll(async () => {
  w = await buildWorld(ctx.app, 'Scores');
});

describe('exercise_scores, the gradebook summary kept by triggers on submissions', () => {
  it('follows submissions: new ones count as attempts, verdicts set the best, ties prefer on-time, lower regrades lower it', async () => {
    exerciseId = (await createExercise(w.instructor, w.lesson.id)).id;
    const a = await insert(w.student.id, { minutesAgo: 3 });
    const b = await insert(w.student.id, { minutesAgo: 2 });
    let row = rowOf(await expectInStep(), w.student.id)!;
    expect(row).toMatchObject({ best: null, late: null, attempts: 2 });

    await setScore(a, 4, true);
    expect(rowOf(await expectInStep(), w.student.id)).toMatchObject({ best: 4, late: true });
    // The same score on time wins over the late one.
    await setScore(b, 4, false);
    expect(rowOf(await expectInStep(), w.student.id)).toMatchObject({ best: 4, late: false });
    // A regrade that lowers the best brings back the next best.
    await setScore(b, 1, false);
    expect(rowOf(await expectInStep(), w.student.id)).toMatchObject({ best: 4, late: true });
    // An infrastructure failure does not use up an attempt.
    await ctx.database.pool.query('update submissions set counts_as_attempt = false where id = $1', [b]);
    row = rowOf(await expectInStep(), w.student.id)!;
    expect(row.attempts).toBe(1);
    // An update that changes none of its inputs (a status) leaves it as it is.
    await ctx.database.pool.query(`update submissions set status = 'running' where id = $1`, [a]);
    await expectInStep();
  });

  it("follows bulk inserts with scores and deletes: of one submission, of a pair's last, of a user (cascade)", async () => {
    const other = await createActor(ctx.app, 'Scores Other');
    await joinCourse(other, w.course.joinCode);
    await ctx.database.pool.query(
      `insert into submissions (course_id, exercise_id, user_id, code, body_hash, score, late)
       select $1, $2, u, 'x', 'h', g::float8, g % 2 = 0 from unnest($3::uuid[]) u, generate_series(1, 3) g`,
      [w.course.id, exerciseId, [w.student.id, other.id]],
    );
    let rows = await expectInStep();
    expect(rowOf(rows, other.id)).toMatchObject({ best: 3, late: false, attempts: 3 });

    const { rows: best } = await ctx.database.pool.query<{ id: string }>(
      'select id from submissions where user_id = $1 and score = 3',
      [other.id],
    );
    await ctx.database.pool.query('delete from submissions where id = $1', [best[0]!.id]);
    expect(rowOf(await expectInStep(), other.id)).toMatchObject({ best: 2, late: true, attempts: 2 });

    await ctx.database.pool.query('delete from submissions where user_id = $1', [other.id]);
    rows = await expectInStep();
    expect(rowOf(rows, other.id)).toBeUndefined();

    const gone = await createActor(ctx.app, 'Scores Gone');
    await joinCourse(gone, w.course.joinCode);
    await insert(gone.id, { score: 2 });
    expect(rowOf(await expectInStep(), gone.id)).toMatchObject({ best: 2 });
    await ctx.database.pool.query('delete from users where id = $1', [gone.id]);
    expect(rowOf(await expectInStep(), gone.id)).toBeUndefined();
  });

  it('two verdicts for the same student and exercise committing concurrently: the later one sees the earlier', async () => {
    for (const [first, second] of [
      [7, 5],
      [5, 7],
    ] as const) {
      const x = await insert(w.student.id);
      const y = await insert(w.student.id);
      const c1 = new pg.Client({ connectionString: ctx.url });
      const c2 = new pg.Client({ connectionString: ctx.url });
      await Promise.all([c1.connect(), c2.connect()]);
      try {
        await c1.query('begin');
        await c1.query('update submissions set score = $2 where id = $1', [x, first + 100]);
        await c2.query('begin');
        const pid = (await c2.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
        // Waits in its trigger for the pair's row, which the first transaction holds until it commits.
        const waiting = c2.query('update submissions set score = $2 where id = $1', [y, second + 100]);
        await until(async () => {
          const { rows } = await ctx.database.pool.query<{ w: string | null }>(
            'select wait_event_type as w from pg_stat_activity where pid = $1',
            [pid],
          );
          return rows[0]?.w === 'Lock';
        }, "the second verdict waiting for the pair's row");
        await c1.query('commit');
        await waiting;
        await c2.query('commit');
      } finally {
        await Promise.all([c1.end(), c2.end()]);
      }
      expect(rowOf(await expectInStep(), w.student.id)!.best).toBe(Math.max(first, second) + 100);
      await ctx.database.pool.query('delete from submissions where id = any($1::uuid[])', [[x, y]]);
    }
  });
});
