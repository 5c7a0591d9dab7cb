import './drizzle-fixes.ts';
import pg from 'pg';
import { AppError } from '../http/errors.ts';

export interface PoolOptions {
  connectionString: string;
  max: number;
  acquireTimeoutMs: number;
  maxWaiting: number;
  statementTimeoutMs: number;
  applicationName: string;
}

/**
 * A pg.Pool whose wait queue is bounded in length (maxWaiting) and in time (acquireTimeoutMs):
 * past either bound the caller gets 503 at once instead of joining an ever-growing queue
 * (DESIGN.md: small pools + a bounded wait queue beat big pools).
 */
export class BoundedPool extends pg.Pool {
  readonly maxWaiting: number;

  constructor(opts: PoolOptions) {
    super({
      connectionString: opts.connectionString,
      max: opts.max,
      connectionTimeoutMillis: opts.acquireTimeoutMs,
      idleTimeoutMillis: 30_000,
      statement_timeout: opts.statementTimeoutMs,
      application_name: opts.applicationName,
      ...sslFor(opts.connectionString),
    });
    this.maxWaiting = opts.maxWaiting;
    // An idle client that loses its server (Postgres restart) emits 'error' on the pool; without a
    // listener that would crash the process. The pool drops the client and reconnects on demand.
    this.on('error', () => {});
    // A client checked out for a transaction emits 'error' on itself when its socket drops, and the
    // pool listens only while it is idle: without this the process exits. The query in flight
    // fails with the error anyway, and the broken client is discarded when released.
    this.on('connect', (client) => client.on('error', () => {}));
  }

  // biome-ignore lint/suspicious/noExplicitAny: pg's overloads
  override connect(...args: any[]): any {
    if (args.length === 0 && this.waitingCount >= this.maxWaiting && this.idleCount === 0) {
      return Promise.reject(
        new AppError(503, 'overloaded', 'Too many requests are waiting for the database; retry shortly.'),
      );
    }
    // biome-ignore lint/suspicious/noExplicitAny: pg's overloads
    return (super.connect as any)(...args);
  }
}

/** TLS when the URL asks for it (sslmode=require/verify-*), as managed cloud Postgres does. */
export function sslFor(url: string): { ssl?: pg.ConnectionConfig['ssl'] } {
  const mode = new URL(url).searchParams.get('sslmode');
  if (!mode || mode === 'disable') return {};
  if (mode === 'verify-full' || mode === 'verify-ca') return { ssl: { rejectUnauthorized: true } };
  return { ssl: { rejectUnauthorized: false } };
}
