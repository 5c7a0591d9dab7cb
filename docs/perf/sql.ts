// Lab's lesson_page statement (src/modules/lessons/lesson.queries.ts) written out for the baselines.
export const LESSON_PAGE = `select course_members.role, coalesce(lessons.published_at <= now(), false) as visible,
  json_build_object(
    'lesson', json_build_object(
      'id', lessons.id, 'courseId', lessons.course_id, 'title', lessons.title,
      'body', lessons.body, 'position', lessons.position,
      'publishedAt', to_char(lessons.published_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
    'exercises', (
      select coalesce(json_agg(json_build_object(
        'id', e.id, 'title', e.title, 'language', e.language, 'maxScore', e.max_score,
        'dueAt', to_char(e.due_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'publishedAt', to_char(e.published_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
      ) order by e.created_at, e.id), '[]'::json)
      from exercises e
      where e.lesson_id = lessons.id
        and (course_members.role in ('instructor', 'ta') or coalesce(e.published_at <= now(), false)))
  )::text as body
from lessons
left join course_members on course_members.course_id = lessons.course_id and course_members.user_id = $2
where lessons.id = $1`;

// What Lab runs since (the second version) is the baselines' cached-caller statement.
export { LESSON_PAGE_CACHED_CALLER as LESSON_PAGE_HYBRID } from '../../bench/baseline/sql.ts';
