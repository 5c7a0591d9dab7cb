import { Type } from '@sinclair/typebox';
import { sql } from 'drizzle-orm';
import type pg from 'pg';
import type { Tx } from '../../db/client.ts';
import { isoUtcSql } from '../../db/iso-text.ts';
import { Col, rowsOf, selectRows } from '../../db/rows.ts';
import { attemptsLeft, effectiveDue, isPublished } from '../exercises/exercise-rules.ts';
import {
  csvRenderer,
  type GradebookColumn,
  type GradebookRenderer,
  type GradebookStudent,
  jsonRenderer,
} from './gradebook.render.ts';

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

/**
 * The gradebook's exercise columns in course order, $1 = the course. Numbers print as float8 prints in
 * its shortest exact form (extra_float_digits, set by the transaction): JavaScript's String(number) but
 * for exponent notation (below 1e-4 or from 1e15 up).
 */
const GRADEBOOK_COLUMNS = `
  select e.id, e.title, e.max_score::text as max_score, ${isoUtcSql('e.published_at')} as published_at
  from exercises e join lessons l on l.id = e.lesson_id
  where e.course_id = $1
  order by ${EXERCISE_ORDER_SQL}`;

/**
 * The course's students in gradebook order (name, email, id; case-insensitive) with their figures as
 * compact text (GradebookStudent.cells), $1 = the course. Postgres only gathers: the gradebook's text is
 * written by the API process (gradebook.render.ts), the tier that scales out. Rendering every cell in SQL
 * cost Postgres ~200 ms for 5,000 students × 20 exercises; gathering costs it ~80, writing the text ~45
 * in Node, a batch of GRADEBOOK_BATCH students at a time (docs/perf/gradebook.md).
 */
const GRADEBOOK_STUDENTS = `
  with ex as (
    select e.id, row_number() over (order by ${EXERCISE_ORDER_SQL}) as n
    from exercises e join lessons l on l.id = e.lesson_id
    where e.course_id = $1
  ),
  -- Students and their per-exercise figures (kept by triggers on submissions, migration 0009) meet in
  -- one grouping, not a join: a join planned from stale statistics (right after a bulk load) became a
  -- nested loop that took seconds on a big course.
  per_student as (
    select user_id,
           string_agg(n || ',' || coalesce(best::text, '') || ','
                        || case when best is not null and late then 'l' else '' end || ',' || attempts, ';')
             filter (where n is not null) as cells
    from (
      select user_id, null::bigint as n, null::float8 as best, null::boolean as late, null::int as attempts
      from course_members where course_id = $1 and role = 'student'
      union all
      select s.user_id, x.n, s.best, s.late, s.attempts
      from exercise_scores s join ex x on x.id = s.exercise_id
      where s.course_id = $1
    ) s
    group by user_id
    having bool_or(n is null)
  )
  select u.id, u.name, u.email, p.cells
  from per_student p join users u on u.id = p.user_id
  order by lower(u.name), lower(u.email), u.id`;

/**
 * Students per FETCH. 500 made the API's young-generation collections promote megabytes of row text
 * while big gradebooks were sent (long pauses for the instance's other requests); 100 cut what they
 * promote and the light requests' p99 beside them, for ~20 % more time per gradebook and 5× the FETCHes
 * (docs/perf/isolation.md).
 */
export const GRADEBOOK_BATCH = 100;

/**
 * A gradebook as chunks of text: its columns, then its students fetched GRADEBOOK_BATCH at a time through a
 * server-side cursor so neither Postgres's result nor any single chunk grows with the course. Holds one
 * heavy-pool connection (and its transaction) until the last chunk is read or the consumer stops early.
 */
async function* renderedChunks(
  connect: () => Promise<pg.PoolClient>,
  courseId: string,
  renderer: (columns: GradebookColumn[]) => GradebookRenderer,
): AsyncGenerator<Buffer> {
  const client = await connect();
  let broken: Error | undefined;
  let open = false;
  try {
    // One snapshot for the columns and the students (repeatable read), so every cell has its column.
    // A cursor is planned for its first 10 % of rows by default (cursor_tuple_fraction), favouring
    // fast-start nested loops; every row is wanted here, so plan for all of them. Floats print in their
    // shortest exact form whatever the server's default. The grouping of a big course's figures fits in
    // memory instead of temporary files (at most DB_HEAVY_POOL_MAX such statements per instance).
    await client.query(
      "begin isolation level repeatable read read only; set local cursor_tuple_fraction = 1; set local extra_float_digits = 1; set local work_mem = '32MB'",
    );
    open = true;
    const { rows: columns } = await client.query<GradebookColumn>(GRADEBOOK_COLUMNS, [courseId]);
    const render = renderer(columns);
    let opening = render.opening();
    await client.query(`declare gradebook no scroll cursor for ${GRADEBOOK_STUDENTS}`, [courseId]);
    for (;;) {
      const { rows } = await client.query<GradebookStudent>(`fetch ${GRADEBOOK_BATCH} from gradebook`);
      // The opening goes with the first batch: a failure before it still gets the API error shape.
      if (rows.length > 0 || opening !== '') yield render.students(rows, opening);
      opening = '';
      if (rows.length < GRADEBOOK_BATCH) break;
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
  renderedChunks(connect, courseId, csvRenderer);

/** The JSON gradebook's text in chunks, all but its closing GRADEBOOK_JSON_END. */
export const gradebookJsonChunks = (connect: () => Promise<pg.PoolClient>, courseId: string) =>
  renderedChunks(connect, courseId, jsonRenderer);
