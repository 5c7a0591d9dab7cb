import pg from 'pg';
import { overloaded } from '../shared/errors.ts';
import { isDatabaseUnavailable } from './errors.ts';

type Kind = 'begin' | 'commit' | 'rollback' | 'read' | 'write';

/** What a statement is, for "could it have committed?": by its first word. */
export function statementKind(text: string): Kind {
  const word = /^\s*([a-z]+)/i.exec(text)?.[1]?.toLowerCase() ?? '';
  if (word === 'begin' || word === 'start') return 'begin';
  if (word === 'commit' || word === 'end') return 'commit';
  if (word === 'rollback' || word === 'abort') return 'rollback';
  if (['select', 'show', 'set', 'fetch', 'declare', 'close', 'listen', 'values', 'explain'].includes(word))
    return 'read';
  return 'write';
}

/**
 * A pg client that (1) always has an 'error' listener: a client checked out of a pool whose socket
 * drops (a failover, a Postgres restart) emits 'error', and pg-pool only listens while the client is
 * idle, so without this the process exits ("Unhandled 'error' event"); the failed query still rejects
 * and the pool discards the client on release; and (2) marks errors whose statement may have committed
 * anyway (`outcomeUnknown`, see isOutcomeUnknown): a COMMIT that got no answer or an error, or an
 * autocommit write whose connection died. Anything else that failed did not commit, so it is safe to retry.
 */
export class LabClient extends pg.Client {
  private inTransaction = false;
  private commitFailed = false;
  /** Set by BoundedPool while the client is checked out: its (idempotent) release. */
  checkedOut: ((err?: Error) => void) | null = null;
  /** The database was unreachable or refused for now (isDatabaseUnavailable) since this checkout. */
  failedSinceCheckout = false;
  /** Parameterised queries are prepared by name (withStatementName); off for the heavy pools. */
  private readonly named: boolean;
  /** The pool's record of what its connections last saw (null for a client outside a BoundedPool). */
  private readonly health: PoolHealth | null;

  constructor(config?: string | (pg.ClientConfig & { namedStatements?: boolean; health?: PoolHealth })) {
    super(config);
    this.named = typeof config === 'object' && config.namedStatements === true;
    this.health = (typeof config === 'object' && config.health) || null;
    // A client checked out when its connection dies goes back to the pool (which discards it) even if
    // its holder never releases it: Drizzle 0.45's transaction() releases nothing when BEGIN fails, so a
    // failover hitting BEGIN would leak the slot for good (a grader's pool of 1 then stalls).
    const dead = (err: Error) => {
      const release = this.checkedOut;
      if (release) setImmediate(() => release(err));
    };
    this.on('error', dead);
    this.on('end', () => dead(new Error('Connection terminated')));
  }

  // biome-ignore lint/suspicious/noExplicitAny: pg's overloads
  override connect(...args: any[]): any {
    // biome-ignore lint/suspicious/noExplicitAny: pg's overloads
    const connect = super.connect as (...a: any[]) => any;
    const callback = args[0];
    if (typeof callback === 'function')
      return connect.call(this, (err: unknown, ...rest: unknown[]) => {
        if (err) this.sawFailure(err);
        callback(err, ...rest);
      });
    return connect.call(this).catch((err: unknown) => {
      this.sawFailure(err);
      throw err;
    });
  }

  private sawFailure(err: unknown) {
    if (!this.health || !isDatabaseUnavailable(err)) return;
    this.failedSinceCheckout = true;
    this.health.failed();
  }

  // biome-ignore lint/suspicious/noExplicitAny: pg's overloads
  override query(...args: any[]): any {
    const first = args[0];
    if (first && typeof first.submit === 'function')
      return (super.query as (...a: unknown[]) => unknown)(...args);
    if (this.named) {
      const named = withStatementName(first, args[1]);
      if (named !== null) args[0] = named;
    }
    const kind = statementKind(typeof first === 'string' ? first : (first?.text ?? ''));
    const inTransaction = this.inTransaction;
    if (kind === 'begin') {
      this.inTransaction = true;
      this.commitFailed = false;
    } else if (kind === 'commit' || kind === 'rollback') this.inTransaction = false;
    const onError = (err: unknown) => this.classify(err, kind, inTransaction);
    const last = args[args.length - 1];
    // biome-ignore lint/suspicious/noExplicitAny: pg's overloads
    const query = super.query as (...a: any[]) => any;
    if (typeof last === 'function') {
      args[args.length - 1] = (err: unknown, res: unknown) => {
        if (err) onError(err);
        last(err, res);
      };
      return query.apply(this, args);
    }
    return query.apply(this, args).catch((err: unknown) => {
      onError(err);
      throw err;
    });
  }

  private classify(err: unknown, kind: Kind, inTransaction: boolean) {
    if (!err || typeof err !== 'object') return;
    this.sawFailure(err);
    const e = err as { code?: string; message?: string; outcomeUnknown?: boolean };
    // Refused before it was sent: the connection had already failed.
    const notSent = /is not queryable/.test(e.message ?? '');
    const sqlstate = typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code);
    // The connection died or the server terminated the session (57P01/57P02, 08xxx) mid-statement; any
    // other SQLSTATE is a statement the server refused, which did not take effect.
    const died = !notSent && (!sqlstate || /^(57P0[12]|08)/.test(e.code!));
    let unknown = false;
    if (kind === 'commit') {
      unknown = !notSent;
      this.commitFailed = unknown;
    } else if (kind === 'rollback') unknown = this.commitFailed;
    else if (kind === 'write' && !inTransaction) unknown = died;
    if (unknown) e.outcomeUnknown = true;
  }
}

/** Statement text → the name it is prepared under on every connection of this process. */
const statementNames = new Map<string, string>();
/** Texts beyond this many run unnamed (a query built with a varying text must not grow the caches forever). */
export const MAX_NAMED_STATEMENTS = 2000;

/**
 * A parameterised query config (how Drizzle and most of Lab call pg) given a name derived from its text,
 * so pg prepares it once per connection and then only binds and executes it: Postgres skips parsing and,
 * once its plan cache prefers the generic plan (after 5 executions), planning too. Measured on a graded
 * submission: planning alone was ~1.5 ms of Postgres CPU of ~5 ms (docs/perf/classroom-profile.md).
 * Null (run as given) for a query that already has a name, has no parameters (BEGIN, COMMIT, SET,
 * LISTEN, multi-statement scripts: a prepared statement holds one command), or past the cap.
 */
// biome-ignore lint/suspicious/noExplicitAny: pg's query config
export function withStatementName(config: any, values: unknown): object | null {
  if (config === null || typeof config !== 'object' || config.name !== undefined) return null;
  const text = config.text;
  const params = values ?? config.values;
  if (typeof text !== 'string' || !Array.isArray(params) || params.length === 0) return null;
  let name = statementNames.get(text);
  if (name === undefined) {
    if (statementNames.size >= MAX_NAMED_STATEMENTS) return null;
    name = `lab_${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  // A copy: Drizzle reuses a prepared query's config object.
  return { ...config, name };
}

export interface PoolOptions {
  connectionString: string;
  max: number;
  acquireTimeoutMs: number;
  maxWaiting: number;
  statementTimeoutMs: number;
  applicationName: string;
  /**
   * Prepare parameterised queries by name (withStatementName): for pools of short queries, where parsing
   * and planning are a large share of each one. Off for heavy queries (a gradebook): planning is a small
   * share of them, and a plan made for the given course beats a generic one.
   */
  namedStatements?: boolean;
}

/**
 * What a pool's own traffic last showed about its database: when a checkout last ended without the
 * database failing, and when a connection or statement last found it unavailable (refused, terminated,
 * read-only, shutting down). /readyz trusts this over a probe that would queue behind that traffic.
 */
export class PoolHealth {
  okAt = 0;
  failedAt = 0;
  private waiters: (() => void)[] = [];

  ok() {
    this.okAt = Date.now();
    if (this.waiters.length > 0) for (const wake of this.waiters.splice(0)) wake();
  }

  failed() {
    this.failedAt = Date.now();
  }

  /** True at the next ok() within `timeoutMs`, else false. */
  nextOk(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(wake);
    });
  }
}

/**
 * A pg.Pool whose wait queue is bounded in length (maxWaiting) and in time (acquireTimeoutMs):
 * past either bound the caller gets 503 at once instead of joining an ever-growing queue
 * (DESIGN.md: small pools + a bounded wait queue beat big pools).
 */
export class BoundedPool extends pg.Pool {
  readonly maxWaiting: number;
  readonly health: PoolHealth;

  constructor(opts: PoolOptions) {
    const health = new PoolHealth();
    const config: pg.PoolConfig & { namedStatements: boolean; health: PoolHealth } = {
      connectionString: opts.connectionString,
      max: opts.max,
      connectionTimeoutMillis: opts.acquireTimeoutMs,
      idleTimeoutMillis: 30_000,
      statement_timeout: opts.statementTimeoutMs,
      application_name: opts.applicationName,
      // Notices a silently dead server (a host that vanished) instead of waiting on the socket forever.
      keepAlive: true,
      Client: LabClient,
      // Handed to each LabClient by pg-pool (it constructs clients with the pool's options).
      namedStatements: opts.namedStatements ?? true,
      health,
      ...sslFor(opts.connectionString),
    };
    super(config);
    this.health = health;
    this.maxWaiting = opts.maxWaiting;
    // An idle client that loses its server (Postgres restart, failover) emits 'error' on the pool; without
    // a listener that would crash the process. The pool drops the client and reconnects on demand.
    // (Checked-out clients have their own listener: LabClient.)
    this.on('error', () => {});
  }

  // biome-ignore lint/suspicious/noExplicitAny: pg's overloads
  override connect(...args: any[]): any {
    // biome-ignore lint/suspicious/noExplicitAny: pg's overloads
    const connect = (super.connect as any).bind(this);
    // Past the bound the caller is refused at once, by whichever path it checks out: Drizzle's queries
    // outside a transaction come through pg-pool's query() (the callback form), transactions through
    // the promise form.
    const full = this.waitingCount >= this.maxWaiting && this.idleCount === 0;
    if (typeof args[0] === 'function') {
      // pg-pool's own query() checks out with a callback and releases with client.release(err).
      const cb = args[0];
      if (full) {
        process.nextTick(cb, poolBusy(TOO_MANY_WAITING));
        return undefined;
      }
      return connect((err: Error | undefined, client: PooledLabClient | undefined, done: unknown) =>
        cb(
          err && this.waitedTooLong(err),
          client && guard(client, this.health),
          client ? client.release : done,
        ),
      );
    }
    if (full) return Promise.reject(poolBusy(TOO_MANY_WAITING));
    return connect().then(
      (client: PooledLabClient) => guard(client, this.health),
      (err: Error) => {
        throw this.waitedTooLong(err);
      },
    );
  }

  /**
   * pg-pool's "timeout exceeded when trying to connect" is only ever its wait for a busy pool's next free
   * client (a connection that cannot be opened in time fails as "Connection terminated due to connection
   * timeout"): the database is up and busy, so the answer is overloaded (503, not retried here), not
   * unavailable (which the route would retry for DB_RETRY_MS, adding load to a pool that has none to spare).
   */
  private waitedTooLong(err: Error): Error {
    if (err.message !== POOL_WAIT_TIMEOUT) return err;
    const waited = this.options.connectionTimeoutMillis;
    return poolBusy(`No database connection came free within ${waited} ms; retry shortly.`);
  }
}

/** 503 overloaded, marked as the pool's refusal: the database is up, this process has no connection for it now. */
function poolBusy(message: string) {
  return Object.assign(overloaded(message), { poolBusy: true });
}

const TOO_MANY_WAITING = 'Too many requests are waiting for the database; retry shortly.';

/** pg-pool's error for a checkout that waited connectionTimeoutMillis in its queue. */
const POOL_WAIT_TIMEOUT = 'timeout exceeded when trying to connect';

/**
 * Makes a checked-out client's release idempotent (pg-pool throws on a second release) and tells the
 * client it is checked out, so a client whose connection dies can release itself (see LabClient).
 */
type PooledLabClient = LabClient & pg.PoolClient;

function guard(client: PooledLabClient, health: PoolHealth): PooledLabClient {
  const release = client.release;
  let released = false;
  client.failedSinceCheckout = false;
  const once = (err?: Error | boolean) => {
    if (released) return;
    released = true;
    client.checkedOut = null;
    if (!err && !client.failedSinceCheckout) health.ok();
    release(err);
  };
  client.release = once;
  client.checkedOut = (err) => once(err);
  return client;
}

/** TLS when the URL asks for it (sslmode=require/verify-*), as managed cloud Postgres does. */
export function sslFor(url: string): { ssl?: pg.ConnectionConfig['ssl'] } {
  const mode = new URL(url).searchParams.get('sslmode');
  if (!mode || mode === 'disable') return {};
  if (mode === 'verify-full' || mode === 'verify-ca') return { ssl: { rejectUnauthorized: true } };
  return { ssl: { rejectUnauthorized: false } };
}
