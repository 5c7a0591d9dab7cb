import { Type } from '@sinclair/typebox';
import { and, eq, sql } from 'drizzle-orm';
import type { Tx } from '../../db/client.ts';
import { Col, rowsOf, selectRows } from '../../db/rows.ts';
import { apiTokens, loginFailures, sessions, users } from '../../db/schema/index.ts';
import { publicUser, type UserRow } from '../../http/caller.queries.ts';

// The caller lookup is http-level (every route needs it); its types are re-exported for the modules.
export type { Caller, PublicUser, UserRow } from '../../http/caller.queries.ts';

export async function insertUser(tx: Tx, values: { email: string; name: string; passwordHash: string }) {
  const [row] = await tx.insert(users).values(values).returning(publicUser);
  return row!;
}

export async function selectOptionalUserByEmail(tx: Tx, email: string): Promise<UserRow | null> {
  const [row] = await tx.select().from(users).where(sql`lower(${users.email}) = lower(${email})`).limit(1);
  return row ?? null;
}

export async function insertSession(tx: Tx, values: { tokenHash: string; userId: string; expiresAt: Date }) {
  await tx.insert(sessions).values(values);
}

// Deleting a session or token NOTIFYs lab_credentials with its id, by a trigger (migration 0007), in the
// same transaction: every instance forgets its cached caller and ends the event streams opened with it.
export async function deleteSession(tx: Tx, id: string) {
  await tx.delete(sessions).where(eq(sessions.id, id));
}

export async function insertApiToken(tx: Tx, values: { tokenHash: string; userId: string; name: string }) {
  const [row] = await tx.insert(apiTokens).values(values).returning({ id: apiTokens.id });
  return row!;
}

/** Deletes the caller's own token; false when no such token belongs to them. */
export async function deleteApiToken(tx: Tx, id: string, userId: string): Promise<boolean> {
  const rows = await tx
    .delete(apiTokens)
    .where(and(eq(apiTokens.id, id), eq(apiTokens.userId, userId)))
    .returning({ id: apiTokens.id });
  return rows.length > 0;
}

export interface FailureWindow {
  count: number;
  oldest: Date | null;
}

const failureRows = rowsOf(
  Type.Object({
    pair_count: Col.int,
    pair_oldest: Col.nullable(Col.timestamp),
    email_count: Col.int,
    email_oldest: Col.nullable(Col.timestamp),
    ip_count: Col.int,
    ip_oldest: Col.nullable(Col.timestamp),
  }),
  'login failures',
);

/** Failed logins within the window for this email from this IP, for this email, and from this IP; one round trip. */
export async function selectLoginFailures(
  tx: Tx,
  email: string,
  ip: string,
  windowSeconds: number,
): Promise<{ emailAndIp: FailureWindow; email: FailureWindow; ip: FailureWindow }> {
  const since = sql`now() - make_interval(secs => ${windowSeconds})`;
  const [r] = await selectRows(
    tx,
    failureRows,
    sql`
    with by_email as (select ip, at from ${loginFailures} where email = ${email} and at > ${since}),
         by_ip as (select at from ${loginFailures} where ip = ${ip} and at > ${since})
    select
      (select count(*)::int from by_email where ip = ${ip}) as pair_count,
      (select min(at) from by_email where ip = ${ip}) as pair_oldest,
      (select count(*)::int from by_email) as email_count,
      (select min(at) from by_email) as email_oldest,
      (select count(*)::int from by_ip) as ip_count,
      (select min(at) from by_ip) as ip_oldest`,
  );
  if (!r) throw new Error('login failures: no row');
  const window = (count: number, oldest: string | null) => ({
    count,
    oldest: oldest ? new Date(oldest) : null,
  });
  return {
    emailAndIp: window(r.pair_count, r.pair_oldest),
    email: window(r.email_count, r.email_oldest),
    ip: window(r.ip_count, r.ip_oldest),
  };
}

export async function insertLoginFailure(tx: Tx, email: string, ip: string) {
  await tx.insert(loginFailures).values({ email, ip });
}

/**
 * A successful sign-in in one statement (its own transaction, one round trip): the email's failures are
 * forgotten and the session stored together. As a transaction of two statements, its connection was
 * held through the gaps in which the API process got to each result.
 */
export async function insertSessionForgettingFailures(
  tx: Tx,
  email: string,
  values: { tokenHash: string; userId: string; expiresAt: Date },
) {
  await tx.execute(sql`
    with forgotten as (delete from ${loginFailures} where ${loginFailures.email} = ${email})
    insert into ${sessions} (token_hash, user_id, expires_at)
    values (${values.tokenHash}, ${values.userId}, ${values.expiresAt.toISOString()}::timestamptz)`);
}
