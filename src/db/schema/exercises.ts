import { sql } from 'drizzle-orm';
import {
  doublePrecision,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';
import { courses } from './courses.ts';
import { lessons } from './lessons.ts';

export const exerciseLanguage = pgEnum('exercise_language', ['javascript', 'python']);

/**
 * A test as stored. A call test's arguments and expected value are JSON *text*, as the instructor
 * wrote them (minified): integers of any size and object key order survive (src/lib/json-text.ts).
 */
export type ExerciseTest =
  | {
      name: string;
      kind: 'call';
      argsJson: string;
      expectedJson: string;
      hidden: boolean;
      points: number;
      /** Numbers compare equal within tolerance × max(1, |expected|); 0 = exactly. */
      tolerance: number;
    }
  | { name: string; kind: 'io'; stdin: string; stdout: string; hidden: boolean; points: number };

export interface ExerciseLimits {
  timeMs: number;
  memoryMb: number;
}

/** v1.1 late policy: after the (effective) due date, the credit of the first entry not yet passed; 0 after the last. */
export type LatePolicy = Array<{ until: string; credit: number }>;

export const exercises = pgTable(
  'exercises',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    // course_id is denormalised onto every course-owned row: it is the sharding key (DESIGN.md).
    courseId: uuid('course_id')
      .notNull()
      .references(() => courses.id, { onDelete: 'cascade' }),
    lessonId: uuid('lesson_id')
      .notNull()
      .references(() => lessons.id, { onDelete: 'cascade' }),
    title: text('title').notNull(),
    prompt: text('prompt').notNull().default(''),
    language: exerciseLanguage('language').notNull(),
    entrypoint: text('entrypoint'),
    starterCode: text('starter_code').notNull().default(''),
    tests: jsonb('tests').$type<ExerciseTest[]>().notNull(),
    maxScore: doublePrecision('max_score').notNull(),
    dueAt: timestamp('due_at', { withTimezone: true, mode: 'date' }),
    maxAttempts: integer('max_attempts'),
    limits: jsonb('limits').$type<ExerciseLimits>().notNull(),
    // Staff only: checked against the tests by the editor (through /runs).
    referenceSolution: text('reference_solution'),
    // Null or in the future: not visible to students (v1.1).
    publishedAt: timestamp('published_at', { withTimezone: true, mode: 'date' }).defaultNow(),
    latePolicy: jsonb('late_policy').$type<LatePolicy>().notNull().default(sql`'[]'::jsonb`),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    index('exercises_lesson_idx').on(t.lessonId, t.createdAt),
    index('exercises_course_idx').on(t.courseId),
  ],
);
