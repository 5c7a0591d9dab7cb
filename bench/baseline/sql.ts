// The SQL that Lab's GET /api/v1/lessons/:id runs (src/modules/auth/auth.queries.ts `caller_by_token`
// and src/modules/lessons/lesson.queries.ts `lesson_detail`), written out by hand so the baselines
// run the same two statements without Drizzle.

export const CALLER_BY_TOKEN = `select users.id, users.email, users.name, users.created_at, api_tokens.id as credential_id
from api_tokens inner join users on users.id = api_tokens.user_id
where api_tokens.token_hash = $1`;

export const LESSON_DETAIL = `select lessons.id, lessons.course_id, lessons.title, lessons.body, lessons.position, course_members.role,
  (select coalesce(json_agg(json_build_object(
     'id', e.id, 'title', e.title, 'language', e.language, 'maxScore', e.max_score, 'dueAt', e.due_at
   ) order by e.created_at, e.id), '[]'::json)
   from exercises e where e.lesson_id = lessons.id) as exercises
from lessons
left join course_members on course_members.course_id = lessons.course_id and course_members.user_id = $2
where lessons.id = $1`;

/** The same two statements as a pgbench custom script (pgbench substitutes :variables). */
export function pgbenchScript(tokenHash: string, lessonId: string, userId: string): string {
  const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();
  return [
    `${oneLine(CALLER_BY_TOKEN).replace('$1', `'${tokenHash}'`)};`,
    `${oneLine(LESSON_DETAIL).replace('$1', `'${lessonId}'`).replace('$2', `'${userId}'`)};`,
    '',
  ].join('\n');
}
