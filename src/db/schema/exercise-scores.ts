import { boolean, doublePrecision, index, integer, pgTable, primaryKey, uuid } from 'drizzle-orm/pg-core';

/**
 * Each student's figures for one exercise, as the gradebook shows them: the best graded score (an
 * on-time one before a late one with the same score), whether that one was late, and the attempts used.
 * Kept by triggers on `submissions` (migration 0009), in the transaction that changes a submission, so
 * a gradebook reads one row per student and exercise instead of aggregating every submission of the
 * course. No foreign keys: the triggers delete a row with the pair's last submission (a cascade from an
 * exercise, a user or a course included), and a key check on every write would cost each submission.
 */
export const exerciseScores = pgTable(
  'exercise_scores',
  {
    exerciseId: uuid('exercise_id').notNull(),
    userId: uuid('user_id').notNull(),
    courseId: uuid('course_id').notNull(),
    best: doublePrecision('best'),
    late: boolean('late'),
    attempts: integer('attempts').notNull().default(0),
  },
  (t) => [
    primaryKey({ columns: [t.exerciseId, t.userId] }),
    index('exercise_scores_course_idx').on(t.courseId),
  ],
);
