import { type Static, Type } from '@sinclair/typebox';
import { sql } from 'drizzle-orm';
import type pg from 'pg';
import type { Tx } from '../../db/client.ts';
import { Col, rowsOf, selectRows } from '../../db/rows.ts';
import { attemptsLeft, effectiveDue, isPublished } from '../exercises/exercise-rules.ts';

// The gradebook arrives as JSON aggregated by Postgres (one statement): checked against these shapes.
const GradebookExercise = Type.Object({
  id: Col.uuid,
  title: Col.text,
  maxScore: Type.Number(),
  /** json_build_object prints a timestamptz as text. */
  publishedAt: Col.nullable(Type.String()),
});
export type GradebookExercise = Static<typeof GradebookExercise>;

const GradebookStudent = Type.Object({
  id: Col.uuid,
  name: Col.text,
  email: Col.text,
  /** Best graded (credited) score per exercise the student has a graded submission for. */
  scores: Type.Record(Type.String(), Type.Number()),
  /** Whether that best submission was late, per exercise. */
  late: Type.Record(Type.String(), Type.Boolean()),
  /** Attempts used, per exercise the student submitted to. */
  attempts: Type.Record(Type.String(), Type.Integer()),
});
export type GradebookStudent = Static<typeof GradebookStudent>;

const gradebookRows = rowsOf(
  Type.Object({ exercises: Type.Array(GradebookExercise), students: Type.Array(GradebookStudent) }),
  'gradebook',
);

/*
 * A submission counts toward the best score once it has been graded (passed, failed, or error, which
 * scores 0). A regrade sets it back to queued/running but keeps its previous score until the new
 * verdict replaces it, so "graded" is judged by the score, not by status: the previous score keeps
 * counting during a regrade, while a new submission (inserted with a null score, and every verdict
 * has one) does not.
 */
const GRADED_SQL = 'score is not null';
const GRADED = sql.raw(GRADED_SQL);

/** Course order: lessons by position then creation, exercises by creation within a lesson. */
const EXERCISE_ORDER = sql`l.position, l.created_at, e.created_at, e.id`;

/**
 * The whole gradebook in one statement: the exercise columns and one row per student with their best
 * scores aggregated by Postgres (best scores are grouped per user first, then hash-joined to students).
 */
export async function selectGradebook(tx: Tx, courseId: string) {
  const [gradebook] = await selectRows(
    tx,
    gradebookRows,
    sql`
    with per_exercise as (
      -- The best graded submission (an on-time one before a late one with the same score), and the
      -- attempts used, per student and exercise.
      select user_id, exercise_id,
             (array_agg(score order by score desc, late, created_at) filter (where ${GRADED}))[1] as best,
             (array_agg(late order by score desc, late, created_at) filter (where ${GRADED}))[1] as late,
             count(*) filter (where counts_as_attempt)::int as attempts
      from submissions
      where course_id = ${courseId}
      group by user_id, exercise_id
    ),
    -- Materialized: computed once. Inlined, a plan from stale statistics (right after a bulk load)
    -- re-aggregated every submission of the course once per student (40 ms for 150 students; 6 ms now).
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
                                order by ${EXERCISE_ORDER}), '[]'::json)
         from exercises e join lessons l on l.id = e.lesson_id
        where e.course_id = ${courseId}) as exercises,
      (select coalesce(json_agg(json_build_object('id', u.id, 'name', u.name, 'email', u.email,
                                                  'scores', coalesce(p.scores, '{}'::json),
                                                  'late', coalesce(p.late, '{}'::json),
                                                  'attempts', coalesce(p.attempts, '{}'::json))
                                order by lower(u.name), lower(u.email), u.id), '[]'::json)
         from course_members m
         join users u on u.id = m.user_id
         left join per_user p on p.user_id = m.user_id
        where m.course_id = ${courseId} and m.role = 'student') as students`,
  );
  return gradebook!;
}

export interface ProgressRow {
  id: string;
  title: string;
  maxScore: number;
  bestScore: number | null;
  attempts: number;
  /** The caller's own due date (their exception's, else the exercise's). */
  dueAt: string | null;
  /** Attempts left (their extra attempts included); null = no limit. */
  attemptsLeft: number | null;
  /** The best submission was late. */
  late: boolean;
}

const progressRows = rowsOf(
  Type.Object({
    id: Col.uuid,
    title: Col.text,
    max_score: Col.float,
    best: Col.nullable(Col.float),
    attempts: Col.int,
    due_at: Col.nullable(Col.timestamp),
    attempts_left: Col.nullable(Col.int),
    late: Col.nullable(Col.bool),
  }),
  'progress',
);

/**
 * The caller's best score, attempts, due date and attempts left for every exercise of the course they
 * may see (students: the published ones), one statement.
 */
export async function selectProgress(
  tx: Tx,
  courseId: string,
  userId: string,
  staff: boolean,
): Promise<ProgressRow[]> {
  const rows = await selectRows(
    tx,
    progressRows,
    sql`
    select e.id, e.title, e.max_score, s.best, s.attempts, s.late,
           ${effectiveDue(sql`e.due_at`, sql`x.due_at`)} as due_at,
           ${attemptsLeft(sql`e.max_attempts`, sql`x.extra_attempts`, sql`s.attempts`)} as attempts_left
    from exercises e
    join lessons l on l.id = e.lesson_id
    left join exercise_exceptions x on x.exercise_id = e.id and x.user_id = ${userId}
    cross join lateral (
      select (array_agg(score order by score desc, late, created_at) filter (where ${GRADED}))[1] as best,
             (array_agg(late order by score desc, late, created_at) filter (where ${GRADED}))[1] as late,
             count(*) filter (where counts_as_attempt)::int as attempts
      from submissions
      where exercise_id = e.id and user_id = ${userId}
    ) s
    where e.course_id = ${courseId}
      and (${staff} or (${isPublished(sql`e.published_at`)} and ${isPublished(sql`l.published_at`)}))
    order by ${EXERCISE_ORDER}`,
  );
  return rows.map((r) => ({
    id: r.id,
    title: r.title,
    maxScore: r.max_score,
    bestScore: r.best === null ? null : Number(r.best),
    attempts: r.attempts,
    dueAt: r.due_at === null ? null : new Date(r.due_at).toISOString(),
    attemptsLeft: r.attempts_left,
    late: r.late === true,
  }));
}

/** SQL for a cell as `defuse` in the presenter renders it: a leading apostrophe on formula-like text. */
const defused = (cell: string) =>
  `case when left(${cell}, 1) in ('=', '+', '-', '@', E'\\t', E'\\r') then '''' || ${cell} else ${cell} end`;

/** SQL for an RFC 4180 cell: quoted (inner quotes doubled) when it holds , " CR or LF. */
const quoted = (cell: string) =>
  `case when ${cell} ~ '[,"\\r\\n]' then '"' || replace(${cell}, '"', '""') || '"' else ${cell} end`;

const textCell = (cell: string) => quoted(defused(cell));

/**
 * The CSV gradebook rendered by Postgres, one ready line per row: the header first, then one line per
 * student in gradebook order; after each exercise's column, `<title> (late)` with `late` or nothing
 * (v1.1). Numbers print as JavaScript's String(number) does: a float8 prints in
 * its shortest round-trip form (they differ only in exponent notation: below 1e-4 or from 1e15 up);
 * the total is summed in column order and rounded as `round2` does (Math.round is floor(x + 0.5) for
 * the non-negative totals).
 */
const GRADEBOOK_CSV = `
  with ex as (
    select e.id, e.title,
           row_number() over (order by l.position, l.created_at, e.created_at, e.id) as n
    from exercises e join lessons l on l.id = e.lesson_id
    where e.course_id = $1
  ),
  best as (
    select user_id, exercise_id,
           (array_agg(score order by score desc, late, created_at))[1] as best,
           (array_agg(late order by score desc, late, created_at))[1] as late
    from submissions
    where course_id = $1 and ${GRADED_SQL}
    group by user_id, exercise_id
  ),
  -- Students and their best scores meet in one grouping, not a join: a join planned from stale
  -- statistics (right after a bulk load) became a nested loop that took seconds on a big course.
  per_student as (
    select user_id,
           array_agg(exercise_id) filter (where exercise_id is not null) as exercise_ids,
           array_agg(best) filter (where exercise_id is not null) as bests,
           array_agg(late) filter (where exercise_id is not null) as lates
    from (
      select user_id, null::uuid as exercise_id, null::float8 as best, null::boolean as late
      from course_members where course_id = $1 and role = 'student'
      union all
      select user_id, exercise_id, best, late from best
    ) s
    group by user_id
    having bool_or(exercise_id is null)
  )
  select line from (
    select 0 as k, null as lname, null as lemail, null::uuid as id,
           'name,email'
             || coalesce((select string_agg(',' || ${textCell('title')} || ',' || ${textCell("title || ' (late)'")}, '' order by n) from ex), '')
             || ',total' as line
    union all
    select 1, lower(u.name), lower(u.email), u.id,
           ${textCell('u.name')} || ',' || ${textCell('u.email')} || coalesce(c.cells, '') || ','
             || (floor(coalesce(c.total, 0) * 100 + 0.5) / 100)::text
    from per_student p
    join users u on u.id = p.user_id
    cross join lateral (
      select string_agg(',' || coalesce(s.best::text, '') || ',' || case when s.late then 'late' else '' end, ''
                        order by x.n) as cells,
             sum(s.best order by x.n) as total
      from ex x
      cross join lateral (
        select p.bests[array_position(p.exercise_ids, x.id)] as best,
               p.lates[array_position(p.exercise_ids, x.id)] as late
      ) s
    ) c
  ) t
  order by k, lname, lemail, id`;

const CSV_BATCH = 500;

/**
 * The CSV gradebook as chunks of lines, fetched CSV_BATCH rows at a time through a server-side cursor
 * so neither Postgres's result nor any single chunk grows with the course. Holds one heavy-pool
 * connection (and its transaction) until the last chunk is read or the consumer stops early.
 */
export async function* gradebookCsvChunks(
  connect: () => Promise<pg.PoolClient>,
  courseId: string,
): AsyncGenerator<string> {
  const client = await connect();
  let broken: Error | undefined;
  let open = false;
  try {
    // A cursor is planned for its first 10 % of rows by default (cursor_tuple_fraction), favouring
    // fast-start nested loops; every row is wanted here, so plan for all of them.
    await client.query('begin read only; set local cursor_tuple_fraction = 1');
    open = true;
    await client.query(`declare gradebook_csv no scroll cursor for ${GRADEBOOK_CSV}`, [courseId]);
    for (;;) {
      const { rows } = await client.query<{ line: string }>(`fetch ${CSV_BATCH} from gradebook_csv`);
      if (rows.length > 0) yield `${rows.map((r) => r.line).join('\n')}\n`;
      if (rows.length < CSV_BATCH) break;
    }
    await client.query('commit');
    open = false;
  } catch (err) {
    // A failure before the transaction opened may be a dead connection: do not return it to the pool.
    if (!open) broken = err as Error;
    throw err;
  } finally {
    // Stopped early (client went away) or failed: end the transaction before the connection is reused.
    if (open) await client.query('rollback').catch((err: Error) => (broken ??= err));
    client.release(broken);
  }
}
