/*
 * Postgres text (and jsonb) cannot hold U+0000, nor a lone UTF-16 surrogate. A request carrying one
 * would fail in the database as a 500; it is refused up front as a 400 naming the field instead.
 */

function unstorable(s: string): boolean {
  return s.includes('\u0000') || !s.isWellFormed();
}

/** The dotted path of the first string (or object key) in `value` that Postgres cannot store, or null. */
export function firstUnstorableField(value: unknown, path = ''): string | null {
  if (typeof value === 'string') return unstorable(value) ? path || 'body' : null;
  if (value === null || typeof value !== 'object') return null;
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const found = firstUnstorableField(v, path ? `${path}.${i}` : String(i));
      if (found) return found;
    }
    return null;
  }
  for (const [k, v] of Object.entries(value)) {
    const at = path ? `${path}.${k}` : k;
    if (unstorable(k)) return at;
    const found = firstUnstorableField(v, at);
    if (found) return found;
  }
  return null;
}
