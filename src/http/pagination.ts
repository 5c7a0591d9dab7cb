import { validationFailed } from '../shared/errors.ts';

export interface Cursor {
  /** The sort key of the last item returned (ISO timestamp, number or string). */
  k: string | number;
  id: string;
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.k, c.id])).toString('base64url');
}

export function decodeCursor(raw: string | undefined): Cursor | null {
  if (raw === undefined || raw === '') return null;
  try {
    const v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (
      Array.isArray(v) &&
      v.length === 2 &&
      (typeof v[0] === 'string' || typeof v[0] === 'number') &&
      typeof v[1] === 'string'
    )
      return { k: v[0], id: v[1] };
  } catch {}
  throw validationFailed('cursor', 'is not a cursor this API returned');
}

/** Fetch limit+1 rows; this turns them into a page and the cursor of its last item. */
export function toPage<T, O>(rows: T[], limit: number, key: (row: T) => Cursor, present: (row: T) => O) {
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  const last = items[items.length - 1];
  return { items: items.map(present), nextCursor: more && last ? encodeCursor(key(last)) : null };
}
