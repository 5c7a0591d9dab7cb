// The SQL of GET /api/v1/lessons/:id for the baselines, written out by hand (no Drizzle): a caller lookup
// then Lab's lesson statement (src/modules/lessons/lesson.queries.ts `lesson_page`), or the same work as
// one statement (token → user → membership → lesson), which is what the baselines run by default: the
// ceiling a one-statement lesson read (issue 13) is held to. Every form returns the columns Lab's
// statement returns, so a baseline answers with the very body Lab answers (the read scenario checks).

export const CALLER_BY_TOKEN = `select users.id, users.email, users.name, users.created_at, api_tokens.id as credential_id
from api_tokens inner join users on users.id = api_tokens.user_id
where api_tokens.token_hash = $1`;

/**
 * The lesson's exercise list as JSON, built by Postgres (what the caller may see: staff all, students the
 * published ones), as Lab's `lesson_page` builds it.
 */
export const EXERCISE_LIST_JSON = `(select coalesce(json_agg(json_build_object(
      'id', e.id, 'title', e.title, 'language', e.language, 'maxScore', e.max_score,
      'dueAt', to_char(e.due_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'publishedAt', to_char(e.published_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    ) order by e.created_at, e.id), '[]'::json)
    from exercises e
    where e.lesson_id = lessons.id
      and (course_members.role in ('instructor', 'ta') or coalesce(e.published_at <= now(), false)))`;

/** What every baseline statement returns about the lesson: Lab's `lesson_page` columns. */
const LESSON_COLUMNS = `course_members.role, coalesce(lessons.published_at <= now(), false) as visible,
  lessons.id, lessons.course_id, lessons.title, lessons.body, lessons.position,
  to_char(lessons.published_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as published_at,
  ${EXERCISE_LIST_JSON}::text as exercises`;

/**
 * Lab's lesson read once its caller is known (src/modules/lessons/lesson.queries.ts `lesson_page`): the
 * lesson's columns as they are (Node writes them into the body) and only the exercise list as JSON text
 * built by Postgres. $1 the lesson, $2 the caller's user id.
 */
export const LESSON_PAGE_CACHED_CALLER = `select ${LESSON_COLUMNS}
from lessons
left join course_members on course_members.course_id = lessons.course_id and course_members.user_id = $2
where lessons.id = $1`;

/**
 * Caller and lesson in one statement: $1 the token's SHA-256 (hex), $2 the lesson; the same columns as
 * LESSON_PAGE_CACHED_CALLER. No row: unknown token; a row with no role: not a member (or no such lesson).
 */
export const LESSON_READ_ONE = `select ${LESSON_COLUMNS}
from api_tokens
join users on users.id = api_tokens.user_id
left join lessons on lessons.id = $2
left join course_members on course_members.course_id = lessons.course_id and course_members.user_id = users.id
where api_tokens.token_hash = $1`;

/** Statements per lesson read in the baselines: 1 (default) or 2 (Lab's pair); BARE_STATEMENTS. */
export function bareStatements(): 1 | 2 {
  return process.env.BARE_STATEMENTS === '2' ? 2 : 1;
}

/** The same statement(s) as a pgbench custom script. */
export function pgbenchScript(
  tokenHash: string,
  lessonId: string,
  userId: string,
  statements: 1 | 2,
): string {
  // pgbench reads `:name` as one of its variables: the time format's colons become quoted literals
  // (HH24":"MI means what HH24:MI means to to_char).
  const oneLine = (s: string) => s.replace(/\s+/g, ' ').replaceAll('HH24:MI:SS', 'HH24":"MI":"SS').trim();
  if (statements === 1)
    return `${oneLine(LESSON_READ_ONE).replace('$1', `'${tokenHash}'`).replace('$2', `'${lessonId}'`)};\n`;
  return [
    `${oneLine(CALLER_BY_TOKEN).replace('$1', `'${tokenHash}'`)};`,
    `${oneLine(LESSON_PAGE_CACHED_CALLER).replace('$1', `'${lessonId}'`).replace('$2', `'${userId}'`)};`,
    '',
  ].join('\n');
}
