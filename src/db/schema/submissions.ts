import { sql } from 'drizzle-orm';
import {
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import type { TestResult } from '../../contracts/submission.ts';
import { courses } from './courses.ts';
import { exercises } from './exercises.ts';
import { users } from './users.ts';

export const submissionStatus = pgEnum('submission_status', [
  'queued',
  'running',
  'passed',
  'failed',
  'error',
]);

/** One test's result, as stored in `results` (the API's shape: src/contracts/submission.ts). */
export type { TestResult };

export const submissions = pgTable(
  'submissions',
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
    status: submissionStatus('status').notNull().default('queued'),
    // score = round(raw_score × credit, 2): raw_score is the tests' verdict, credit the late policy's (v1.1).
    score: doublePrecision('score'),
    rawScore: doublePrecision('raw_score'),
    credit: doublePrecision('credit').notNull().default(1),
    message: text('message'),
    late: boolean('late').notNull().default(false),
    results: jsonb('results').$type<TestResult[]>().notNull().default(sql`'[]'::jsonb`),
    // Idempotency: same (user, exercise, key) returns the original; body_hash detects a different body.
    idempotencyKey: text('idempotency_key'),
    bodyHash: text('body_hash').notNull(),
    // An infrastructure failure (grader gave up, sandbox missing) does not use up an attempt.
    countsAsAttempt: boolean('counts_as_attempt').notNull().default(true),
    // Bumped each time grading is (re)started; a result is recorded only for the current generation,
    // which is what makes grading exactly-once when a grader dies and the job is retried.
    gradingGeneration: integer('grading_generation').notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    gradedAt: timestamp('graded_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    index('submissions_exercise_user_idx').on(t.exerciseId, t.userId, t.createdAt),
    index('submissions_exercise_created_idx').on(t.exerciseId, t.createdAt),
    index('submissions_course_idx').on(t.courseId),
    // Per-user rate limit on submitting (SUBMISSIONS_PER_MINUTE).
    index('submissions_user_created_idx').on(t.userId, t.createdAt),
    uniqueIndex('submissions_idempotency_idx')
      .on(t.userId, t.exerciseId, t.idempotencyKey)
      .where(sql`${t.idempotencyKey} is not null`),
  ],
);
