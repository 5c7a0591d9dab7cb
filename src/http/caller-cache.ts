import { randomBytes } from 'node:crypto';
import type client from 'prom-client';
import { CREDENTIALS_CHANNEL } from '../contracts/channels.ts';
import type { ListenerTap } from '../db/listener.ts';
import { type Tally, talliedCounter } from '../lib/tallied-counter.ts';
import type { Caller, CallerRow } from './caller.queries.ts';

export interface CallerCacheOptions {
  enabled: boolean;
  /** A ping echo older than this (by its send time) and the cache is not trusted: lookups go to Postgres. */
  trustMs?: number;
  pingMs?: number;
  /** Longest life of an entry (a backstop: a credential's row is re-read at least this often). */
  ttlMs?: number;
  maxEntries?: number;
  registry?: client.Registry;
}

interface Entry {
  /** The session's or token's id, as a revocation names it. */
  credentialId: string;
  /** The caller as a settled promise, made once: a hit allocates no promise and no async frame. */
  resolved: Promise<Caller>;
  /** performance.now() after which the entry is not used (TTL, or the session's expiry). */
  until: number;
}

/**
 * A per-instance cache of credential hash → caller, so a hot read costs one statement (its own).
 *
 * It holds identity only (user id, name, email; the session or token id) and never a role or a
 * membership: those are read by each route's own query, so a role change or a member removal takes
 * effect on the next request, on every instance, with nothing to invalidate.
 *
 * Revocation is NOTIFYed on `lab_credentials` by a trigger in the transaction that revokes (logout,
 * token deleted, user deleted, a session's expiry or a hash changed by hand in SQL; migration 0007);
 * every instance drops the entry when the notification arrives on its LISTEN connection.
 * The cache is only trusted while that path is proven to work: every `pingMs` the instance
 * NOTIFYs itself on a private channel through its LISTEN connection. Postgres delivers notifications
 * in commit order, so when the echo of a ping sent at time s arrives, every revocation committed
 * before s has been applied here. Entries are used only while the latest echoed ping was sent less
 * than `trustMs` (800 ms) ago: a revocation committed more than that ago is always effective,
 * whatever happened to the LISTEN connection (down, stalled, silently dead). Otherwise lookups go to
 * Postgres, as without a cache. On every (re)connection the cache is emptied (what was NOTIFYed
 * meanwhile is lost), and a lookup that raced a revocation or a reconnection is not stored.
 *
 * Pings are sent only while the cache is in use (a lookup within the last 5 s), so an idle instance
 * costs Postgres nothing.
 */
export class CallerCache {
  readonly enabled: boolean;
  private readonly trustMs: number;
  private readonly pingMs: number;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly entries = new Map<string, Entry>();
  /** credential id → cache key, to drop an entry by the id a revocation names. */
  private readonly keys = new Map<string, string>();
  /** Bumped by every revocation and every clear: a lookup that straddles one is not stored. */
  private generation = 0;
  /** Send time (performance.now()) of the latest ping whose echo has arrived. */
  private confirmedAt = Number.NEGATIVE_INFINITY;
  private lastPingAt = Number.NEGATIVE_INFINITY;
  private usedAt = Number.NEGATIVE_INFINITY;
  private readonly pings = new Map<number, number>();
  private seq = 0;
  private notify: ((channel: string, payload: string) => Promise<void>) | null = null;
  /** One ping at a time: a stalled connection must not pile up queries. */
  private pinging = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly counted: Record<'hit' | 'miss' | 'untrusted', Tally>;
  /** This instance's own ping channel (LISTEN is per channel: no other instance receives its pings). */
  readonly pingChannel = `lab_callers_${randomBytes(8).toString('hex')}`;

  constructor(opts: CallerCacheOptions) {
    this.enabled = opts.enabled;
    this.trustMs = opts.trustMs ?? 800;
    this.pingMs = opts.pingMs ?? 200;
    this.ttlMs = opts.ttlMs ?? 30_000;
    this.maxEntries = opts.maxEntries ?? 20_000;
    const lookups = opts.registry
      ? talliedCounter({
          name: 'lab_caller_lookups_total',
          help: 'Callers resolved: hit (cache), miss (Postgres), untrusted (Postgres: the revocation path is not proven live)',
          labelNames: ['result'] as const,
          registers: [opts.registry],
        })
      : null;
    const counter = (result: string) => lookups?.tally({ result }) ?? { inc() {} };
    this.counted = { hit: counter('hit'), miss: counter('miss'), untrusted: counter('untrusted') };
  }

  /** The channels and connection events this cache needs from the instance's LISTEN connection. */
  readonly tap: ListenerTap = {
    channels: {
      [CREDENTIALS_CHANNEL]: (credentialId) => this.revoke(credentialId),
      [this.pingChannel]: (payload) => this.echo(Number(payload)),
    },
    connected: (notify) => {
      this.clear();
      this.notify = notify;
      this.pinging = false;
      if (this.enabled && !this.timer) {
        this.timer = setInterval(() => this.tick(), this.pingMs);
        this.timer.unref();
      }
      this.ping();
    },
    disconnected: () => {
      this.notify = null;
      this.confirmedAt = Number.NEGATIVE_INFINITY;
      this.clear();
    },
    stop: () => {
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
      this.notify = null;
      this.clear();
    },
  };

  /** Whether cached entries may be used now (see the class comment). */
  trusted(now = performance.now()): boolean {
    return now - this.confirmedAt <= this.trustMs;
  }

  get size() {
    return this.entries.size;
  }

  /** The caller for this credential key: from the cache when trusted, else from `load` (Postgres). */
  resolve(key: string, load: () => Promise<CallerRow | null>): Promise<Caller | null> {
    if (!this.enabled) return this.load(key, load, false);
    const now = performance.now();
    this.usedAt = now;
    if (this.trusted(now)) {
      const hit = this.entries.get(key);
      if (hit !== undefined) {
        if (hit.until > now) {
          this.counted.hit.inc();
          return hit.resolved;
        }
        this.drop(key, hit.credentialId);
      }
      this.counted.miss.inc();
    } else {
      this.counted.untrusted.inc();
      // Coming back from idle: prove the path again at once rather than at the next tick.
      if (now - this.lastPingAt > this.pingMs) this.ping();
    }
    return this.load(key, load, true);
  }

  private async load(key: string, load: () => Promise<CallerRow | null>, keep: boolean) {
    const generation = this.generation;
    const row = await load();
    if (keep && row && generation === this.generation) this.store(key, row);
    return row?.caller ?? null;
  }

  /** Forgets a revoked session or token (its id, as NOTIFYed). */
  revoke(credentialId: string) {
    this.generation += 1;
    const key = this.keys.get(credentialId);
    if (key !== undefined) this.drop(key, credentialId);
  }

  clear() {
    this.generation += 1;
    this.entries.clear();
    this.keys.clear();
    this.pings.clear();
  }

  private store(key: string, row: CallerRow) {
    const now = performance.now();
    const life =
      row.expiresAt === null ? this.ttlMs : Math.min(this.ttlMs, row.expiresAt.getTime() - Date.now());
    if (life <= 0) return;
    if (this.entries.size >= this.maxEntries) {
      // The oldest insertion goes first (Map keeps insertion order).
      const [oldKey, old] = this.entries.entries().next().value!;
      this.drop(oldKey, old.credentialId);
    }
    const previous = this.entries.get(key);
    if (previous) this.drop(key, previous.credentialId);
    this.entries.set(key, {
      credentialId: row.caller.credentialId,
      resolved: Promise.resolve(row.caller),
      until: now + life,
    });
    this.keys.set(row.caller.credentialId, key);
  }

  private drop(key: string, credentialId: string) {
    this.entries.delete(key);
    this.keys.delete(credentialId);
  }

  private tick() {
    // Only while in use: an idle instance sends nothing.
    if (performance.now() - this.usedAt < 5000) this.ping();
  }

  private ping() {
    const notify = this.notify;
    if (!notify || !this.enabled || this.pinging) return;
    const seq = ++this.seq;
    const sentAt = performance.now();
    this.lastPingAt = sentAt;
    this.pings.set(seq, sentAt);
    // Echoes that never come (the connection died) are forgotten on the next (re)connection.
    if (this.pings.size > 1000) this.pings.delete(this.pings.keys().next().value!);
    this.pinging = true;
    notify(this.pingChannel, String(seq))
      .catch(() => {})
      .finally(() => {
        this.pinging = false;
      });
  }

  private echo(seq: number) {
    const sentAt = this.pings.get(seq);
    if (sentAt === undefined) return;
    for (const s of this.pings.keys()) {
      if (s > seq) break;
      this.pings.delete(s);
    }
    if (sentAt > this.confirmedAt) this.confirmedAt = sentAt;
  }
}
