import { index, integer, pgTable, primaryKey, timestamp, uuid } from 'drizzle-orm/pg-core';
import { courses } from './courses.ts';
import { exercises } from './exercises.ts';
import { users } from './users.ts';

// A student's own due date and extra attempts for one exercise (v1.1 exceptions).
export const exerciseExceptions = pgTable(
  'exercise_exceptions',
  {
    exerciseId: uuid('exercise_id')
      .notNull()
      .references(() => exercises.id, { onDelete: 'cascade' }),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    courseId: uuid('course_id')
      .notNull()
      .references(() => courses.id, { onDelete: 'cascade' }),
    // Null: the exercise's own due date applies.
    dueAt: timestamp('due_at', { withTimezone: true, mode: 'date' }),
    extraAttempts: integer('extra_attempts').notNull().default(0),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.exerciseId, t.userId] }),
    index('exercise_exceptions_course_idx').on(t.courseId),
  ],
);
