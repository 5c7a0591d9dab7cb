import { Type } from '@sinclair/typebox';
import { sql } from 'drizzle-orm';
import { type LabEvent, toLabEvent } from '../contracts/events.ts';
import type { Tx } from '../db/client.ts';
import { Col, rowsOf, selectRows } from '../db/rows.ts';
import type { EventCursor } from './event-cursor.ts';

export type EventRow = {
  id: number;
  userId: string;
  /** Null when the stored type and payload do not match src/contracts/events.ts. */
  event: LabEvent | null;
  /** The stored type, for the log when `event` is null. */
  type: string;
  /** Course staff (instructor, ta) at fetch time: they receive the event unmasked. */
  staffIds: string[];
  /** The exercise's tests visible to students at fetch time (masking follows the current flags). */
  visibleTests: string[];
};

// The current visible test names of the exercise an event is about (none for other payloads).
const VISIBLE_TESTS = sql`coalesce((
  select array_agg(t->>'name') from exercises x, jsonb_array_elements(x.tests) t
   where x.id = (e.payload->'submission'->>'exerciseId')::uuid
     and not coalesce((t->>'hidden')::boolean, false)), '{}')`;

/** Events with their course's staff, in one round trip; `where` and `tail` narrow and order them. */
const eventRows = rowsOf(
  Type.Object({
    id: Col.bigint,
    userId: Col.uuid,
    type: Col.text,
    payload: Col.json,
    staffIds: Col.uuids,
    visibleTests: Col.texts,
  }),
  'events',
);

async function selectEvents(tx: Tx, where: ReturnType<typeof sql>, tail: ReturnType<typeof sql>) {
  const rows = await selectRows(
    tx,
    eventRows,
    sql`
    select e.id, e.user_id as "userId", e.type, e.payload,
           coalesce((select array_agg(m.user_id) from course_members m
                      where m.course_id = e.course_id and m.role in ('instructor', 'ta')), '{}') as "staffIds",
           ${VISIBLE_TESTS} as "visibleTests"
      from events e
     where ${where}
     order by e.id ${tail}`,
  );
  return rows.map(({ payload, ...r }) => ({ ...r, id: Number(r.id), event: toLabEvent(r.type, payload) }));
}

/** Events by id, for the ids a NOTIFY announced. */
export function selectEventsByIds(tx: Tx, ids: number[]): Promise<EventRow[]> {
  // Through lab_event_ids (migration 0011), whose one-row estimate lets Postgres keep a generic plan.
  return selectEvents(tx, sql`e.id in (select lab_event_ids(${`{${ids.join(',')}}`}::bigint[]))`, sql``);
}

/** Events after `afterId` (exclusive) in id order, for catching up after the listener reconnects. */
export function selectEventsAfter(tx: Tx, afterId: number, limit: number): Promise<EventRow[]> {
  return selectEvents(tx, sql`e.id > ${afterId}`, sql`limit ${limit}`);
}

const visibleEventRows = rowsOf(
  Type.Object({
    id: Col.bigint,
    type: Col.text,
    payload: Col.json,
    staff: Col.bool,
    visibleTests: Col.texts,
  }),
  'visible events',
);

export type VisibleEvent = {
  id: number;
  /** Null when the stored type and payload do not match src/contracts/events.ts. */
  event: LabEvent | null;
  type: string;
  staff: boolean;
  visibleTests: string[];
};

/**
 * What a user may see after a Last-Event-ID cursor (event-cursor.ts): events above its `after` and those
 * of its open ids that have committed since — their own events and the submissions of courses they
 * teach (a run is its author's alone).
 * Bounded: a client far behind gets the oldest `limit` and continues from there on its next reconnect.
 */
export async function selectVisibleEventsAfter(
  tx: Tx,
  userId: string,
  { after, open }: EventCursor,
  limit: number,
): Promise<VisibleEvent[]> {
  const rows = await selectRows(
    tx,
    visibleEventRows,
    sql`
    with taught as (
      select course_id from course_members where user_id = ${userId} and role in ('instructor', 'ta')
    )
    select e.id, e.type, e.payload, e.course_id in (select course_id from taught) as staff,
           ${VISIBLE_TESTS} as "visibleTests"
      from events e
     where (e.id > ${after} or e.id = any(${`{${open.join(',')}}`}::bigint[]))
       and (e.user_id = ${userId}
            or (e.type <> 'run.updated' and e.course_id in (select course_id from taught)))
     order by e.id
     limit ${limit}`,
  );
  return rows.map(({ payload, ...r }) => ({ ...r, id: Number(r.id), event: toLabEvent(r.type, payload) }));
}

const maxIdRows = rowsOf(Type.Object({ id: Col.nullable(Col.bigint) }), 'max event id');

export async function selectMaxEventId(tx: Tx): Promise<number> {
  const [row] = await selectRows(tx, maxIdRows, sql`select max(id) as id from events`);
  return Number(row?.id ?? 0);
}

const idRows = rowsOf(Type.Object({ id: Col.uuid }), 'live credentials');

/** Which of these session and token ids still authenticate (sessions also expire). */
export async function selectLiveCredentials(
  tx: Tx,
  sessionIds: string[],
  tokenIds: string[],
): Promise<Set<string>> {
  const rows = await selectRows(
    tx,
    idRows,
    sql`
    select id::text from sessions where id = any(${`{${sessionIds.join(',')}}`}::uuid[]) and expires_at > now()
    union all
    select id::text from api_tokens where id = any(${`{${tokenIds.join(',')}}`}::uuid[])`,
  );
  return new Set(rows.map((r) => r.id));
}
