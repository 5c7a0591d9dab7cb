import { Type } from '@sinclair/typebox';
import { sql } from 'drizzle-orm';
import type pg from 'pg';
import type { Tx } from '../../db/client.ts';
import { isoUtcSql } from '../../db/iso-text.ts';
import { Col, rowsOf, selectRows } from '../../db/rows.ts';
import { attemptsLeft, effectiveDue, isPublished } from '../exercises/exercise-rules.ts';

/** Course order: lessons by position then creation, exercises by creation within a lesson. */
const EXERCISE_ORDER_SQL = 'l.position, l.created_at, e.created_at, e.id';
const EXERCISE_ORDER = sql.raw(EXERCISE_ORDER_SQL);

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
    select e.id, e.title, e.max_score, s.best, coalesce(s.attempts, 0) as attempts, s.late,
           ${effectiveDue(sql`e.due_at`, sql`x.due_at`)} as due_at,
           ${attemptsLeft(sql`e.max_attempts`, sql`x.extra_attempts`, sql`coalesce(s.attempts, 0)`)} as attempts_left
    from exercises e
    join lessons l on l.id = e.lesson_id
    left join exercise_exceptions x on x.exercise_id = e.id and x.user_id = ${userId}
    left join exercise_scores s on s.exercise_id = e.id and s.user_id = ${userId}
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

/** SQL for a cell as `defuse` renders it: a leading apostrophe on formula-like text. */
const defused = (cell: string) =>
  `case when left(${cell}, 1) in ('=', '+', '-', '@', E'\\t', E'\\r') then '''' || ${cell} else ${cell} end`;

/** SQL for an RFC 4180 cell: quoted (inner quotes doubled) when it holds , " CR or LF. */
const quoted = (cell: string) =>
  `case when ${cell} ~ '[,"\\r\\n]' then '"' || replace(${cell}, '"', '""') || '"' else ${cell} end`;

const textCell = (cell: string) => quoted(defused(cell));

/**
 * What the JSON gradebook and the CSV export share, $1 = the course: `ex`, its exercises numbered in
 * course order (with `key`, the exercise's JSON object key, made once rather than once per student); `per_student`, one row per student with the exercises they submitted to and, for each,
 * the best graded score (an on-time one before a late one with the same score), whether that one was
 * late, and the attempts used.
 */
const PER_STUDENT = `
  ex as (
    select e.id, '"' || e.id || '":' as key, e.title, e.max_score, e.published_at,
           row_number() over (order by ${EXERCISE_ORDER_SQL}) as n
    from exercises e join lessons l on l.id = e.lesson_id
    where e.course_id = $1
  ),
  -- Kept by triggers on submissions (migration 0009): reading it instead of aggregating the course's
  -- submissions took a 5,000-student CSV from 343 to 197 ms of Postgres (bench, isolation scenario).
  per_exercise as (
    select user_id, exercise_id, best, late, attempts from exercise_scores where course_id = $1
  ),
  -- Students and their per-exercise figures meet in one grouping, not a join: a join planned from
  -- stale statistics (right after a bulk load) became a nested loop that took seconds on a big course.
  per_student as (
    select user_id,
           array_agg(exercise_id) filter (where exercise_id is not null) as exercise_ids,
           array_agg(best) filter (where exercise_id is not null) as bests,
           array_agg(late) filter (where exercise_id is not null) as lates,
           array_agg(attempts) filter (where exercise_id is not null) as attempts
    from (
      select user_id, null::uuid as exercise_id, null::float8 as best, null::boolean as late, null::int as attempts
      from course_members where course_id = $1 and role = 'student'
      union all
      select user_id, exercise_id, best, late, attempts from per_exercise
    ) s
    group by user_id
    having bool_or(exercise_id is null)
  )`;

/**
 * A student's figures for exercise `x` (null where they have none), looked up in per_student's arrays.
 * The exercise's position is found once per cell: `offset 0` keeps the planner from inlining it into
 * each of the three subscripts (a scan of the student's uuid array each). The 5,000-student CSV of the
 * isolation benchmark (`npm run bench -- isolation`, one run before, one after): 226 → 173 ms a request,
 * of which Postgres 200 → 159 ms; run alone in Postgres, the CSV ~190 → ~142 ms and the same course's
 * JSON ~430 → ~320 ms (medians of 5); output byte for byte the same.
 */
const CELL = `
      cross join lateral (select array_position(p.exercise_ids, x.id) as i offset 0) i
      cross join lateral (select p.bests[i.i] as best, p.lates[i.i] as late, p.attempts[i.i] as attempts) s`;

/**
 * A total summed in column order, as a JavaScript loop adds, and rounded as `round2` does (Math.round
 * is floor(x + 0.5)), printed as float8 prints.
 */
const TOTAL = 'sum(s.best order by x.n)';
const round2Text = (total: string) => `(floor(coalesce(${total}, 0) * 100 + 0.5) / 100)::text`;

/**
 * The CSV gradebook rendered by Postgres, one ready line per row: the header first, then one line per
 * student in gradebook order; after each exercise's column, `<title> (late)` with `late` or nothing
 * (v1.1). Numbers print as JavaScript's String(number) does: a float8 prints in
 * its shortest round-trip form (they differ only in exponent notation: below 1e-4 or from 1e15 up).
 */
export const GRADEBOOK_CSV = `
  with ${PER_STUDENT}
  select line from (
    select 0 as k, null as lname, null as lemail, null::uuid as id,
           'name,email'
             || coalesce((select string_agg(',' || ${textCell('title')} || ',' || ${textCell("title || ' (late)'")}, '' order by n) from ex), '')
             || ',total' as line
    union all
    select 1, lower(u.name), lower(u.email), u.id,
           ${textCell('u.name')} || ',' || ${textCell('u.email')} || coalesce(c.cells, '') || ','
             || ${round2Text('c.total')}
    from per_student p
    join users u on u.id = p.user_id
    cross join lateral (
      select string_agg(',' || coalesce(s.best::text, '') || ',' || case when s.best is not null and s.late then 'late' else '' end, ''
                        order by x.n) as cells,
             ${TOTAL} as total
      from ex x ${CELL}
    ) c
  ) t
  order by k, lname, lemail, id`;

/**
 * The JSON gradebook (docs/api.md) rendered by Postgres as text, so a big course costs the API process
 * no parsing, mapping or serializing: an 8,000-student gradebook is ~14 MB of JSON, and built in the
 * event loop it held every other request of the instance for hundreds of ms. The first line opens the
 * document with the exercise columns; then one line per student in gradebook order, each but the first
 * led by a comma; GRADEBOOK_JSON_END closes it. Numbers print as float8 prints (JavaScript's numbers,
 * only in exponent notation below 1e-4 or from 1e15 up); ids are uuids, which need no escaping; text
 * goes through to_json.
 */
export const GRADEBOOK_JSON = `
  with ${PER_STUDENT}
  select case when row_number() over (order by k, lname, lemail, id) > 2 then ',' else '' end || line as line
  from (
    select 0 as k, null as lname, null as lemail, null::uuid as id,
           '{"exercises":['
             || coalesce((select string_agg('{"id":"' || id || '","title":' || to_json(title)::text
                                            || ',"maxScore":' || max_score::text || ',"publishedAt":'
                                            || coalesce('"' || ${isoUtcSql('published_at')} || '"', 'null') || '}',
                                            ',' order by n) from ex), '')
             || '],"rows":[' as line
    union all
    select 1, lower(u.name), lower(u.email), u.id,
           '{"user":{"id":"' || u.id || '","name":' || to_json(u.name)::text || ',"email":'
             || to_json(u.email)::text || '},"scores":{' || coalesce(c.scores, '') || '},"late":{'
             || coalesce(c.late, '') || '},"attempts":{' || coalesce(c.attempts, '') || '},"total":'
             || ${round2Text('c.total')} || '}'
    from per_student p
    join users u on u.id = p.user_id
    cross join lateral (
      select string_agg(x.key || coalesce(s.best::text, 'null'), ',' order by x.n) as scores,
             string_agg(x.key || (s.best is not null and coalesce(s.late, false))::text, ','
                        order by x.n) as late,
             string_agg(x.key || coalesce(s.attempts, 0), ',' order by x.n) as attempts,
             ${TOTAL} as total
      from ex x ${CELL}
    ) c
  ) t
  order by k, lname, lemail, id`;

export const GRADEBOOK_JSON_END = ']}';

const BATCH = 500;

/**
 * A rendered gradebook as chunks of lines, fetched BATCH rows at a time through a server-side cursor so
 * neither Postgres's result nor any single chunk grows with the course. Holds one heavy-pool connection
 * (and its transaction) until the last chunk is read or the consumer stops early.
 */
async function* renderedChunks(
  connect: () => Promise<pg.PoolClient>,
  query: string,
  courseId: string,
  separator: string,
): AsyncGenerator<string> {
  const client = await connect();
  let broken: Error | undefined;
  let open = false;
  try {
    // A cursor is planned for its first 10 % of rows by default (cursor_tuple_fraction), favouring
    // fast-start nested loops; every row is wanted here, so plan for all of them. Floats print in their
    // shortest exact form whatever the server's default. The sort of a big course's rendered lines
    // (~14 MB for 8,000 students) and its aggregates fit in memory instead of temporary files (at most
    // DB_HEAVY_POOL_MAX such statements per instance): the JSON of 8,000 students × 12 exercises with
    // 2 submissions each took 710 ms without this, 560 with it (400 with `key` made once per exercise).
    await client.query(
      "begin read only; set local cursor_tuple_fraction = 1; set local extra_float_digits = 1; set local work_mem = '32MB'",
    );
    open = true;
    await client.query(`declare gradebook no scroll cursor for ${query}`, [courseId]);
    for (;;) {
      const { rows } = await client.query<{ line: string }>(`fetch ${BATCH} from gradebook`);
      if (rows.length > 0) yield rows.map((r) => r.line + separator).join('');
      if (rows.length < BATCH) break;
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

/** The CSV gradebook: chunks of lines, each line ending with a newline. */
export const gradebookCsvChunks = (connect: () => Promise<pg.PoolClient>, courseId: string) =>
  renderedChunks(connect, GRADEBOOK_CSV, courseId, '\n');

/** The JSON gradebook's text in chunks, all but its closing GRADEBOOK_JSON_END. */
export const gradebookJsonChunks = (connect: () => Promise<pg.PoolClient>, courseId: string) =>
  renderedChunks(connect, GRADEBOOK_JSON, courseId, '');
