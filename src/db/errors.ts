// SQLSTATEs that mean "this server cannot do it right now; it (or the next primary) can in a moment":
// answered 503 + Retry-After (or retried when safe), never 500.
const UNAVAILABLE_CODES = new Set([
  // read_only_sql_transaction: a write reached a server that is not (or not yet) a writable primary —
  // the moment after a Patroni promotion, or a demoted primary before the proxy notices.
  '25006',
  '57P01', // admin_shutdown (terminating connection due to administrator command)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, in recovery)
  '57P05', // idle_session_timeout
  '53300', // too_many_connections
  '53000', // insufficient_resources
  '08000', // connection_exception
  '08003', // connection_does_not_exist
  '08006', // connection_failure
  '08001', // sqlclient_unable_to_establish_sqlconnection
  '08004', // sqlserver_rejected_establishment_of_sqlconnection
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
// pg-pool's "timeout exceeded when trying to connect" is not here: it means a busy pool, not an
// unavailable database (BoundedPool answers it as overloaded).
const MESSAGES = [
  'Connection terminated',
  'Client has encountered a connection error',
  'Client was closed and is not queryable',
  'Cannot use a pool after calling end',
];

type ErrorLike = {
  code?: string;
  message?: string;
  cause?: unknown;
  outcomeUnknown?: boolean;
  poolBusy?: boolean;
};

/** The error and its causes (Drizzle wraps driver errors in a DrizzleQueryError whose `cause` is pg's). */
function* chain(err: unknown): Generator<ErrorLike> {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    yield e as ErrorLike;
    e = (e as ErrorLike).cause;
  }
}

export function isDatabaseUnavailable(err: unknown): boolean {
  for (const e of chain(err)) {
    if (e.code && (UNAVAILABLE_CODES.has(e.code) || NETWORK_CODES.has(e.code))) return true;
    const msg = e.message ?? '';
    if (MESSAGES.some((m) => msg.includes(m))) return true;
  }
  return false;
}

/** A busy pool's refusal (BoundedPool: no connection came free in time), however Drizzle wrapped it. */
export function isPoolBusy(err: unknown): boolean {
  for (const e of chain(err)) if (e.poolBusy) return true;
  return false;
}

/**
 * True when the statement that failed may have committed anyway: a COMMIT (or an autocommit write) whose
 * answer never came, e.g. the connection dropped, or the server was shut down while the commit waited for
 * its synchronous replica. Set by the pool's clients (pool.ts). Only then is retrying a write unsafe.
 */
export function isOutcomeUnknown(err: unknown): boolean {
  for (const e of chain(err)) if (e.outcomeUnknown) return true;
  return false;
}

/** statement_timeout fired (57014): the work was too slow for this request's budget. */
export function isStatementTimeout(err: unknown): boolean {
  for (const e of chain(err)) if (e.code === '57014') return true;
  return false;
}

/** A query on a hot standby cancelled because replay needed what it held (40001): retry on the primary. */
export function isRecoveryConflict(err: unknown): boolean {
  for (const e of chain(err))
    if (e.code === '40001' && /conflict with recovery/.test(e.message ?? '')) return true;
  return false;
}

export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  for (const e of chain(err) as Generator<ErrorLike & { constraint?: string }>)
    if (e.code === '23505') return !constraint || e.constraint === constraint;
  return false;
}
