import { bigint, integer, pgTable, varchar } from 'drizzle-orm/pg-core';

// Counters of rate-limiter-flexible's Postgres store (http/rate-limits.ts): per IP for registration and
// join codes, shared by every API instance. The library's own layout; created here, not by the library.
export const rateLimits = pgTable('rate_limits', {
  key: varchar('key', { length: 255 }).primaryKey(),
  points: integer('points').notNull().default(0),
  expire: bigint('expire', { mode: 'number' }),
});
