import { and, eq, gt, sql } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { apiTokens, sessions, users } from '../db/schema/index.ts';

export type UserRow = typeof users.$inferSelect;
export type PublicUser = Pick<UserRow, 'id' | 'email' | 'name' | 'createdAt'>;

export const publicUser = {
  id: users.id,
  email: users.email,
  name: users.name,
  createdAt: users.createdAt,
};

/**
 * Who is calling. Identity only: never a role or a membership, which every route reads from the
 * database with its own query, so a cached caller (http/caller-cache.ts) cannot outlive a role change.
 */
export interface Caller extends PublicUser {
  via: 'session' | 'token';
  credentialId: string;
  /** With read replicas: the WAL position of this user's last write (read-your-writes); null if none. */
  writeLsn?: string | null;
}

export interface CallerRow {
  caller: Caller;
  /** When the credential stops authenticating by itself (a session's expiry); null = never (a token). */
  expiresAt: Date | null;
}

/**
 * The user behind a session-cookie or bearer-token hash, or null. One round trip, on the primary; with
 * read replicas it also reads the user's last write position (src/db/replicas.ts).
 */
export function prepareCallerLookups(db: Db, withWritePosition = false) {
  const writeLsn = withWritePosition
    ? sql<string | null>`(select lsn::text from write_positions where user_id = ${users.id})`
    : sql<null>`null::text`;
  const bySession = db
    .select({ ...publicUser, credentialId: sessions.id, writeLsn, expiresAt: sessions.expiresAt })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(eq(sessions.tokenHash, sql.placeholder('hash')), gt(sessions.expiresAt, sql`now()`)))
    .prepare('caller_by_session');
  const byToken = db
    .select({ ...publicUser, credentialId: apiTokens.id, writeLsn })
    .from(apiTokens)
    .innerJoin(users, eq(users.id, apiTokens.userId))
    .where(eq(apiTokens.tokenHash, sql.placeholder('hash')))
    .prepare('caller_by_token');
  return {
    async bySession(hash: string): Promise<CallerRow | null> {
      const [row] = await bySession.execute({ hash });
      if (!row) return null;
      const { expiresAt, ...caller } = row;
      return { caller: { ...caller, via: 'session' }, expiresAt };
    },
    async byToken(hash: string): Promise<CallerRow | null> {
      const [row] = await byToken.execute({ hash });
      return row ? { caller: { ...row, via: 'token' }, expiresAt: null } : null;
    },
  };
}

export type CallerLookups = ReturnType<typeof prepareCallerLookups>;
