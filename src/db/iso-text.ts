import { sql } from 'drizzle-orm';

/**
 * SQL text of a timestamptz rendered as the API writes times (Date#toISOString: UTC, milliseconds, Z;
 * null stays null), for statements that build JSON or text in Postgres. `column` is SQL text.
 */
export const isoUtcSql = (column: string) =>
  `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** The same as a Drizzle SQL fragment. */
export const isoUtc = (column: string) => sql.raw(isoUtcSql(column));
