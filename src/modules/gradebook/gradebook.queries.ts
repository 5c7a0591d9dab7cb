import { sql } from 'drizzle-orm';
import type { Tx } from '../../db/client.ts';

export interface GradebookExercise {
  id: string;
  title: string;
  maxScore: number;
}

export interface GradebookStudent {
  id: string;
  name: string;
  email: string;
  /** Best graded score per exercise the student has a graded submission for. */
  scores: Record<string, number>;
}

// A submission counts toward the best score once graded: passed, failed, or error (which scores 0).
const GRADED = sql`status in ('passed', 'failed', 'error') and score is not null`;

/** Course order: lessons by position then creation, exercises by creation within a lesson. */
const EXERCISE_ORDER = sql`l.position, l.created_at, e.created_at, e.id`;

/**
 * The whole gradebook in one statement: the exercise columns and one row per student with their best
 * scores aggregated by Postgres (best scores are grouped per user first, then hash-joined to students).
 */
export async function selectGradebook(tx: Tx, courseId: string) {
  const result = await tx.execute<{ exercises: GradebookExercise[]; students: GradebookStudent[] }>(sql`
    with best as (
      select user_id, exercise_id, max(score) as best
      from submissions
      where course_id = ${courseId} and ${GRADED}
      group by user_id, exercise_id
    ),
    per_user as (
      select user_id, json_object_agg(exercise_id, best) as scores from best group by user_id
    )
    select
      (select coalesce(json_agg(json_build_object('id', e.id, 'title', e.title, 'maxScore', e.max_score)
                                order by ${EXERCISE_ORDER}), '[]'::json)
         from exercises e join lessons l on l.id = e.lesson_id
        where e.course_id = ${courseId}) as exercises,
      (select coalesce(json_agg(json_build_object('id', u.id, 'name', u.name, 'email', u.email,
                                                  'scores', coalesce(p.scores, '{}'::json))
                                order by lower(u.name), lower(u.email), u.id), '[]'::json)
         from course_members m
         join users u on u.id = m.user_id
         left join per_user p on p.user_id = m.user_id
        where m.course_id = ${courseId} and m.role = 'student') as students`);
  return result.rows[0]!;
}

export interface ProgressRow {
  id: string;
  title: string;
  maxScore: number;
  bestScore: number | null;
  attempts: number;
}

/** The caller's best score and attempt count for every exercise of the course, one statement. */
export async function selectProgress(tx: Tx, courseId: string, userId: string): Promise<ProgressRow[]> {
  const result = await tx.execute<{
    id: string;
    title: string;
    max_score: number;
    best: number | null;
    attempts: number;
  }>(sql`
    select e.id, e.title, e.max_score, s.best, s.attempts
    from exercises e
    join lessons l on l.id = e.lesson_id
    cross join lateral (
      select max(score) filter (where ${GRADED}) as best,
             count(*) filter (where counts_as_attempt)::int as attempts
      from submissions
      where exercise_id = e.id and user_id = ${userId}
    ) s
    where e.course_id = ${courseId}
    order by ${EXERCISE_ORDER}`);
  return result.rows.map((r) => ({
    id: r.id,
    title: r.title,
    maxScore: Number(r.max_score),
    bestScore: r.best === null ? null : Number(r.best),
    attempts: r.attempts,
  }));
}
