import { sql } from 'drizzle-orm';
import { boolean, index, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { courses } from './courses.ts';
import { exercises } from './exercises.ts';
import { submissionStatus, type TestResult } from './submissions.ts';
import { users } from './users.ts';

/**
 * Try before submitting (v1.1 runs): graded like a submission by the same graders, but no attempt
 * is used and nothing reaches the gradebook. Kept a day (graders prune older ones).
 */
export const runs = pgTable(
  'runs',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    courseId: uuid('course_id')
      .notNull()
      .references(() => courses.id, { onDelete: 'cascade' }),
    exerciseId: uuid('exercise_id')
      .notNull()
      .references(() => exercises.id, { onDelete: 'cascade' }),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    code: text('code').notNull(),
    // Set: the program runs once on this input (no tests).
    stdin: text('stdin'),
    // Staff runs include the hidden tests.
    allTests: boolean('all_tests').notNull().default(false),
    status: submissionStatus('status').notNull().default('queued'),
    message: text('message'),
    results: jsonb('results').$type<TestResult[]>().notNull().default(sql`'[]'::jsonb`),
    // What a stdin run printed.
    output: text('output'),
    gradingGeneration: integer('grading_generation').notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    gradedAt: timestamp('graded_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    index('runs_user_created_idx').on(t.userId, t.createdAt),
    index('runs_created_idx').on(t.createdAt),
  ],
);
