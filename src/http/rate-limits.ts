import type pg from 'pg';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../config.ts';
import { rateLimited } from '../shared/errors.ts';

/*
 * Per-IP limits on what an anonymous or fresh account can repeat cheaply: registering accounts and
 * guessing join codes. Counters live in Postgres (rate-limiter-flexible's store, table rate_limits),
 * so every API instance enforces the same limit; graders prune expired rows (db/housekeeping.ts).
 */

export interface IpLimiter {
  /** Counts one attempt; 429 once the IP is over its limit. */
  consume(ip: string): Promise<void>;
  /** 429 if the IP is already over its limit, without counting. */
  check(ip: string): Promise<void>;
}

export interface IpLimits {
  registration: IpLimiter;
  joinFailure: IpLimiter;
}

function limiter(pool: pg.Pool, keyPrefix: string, points: number, seconds: number, what: string): IpLimiter {
  const store = new RateLimiterPostgres({
    storeClient: pool,
    storeType: 'pool',
    tableName: 'rate_limits',
    tableCreated: true,
    clearExpiredByTimeout: false,
    keyPrefix,
    points,
    duration: seconds,
  });
  const refuse = (res: RateLimiterRes) =>
    rateLimited(`Too many ${what} from this address; wait before trying again.`, res.msBeforeNext / 1000);
  return {
    async consume(ip) {
      try {
        await store.consume(ip);
      } catch (e) {
        // The library rejects with its result object when over the limit, with an Error when the store fails.
        if (e instanceof RateLimiterRes) throw refuse(e);
        throw e;
      }
    },
    async check(ip) {
      const res = await store.get(ip);
      if (res && res.consumedPoints >= points) throw refuse(res);
    },
  };
}

export function createIpLimits(pool: pg.Pool, config: Config): IpLimits {
  return {
    registration: limiter(pool, 'register', config.REGISTRATIONS_PER_HOUR, 3600, 'registrations'),
    joinFailure: limiter(pool, 'join', config.JOIN_FAILURES_PER_HOUR, 3600, 'wrong join codes'),
  };
}
