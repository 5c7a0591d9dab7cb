import { type SQL, sql } from 'drizzle-orm';
import type { AnyPgColumn } from 'drizzle-orm/pg-core';

/**
 * The one cursor of every list (GET /courses, /courses/:id/members, /exercises/:id/submissions): the
 * position after the last item, in an order by (timestamp column, uuid column). `at` is the timestamp
 * as Postgres prints it (`::text`), which keeps its microseconds (a JS Date would drop them).
 */
export interface Cursor {
  at: string;
  id: string;
}

/** A page of `limit` rows is fetched as limit + 1: the extra row says there is a next page. */
export interface PageArgs {
  limit: number;
  after: Cursor | null;
}

/** The sort key of a row, selected with it, to build the next cursor from. */
export const cursorKey = (at: AnyPgColumn) => sql<string>`${at}::text`;

/** Rows strictly after the cursor in the order (at, id) ascending (`asc`) or descending (`desc`). */
export function afterCursor(
  at: AnyPgColumn,
  id: AnyPgColumn,
  cursor: Cursor | null,
  dir: 'asc' | 'desc',
): SQL | undefined {
  if (!cursor) return undefined;
  return dir === 'asc'
    ? sql`(${at}, ${id}) > (${cursor.at}::timestamptz, ${cursor.id}::uuid)`
    : sql`(${at}, ${id}) < (${cursor.at}::timestamptz, ${cursor.id}::uuid)`;
}
