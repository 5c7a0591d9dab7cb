import { sql } from 'drizzle-orm';
import { index, pgEnum, pgTable, primaryKey, timestamp, uuid } from 'drizzle-orm/pg-core';
import { courses } from './courses.ts';
import { users } from './users.ts';

export const courseRole = pgEnum('course_role', ['instructor', 'ta', 'student']);

export const courseMembers = pgTable(
  'course_members',
  {
    courseId: uuid('course_id')
      .notNull()
      .references(() => courses.id, { onDelete: 'cascade' }),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    role: courseRole('role').notNull(),
    joinedAt: timestamp('joined_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.courseId, t.userId] }),
    index('course_members_user_idx').on(t.userId),
    // A course's staff without reading its students: every event delivered is sent unmasked to them
    // (realtime/events.queries.ts); scanning a 2,500-student course per event cost 7.6 ms a batch.
    index('course_members_staff_idx').on(t.courseId, t.userId).where(sql`${t.role} in ('instructor', 'ta')`),
  ],
);
