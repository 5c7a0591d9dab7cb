import { sql } from 'drizzle-orm';
import {
  bigserial,
  check,
  index,
  integer,
  pgTable,
  smallint,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { courses } from './courses.ts';
import { runs } from './runs.ts';
import { submissions } from './submissions.ts';
import { users } from './users.ts';

/**
 * The grading queue (src/grading/queue.ts). A row is inserted in the same transaction as its
 * submission (or by a regrade) and deleted in the transaction that records the result, so a job
 * exists exactly while its submission waits for a verdict. Claimed with FOR UPDATE SKIP LOCKED.
 */
export const gradingJobs = pgTable(
  'grading_jobs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    // A job grades a submission or a run (exactly one of the two).
    submissionId: uuid('submission_id')
      .unique()
      .references(() => submissions.id, { onDelete: 'cascade' }),
    runId: uuid('run_id')
      .unique()
      .references(() => runs.id, { onDelete: 'cascade' }),
    courseId: uuid('course_id')
      .notNull()
      .references(() => courses.id, { onDelete: 'cascade' }),
    // Whose work this is: a user has at most one job running at a time (queue.ts).
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    // 0 = a new submission, 1 = a regrade: lower goes first.
    priority: smallint('priority').notNull().default(0),
    // Not before this time (backoff after a grader vanished).
    runAt: timestamp('run_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    // Claims so far; past the grader's limit the submission ends `error` (infrastructure).
    attempts: integer('attempts').notNull().default(0),
    // Lease: the claiming grader's Postgres backend pid (its LISTEN connection, so a vanished
    // grader is seen in pg_stat_activity at once) and a heartbeat-renewed deadline.
    lockerPid: integer('locker_pid'),
    // Which server that pid belongs to (its postmaster's start time): after a failover the new primary
    // may run an unrelated backend with the same pid, which must not keep an orphaned job locked.
    lockerStartedAt: timestamp('locker_started_at', { withTimezone: true, mode: 'date' }),
    lockedUntil: timestamp('locked_until', { withTimezone: true, mode: 'date' }),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    index('grading_jobs_priority_run_at_idx').on(t.priority, t.runAt, t.id),
    index('grading_jobs_user_idx').on(t.userId),
    // At most one job of a user is claimed at a time (queue.ts claims fairly; this makes it a rule).
    uniqueIndex('grading_jobs_one_running_per_user').on(t.userId).where(sql`${t.lockedUntil} is not null`),
    check('grading_jobs_one_target', sql`num_nonnulls(${t.submissionId}, ${t.runId}) = 1`),
  ],
);
