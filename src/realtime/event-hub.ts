import type { ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import pRetry from 'p-retry';
import { CREDENTIALS_CHANNEL, EVENTS_CHANNEL } from '../contracts/channels.ts';
import type { LabEvent } from '../contracts/events.ts';
import { maskSubmission } from '../contracts/submission.ts';
import type { Db } from '../db/client.ts';
import { type Listener, type ListenerTap, startListener } from '../db/listener.ts';
import { type EventCursor, formatCursor } from './event-cursor.ts';
import * as q from './events.queries.ts';

/** Tells a client how long to wait before reconnecting (EventSource honours `retry:`). */
export const RECONNECT_MS = 1000;
const CATCH_UP_LIMIT = 1000;
/**
 * Ids skipped while advancing are remembered this long, at most this many: an event whose transaction
 * took its id before a later one's but committed after it — a commit held up by a failover, or committed
 * just as the old primary went down, whose NOTIFY no listener received — is still read on catch-up,
 * though catch-up otherwise reads only ids above the highest handled.
 */
const HOLE_MS = 60_000;
const MAX_HOLES = 2000;
// A client this far behind on reading is dropped rather than buffered without bound; it resumes
// with Last-Event-ID.
const MAX_BUFFERED_BYTES = 1 << 20;
// Enough to cover a backlog (BACKLOG_LIMIT) and the live events that raced it.
const SENT_IDS_KEPT = 2048;

export interface Credential {
  via: 'session' | 'token';
  id: string;
}

export interface Delivery {
  id: number;
  event: LabEvent;
  /** The recipient is course staff: hidden-test details stay visible. */
  staff: boolean;
  /** The exercise's currently visible tests, for masking a student's copy. */
  visibleTests: string[];
}

function presentPayload({ event, staff, visibleTests }: Delivery): LabEvent['payload'] {
  if (event.type !== 'submission.updated') return event.payload;
  return { submission: maskSubmission(event.payload.submission, { staff, visibleTests }) };
}

/**
 * The events that can be delivered: one whose stored payload does not match its contract is logged
 * and skipped (it could not be masked safely).
 */
export function deliverable<T extends { id: number; type: string; event: LabEvent | null }>(
  events: T[],
  log: FastifyBaseLogger,
): (T & { event: LabEvent })[] {
  const ok: (T & { event: LabEvent })[] = [];
  for (const e of events) {
    if (e.event) ok.push({ ...e, event: e.event });
    else log.error({ eventId: e.id, type: e.type }, 'event does not match src/contracts/events.ts; skipped');
  }
  return ok;
}

/** One open GET /events response, written directly on the socket. */
export class SseStream {
  private heartbeat: NodeJS.Timeout;
  /** While the Last-Event-ID backlog is being sent, live events wait here. */
  private held: Delivery[] | null = null;
  /**
   * Ids recently written, so an event is never sent twice: a NOTIFY handled after the backlog was
   * read would repeat what the backlog had. Not a high-water mark: ids commit out of order, and a
   * lower id arriving after a higher one is still new.
   */
  private readonly sent = new Set<number>();
  /** The highest event id sent (or resumed from): the cursor's `after`. */
  private top = 0;
  /**
   * Ids the client's Last-Event-ID listed as not committed yet and not sent since, with when they were
   * received: they stay in this stream's cursor (HOLE_MS) so a later resume still asks for them.
   */
  private readonly carried = new Map<number, number>();
  closed = false;

  constructor(
    readonly raw: ServerResponse,
    readonly userId: string,
    heartbeatMs: number,
    private onClose: (s: SseStream) => void,
    /** The session or token the stream was opened with; the stream ends when it is revoked or expires. */
    readonly credential?: Credential,
  ) {
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx would otherwise buffer the stream.
      'x-accel-buffering': 'no',
    });
    raw.write(`retry: ${RECONNECT_MS}\n\n`);
    this.heartbeat = setInterval(() => this.write(': heartbeat\n\n'), heartbeatMs);
    this.heartbeat.unref();
    raw.on('close', () => this.close());
  }

  /** Continues where a client's Last-Event-ID left off; live events wait until `release`. */
  resume(cursor: EventCursor) {
    this.top = Math.max(this.top, cursor.after);
    const now = Date.now();
    for (const id of cursor.open) this.carried.set(id, now);
    this.held = [];
  }

  /**
   * Sends the backlog, then what arrived meanwhile (anything the backlog already had is skipped).
   * `open`: the ids the hub has not seen commit (EventHub.openIds).
   */
  release(backlog: Delivery[], open: readonly number[]) {
    const held = this.held ?? [];
    this.held = null;
    for (const d of backlog) this.send(d, open);
    for (const d of held) this.send(d, open);
  }

  /** `open`: the ids the hub has not seen commit, written into the cursor with the event. */
  send(d: Delivery, open: readonly number[]) {
    if (this.held) {
      this.held.push(d);
      return;
    }
    if (this.sent.has(d.id)) return;
    this.sent.add(d.id);
    if (this.sent.size > SENT_IDS_KEPT) this.sent.delete(this.sent.values().next().value!);
    this.top = Math.max(this.top, d.id);
    this.carried.delete(d.id);
    const expired = Date.now() - HOLE_MS;
    for (const [id, since] of this.carried) if (since < expired) this.carried.delete(id);
    const cursor = formatCursor({ after: this.top, open: [...this.carried.keys(), ...open] });
    this.write(`id: ${cursor}\nevent: ${d.event.type}\ndata: ${JSON.stringify(presentPayload(d))}\n\n`);
  }

  private write(chunk: string) {
    if (this.closed) return;
    if (this.raw.writableLength > MAX_BUFFERED_BYTES) {
      this.raw.destroy();
      return;
    }
    this.raw.write(chunk);
  }

  /** Ends the stream asking the client to reconnect (to another instance) after `retryMs`. */
  end(retryMs: number) {
    if (this.closed) return;
    this.raw.end(`retry: ${retryMs}\n\n`);
    this.close();
  }

  private close() {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.onClose(this);
  }
}

/**
 * Fans out submission.updated events to the SSE streams open on this instance. One LISTEN
 * connection per instance (not per stream) receives event ids via NOTIFY; each id is read once
 * from the events table with the course's staff list, then written to the author's and the staff's
 * streams, masked per recipient.
 */
export class EventHub {
  /** Open streams by user: an event goes to its author's and its course staff's streams without a pass over every stream. */
  private byUser = new Map<string, Set<SseStream>>();
  private count = 0;
  private waiters = new Map<string, Array<(payload: unknown) => void>>();
  private pending = new Set<number>();
  private flushing: Promise<void> | null = null;
  private listener: Listener | null = null;
  /** Highest event id handled; null until known (the database may be down at start). */
  private lastId: number | null = null;
  /** Ids below lastId not handled yet (HOLE_MS), with when they were skipped. */
  private holes = new Map<number, number>();
  private connectedOnce = false;
  private closed = false;
  private readonly closing = new AbortController();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    private db: Db,
    private log: FastifyBaseLogger,
    private opts: {
      url: string;
      applicationName: string;
      sweepMs?: number;
      /**
       * Runs before events reach their authors' streams (with read replicas: records a write position for
       * them, so a read that follows the event sees what it announced).
       */
      beforeDeliver?: (authorIds: string[]) => Promise<void>;
      /** More listening on the same connection (the caller cache: revocations and its pings). */
      tap?: ListenerTap;
    },
  ) {}

  get size() {
    return this.count;
  }

  /** Every open stream of this instance. */
  private *streams() {
    for (const mine of this.byUser.values()) yield* mine;
  }

  async start() {
    if (this.opts.sweepMs) {
      this.sweeper = setInterval(() => void this.sweep(), this.opts.sweepMs);
      this.sweeper.unref();
    }
    this.lastId = await q.selectMaxEventId(this.db).catch(() => null);
    const tap = this.opts.tap;
    const channels: Record<string, (payload: string) => void> = {
      [EVENTS_CHANNEL]: (payload) => {
        const id = Number(payload);
        if (Number.isSafeInteger(id)) this.enqueue(id);
      },
      // A session logged out or a token deleted, on any instance: its streams end now.
      [CREDENTIALS_CHANNEL]: (credentialId) => this.revoke(credentialId),
    };
    for (const [channel, handle] of Object.entries(tap?.channels ?? {})) {
      const own = channels[channel];
      channels[channel] = own
        ? (payload) => {
            own(payload);
            handle(payload);
          }
        : handle;
    }
    await new Promise<void>((resolve) => {
      const listener = startListener({
        url: this.opts.url,
        channels,
        applicationName: this.opts.applicationName,
        onConnect: () => {
          tap?.connected((channel, payload) => listener.notify(channel, payload));
          if (this.connectedOnce || this.lastId === null) void this.catchUp();
          this.connectedOnce = true;
          resolve();
        },
        onError: (err) => {
          tap?.disconnected();
          this.log.warn({ err: (err as Error).message }, 'events listener disconnected; reconnecting');
          resolve(); // start() must not hang while Postgres is down; the listener keeps retrying.
        },
      });
      this.listener = listener;
    });
  }

  add(stream: SseStream) {
    let mine = this.byUser.get(stream.userId);
    if (!mine) {
      mine = new Set();
      this.byUser.set(stream.userId, mine);
    }
    if (mine.has(stream)) return;
    mine.add(stream);
    this.count += 1;
  }

  /**
   * Resolves with a run's run.updated payload when it arrives on this instance, or with null after
   * `ms` (or at once when the hub closes). How POST /runs answers 200 with the result when it is quick.
   */
  waitForRun(runId: string, ms: number): Promise<unknown> {
    return new Promise((resolve) => {
      const done = (payload: unknown) => {
        clearTimeout(timer);
        const list = this.waiters.get(runId)?.filter((w) => w !== done) ?? [];
        if (list.length) this.waiters.set(runId, list);
        else this.waiters.delete(runId);
        resolve(payload);
      };
      const timer = setTimeout(() => done(null), this.closed ? 0 : ms);
      this.waiters.set(runId, [...(this.waiters.get(runId) ?? []), done]);
    });
  }

  remove(stream: SseStream) {
    const mine = this.byUser.get(stream.userId);
    if (!mine?.delete(stream)) return;
    this.count -= 1;
    if (mine.size === 0) this.byUser.delete(stream.userId);
  }

  /** Ids below the highest handled that have not been seen to commit (within HOLE_MS): see event-cursor.ts. */
  openIds(): number[] {
    return [...this.holes.keys()];
  }

  private enqueue(id: number) {
    this.pending.add(id);
    this.flushing ??= this.flush().finally(() => {
      this.flushing = null;
    });
  }

  private async flush() {
    while (this.pending.size > 0 && !this.closed) {
      const ids = [...this.pending];
      if (this.count === 0 && this.waiters.size === 0) {
        this.pending.clear();
        this.advance(ids);
        return;
      }
      // Events are durable: while the database is down this keeps trying (100 ms doubling to 5 s), and a
      // client that misses an event meanwhile resumes with Last-Event-ID. Only closing stops it.
      const events = await pRetry(() => q.selectEventsByIds(this.db, ids), {
        forever: true,
        factor: 2,
        minTimeout: 100,
        maxTimeout: 5000,
        signal: this.closing.signal,
        onFailedAttempt: (err) => this.log.warn({ err: err.message }, 'could not read events; retrying'),
      }).catch((err: Error) => {
        if (!this.closed) this.log.error({ err: err.message }, 'could not read events');
        return null;
      });
      if (!events) return;
      for (const id of ids) this.pending.delete(id);
      // Advanced first: the cursors written with these events list the ids still open after them.
      this.advance(ids);
      await this.beforeDeliver(events);
      this.dispatch(events);
    }
  }

  /** Notifications sent while the LISTEN connection was down are lost; read what was missed. */
  private async catchUp() {
    try {
      if (this.lastId === null) {
        // Never knew where we were: start from now rather than replay history to everyone.
        this.lastId = await q.selectMaxEventId(this.db);
        return;
      }
      this.forgetOldHoles();
      const late = [...this.holes.keys()];
      const [after, filled] = await Promise.all([
        q.selectEventsAfter(this.db, this.lastId, CATCH_UP_LIMIT),
        late.length > 0 ? q.selectEventsByIds(this.db, late) : Promise.resolve([]),
      ]);
      const events = [...filled, ...after].sort((a, b) => a.id - b.id);
      this.advance(events.map((e) => e.id));
      await this.beforeDeliver(events);
      this.dispatch(events);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not catch up on events');
    }
  }

  private async beforeDeliver(events: q.EventRow[]) {
    if (!this.opts.beforeDeliver || events.length === 0) return;
    const authors = [...new Set(events.map((e) => e.userId))].filter((u) => this.byUser.has(u));
    if (authors.length === 0) return;
    await this.opts
      .beforeDeliver(authors)
      .catch((err) =>
        this.log.warn(
          { err: (err as Error).message },
          'could not record write positions for event recipients',
        ),
      );
  }

  private advance(ids: number[]) {
    if (ids.length === 0) return;
    for (const id of ids) this.holes.delete(id);
    const top = Math.max(...ids);
    if (this.lastId !== null && top > this.lastId + 1) {
      const handled = new Set(ids);
      const now = Date.now();
      for (let id = Math.max(this.lastId + 1, top - MAX_HOLES); id < top; id++)
        if (!handled.has(id)) this.holes.set(id, now);
      this.forgetOldHoles();
    }
    this.lastId = Math.max(this.lastId ?? 0, top);
  }

  private forgetOldHoles() {
    const before = Date.now() - HOLE_MS;
    for (const [id, since] of this.holes) {
      // Insertion order is skip order: the oldest come first.
      if (since >= before && this.holes.size <= MAX_HOLES) break;
      this.holes.delete(id);
    }
  }

  private dispatch(events: q.EventRow[]) {
    const open = this.openIds();
    for (const e of deliverable(events, this.log)) {
      const runId = e.event.type === 'run.updated' ? e.event.payload.run.id : undefined;
      if (runId) for (const resolve of this.waiters.get(runId) ?? []) resolve(e.event.payload);
      // A run is its author's alone; a submission goes to its author and the course staff (unmasked to
      // staff, the author included when they teach the course). Each stream gets it once.
      const staff = runId ? new Set<string>() : new Set(e.staffIds);
      const message = (isStaff: boolean) => ({
        id: e.id,
        event: e.event,
        staff: isStaff,
        visibleTests: e.visibleTests,
      });
      const authorIsStaff = staff.has(e.userId);
      for (const s of this.byUser.get(e.userId) ?? []) s.send(message(authorIsStaff), open);
      for (const userId of staff) {
        if (userId === e.userId) continue;
        for (const s of this.byUser.get(userId) ?? []) s.send(message(true), open);
      }
    }
  }

  /** Ends the streams opened with this session or token; they reconnect and get 401. */
  revoke(credentialId: string) {
    for (const s of [...this.streams()]) if (s.credential?.id === credentialId) s.end(RECONNECT_MS);
  }

  /**
   * A stream is authorised once, when it opens; logging out, deleting the token or the session
   * expiring must still cut it off. One query per sweep for all streams of this instance; the ended
   * streams reconnect and get 401.
   */
  async sweep() {
    const streams = [...this.streams()].filter((s) => s.credential !== undefined);
    if (streams.length === 0) return;
    let alive: Set<string>;
    try {
      alive = await q.selectLiveCredentials(
        this.db,
        streams.filter((s) => s.credential!.via === 'session').map((s) => s.credential!.id),
        streams.filter((s) => s.credential!.via === 'token').map((s) => s.credential!.id),
      );
    } catch (err) {
      // The database is down: keep the streams rather than cut everyone off.
      this.log.warn({ err: (err as Error).message }, 'could not check event stream credentials');
      return;
    }
    for (const s of streams) if (!alive.has(s.credential!.id)) s.end(RECONNECT_MS);
  }

  /** Ends every stream with a `retry:` so clients reconnect elsewhere, and stops listening. */
  /** `pg_notify` on this instance's LISTEN connection (no pool checkout); rejects while it is down. */
  notify(channel: string, payload: string): Promise<void> {
    return this.listener
      ? this.listener.notify(channel, payload)
      : Promise.reject(new Error('not listening yet'));
  }

  async close() {
    this.closed = true;
    this.closing.abort();
    if (this.sweeper) clearInterval(this.sweeper);
    for (const s of [...this.streams()]) s.end(RECONNECT_MS);
    this.byUser.clear();
    this.count = 0;
    this.opts.tap?.stop();
    await this.listener?.stop();
  }
}
