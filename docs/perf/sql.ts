import { EXERCISE_LIST_JSON } from '../../bench/baseline/sql.ts';

// The first version of Lab's lesson_page statement (measured and rejected: lesson-read-profile.md): the
// whole response body built by Postgres. Kept for docs/perf/lesson-sql.ts's comparison.
export const LESSON_PAGE = `select course_members.role, coalesce(lessons.published_at <= now(), false) as visible,
  json_build_object(
    'lesson', json_build_object(
      'id', lessons.id, 'courseId', lessons.course_id, 'title', lessons.title,
      'body', lessons.body, 'position', lessons.position,
      'publishedAt', to_char(lessons.published_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
    'exercises', ${EXERCISE_LIST_JSON}
  )::text as body
from lessons
left join course_members on course_members.course_id = lessons.course_id and course_members.user_id = $2
where lessons.id = $1`;

// What Lab runs since (the second version) is the baselines' cached-caller statement.
export { LESSON_PAGE_CACHED_CALLER as LESSON_PAGE_HYBRID } from '../../bench/baseline/sql.ts';
