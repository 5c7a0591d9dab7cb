/**
 * The SSE `id:` a stream writes, which the client sends back as Last-Event-ID: not only the highest
 * event id sent, but also the ids below it that had not committed yet ("open") when it was written.
 *
 * Event ids come from a sequence and commit out of order: a transaction can take id 9, another id 10
 * and commit first. A client that got 10 and reconnects with "10" alone would never see 9 if 9 commits
 * after that (a commit held up by a failover, or one whose NOTIFY was lost). With "10;9" the resumed
 * stream also reads 9. Clients treat the value as opaque, as EventSource does.
 */
export interface EventCursor {
  /** Every event with a higher id is still to be sent. */
  after: number;
  /** Ids at or below `after` that had not committed when the cursor was written: still to be sent too. */
  open: number[];
}

/** At most this many open ids ride in a cursor: the newest (the likeliest to commit). */
export const MAX_OPEN_IDS = 64;

const CURSOR = new RegExp(`^(\\d{1,15})(?:;(\\d{1,15}(?:,\\d{1,15}){0,${MAX_OPEN_IDS - 1}}))?$`);

export function formatCursor({ after, open }: EventCursor): string {
  const below = [...new Set(open)].filter((id) => id < after).sort((a, b) => a - b);
  const kept = below.slice(-MAX_OPEN_IDS);
  return kept.length ? `${after};${kept.join(',')}` : String(after);
}

/** A Last-Event-ID header as a cursor; null when it is not one (then the stream starts from now). */
export function parseCursor(header: string | undefined): EventCursor | null {
  const m = header ? CURSOR.exec(header) : null;
  if (!m) return null;
  const after = Number(m[1]);
  const open = m[2] ? [...new Set(m[2].split(',').map(Number))].filter((id) => id < after) : [];
  return { after, open };
}
