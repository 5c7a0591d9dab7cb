import { type SQL, sql } from 'drizzle-orm';

/*
 * The v1.1 rules as SQL, in one place, for the queries that need them (exercise and lesson pages,
 * submitting, progress, the gradebook, recomputing credit). Each takes the SQL of the columns it
 * reads, so it fits any query's aliases.
 */

/** A lesson or exercise is visible to students once published_at has passed (null = draft). */
export const isPublished = (publishedAt: SQL) => sql<boolean>`coalesce(${publishedAt} <= now(), false)`;

/** The student's due date: their exception's, else the exercise's. */
export const effectiveDue = (exerciseDue: SQL, exceptionDue: SQL) =>
  sql`coalesce(${exceptionDue}, ${exerciseDue})`;

/** Attempts the student may use: the exercise's maximum plus their extra ones; null = no limit. */
export const allowedAttempts = (maxAttempts: SQL, extraAttempts: SQL) =>
  sql<number | null>`(${maxAttempts} + coalesce(${extraAttempts}, 0))`;

/** Attempts left after `used`, never negative; null = no limit (greatest() would skip the null). */
export const attemptsLeft = (maxAttempts: SQL, extraAttempts: SQL, used: SQL) =>
  sql<number | null>`case when ${maxAttempts} is null then null
    else greatest(0, ${allowedAttempts(maxAttempts, extraAttempts)} - ${used})::int end`;

/**
 * The credit of a submission made at `at` (v1.1 late policy): 1 up to the effective due date; after
 * it, the credit of the first policy entry whose `until` has not passed, 0 after the last; an empty
 * policy keeps full credit. A student's own due date moves the policy's dates with it (an extension
 * of two days makes "half credit for two days after the deadline" two days later too).
 */
export const creditAt = (at: SQL, exerciseDue: SQL, due: SQL, policy: SQL) => sql<number>`(
  case
    when ${due} is null or ${at} <= ${due} then 1::float8
    else coalesce(
      (select (p->>'credit')::float8
         from jsonb_array_elements(${policy}) p
        where ${at} <= (p->>'until')::timestamptz + (${due} - coalesce(${exerciseDue}, ${due}))
        order by (p->>'until')::timestamptz
        limit 1),
      case when jsonb_array_length(${policy}) = 0 then 1::float8 else 0::float8 end)
  end)`;

/** A score with its credit applied, rounded to 2 decimals like every score. */
export const credited = (rawScore: SQL, credit: SQL) =>
  sql<number | null>`round((${rawScore} * ${credit})::numeric, 2)::float8`;
