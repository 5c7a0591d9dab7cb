import type { Cursor, PageArgs } from '../db/paging.ts';
import { validationFailed } from '../shared/errors.ts';
import { isUuid } from './schemas.ts';

/*
 * The wire form of the cursor (docs/api.md: `?cursor=` is opaque): base64url of the JSON array
 * [timestamp, id]. Cursors issued before the two list formats were merged carried the courses' and
 * members' timestamp as microseconds since the epoch (a number); they are still accepted.
 */

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.at, c.id])).toString('base64url');
}

const notOurs = () => validationFailed('cursor', 'is not a cursor this API returned');

/** `?limit=&cursor=` as page arguments; a cursor this API did not issue is 400 validation_failed. */
export function parsePage(query: { limit: number; cursor?: string }): PageArgs {
  return { limit: query.limit, after: parseCursor(query.cursor) };
}

export function parseCursor(raw: string | undefined): Cursor | null {
  if (raw === undefined || raw === '') return null;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw notOurs();
  }
  if (!Array.isArray(v) || v.length !== 2) throw notOurs();
  const [k, id] = v as [unknown, unknown];
  if (typeof id !== 'string' || !isUuid(id)) throw notOurs();
  const at = typeof k === 'number' ? fromMicros(k) : k;
  if (!isTimestampKey(at)) throw notOurs();
  return { at, id };
}

/** Fetch limit+1 rows; this turns them into a page and the cursor of its last item. */
export function toPage<T, O>(rows: T[], limit: number, key: (row: T) => Cursor, present: (row: T) => O) {
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  const last = items[items.length - 1];
  return { items: items.map(present), nextCursor: more && last ? encodeCursor(key(last)) : null };
}

/** Microseconds since the epoch (the courses' and members' cursors before) as an ISO timestamp. */
function fromMicros(us: number): string | null {
  if (!Number.isSafeInteger(us) || us < 0) return null;
  // Safe integers of microseconds end in the year 2255: toISOString's four-digit years.
  const ms = Math.floor(us / 1000);
  return new Date(ms).toISOString().replace('Z', `${String(us - ms * 1000).padStart(3, '0')}Z`);
}

/**
 * A timestamp as Postgres prints it (`::text`), with a real calendar date: Date.parse would also pass
 * "1" or "123", and Postgres refuses those (and 2021-02-31) with an error that is not the caller's 400.
 */
const PG_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?([+-]\d{2}(:\d{2}){0,2}|Z)$/;

export function isTimestampKey(k: unknown): k is string {
  const m = typeof k === 'string' ? PG_TIMESTAMP.exec(k) : null;
  if (!m) return false;
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, sec));
  t.setUTCFullYear(y);
  return (
    y >= 1 &&
    t.getUTCMonth() === mo - 1 &&
    t.getUTCDate() === d &&
    t.getUTCHours() === h &&
    t.getUTCMinutes() === mi &&
    t.getUTCSeconds() === sec
  );
}
