import type { Db } from '../../db/client.ts';
import { isUniqueViolation } from '../../db/errors.ts';
import { hashPassword, verifyPassword } from '../../lib/passwords.ts';
import { AppError, notFound, rateLimited } from '../../shared/errors.ts';
import * as q from './auth.queries.ts';
import { newToken } from './tokens.ts';

export const LOGIN_WINDOW_SECONDS = 15 * 60;
/**
 * Failed sign-ins allowed within the window. Per email *and* address: a stranger elsewhere cannot
 * lock the owner out in 5 tries. Per email from all addresses: higher, it still stops a spread-out
 * guessing campaign on one account. Per address: stops one machine trying many accounts.
 */
export const MAX_FAILURES_PER_EMAIL_AND_IP = 5;
export const MAX_FAILURES_PER_EMAIL = 50;
export const MAX_FAILURES_PER_IP = 100;

export interface SessionResult {
  user: q.PublicUser;
  sessionToken: string;
  expiresAt: Date;
}

function sessionFor(ttlHours: number) {
  const { token, hash } = newToken('ls');
  return { token, hash, expiresAt: new Date(Date.now() + ttlHours * 3600_000) };
}

export async function register(
  db: Db,
  input: { email: string; password: string; name: string },
  ttlHours: number,
): Promise<SessionResult> {
  // Hash before opening the transaction: it is slow and needs no connection.
  const passwordHash = await hashPassword(input.password);
  const s = sessionFor(ttlHours);
  try {
    return await db.transaction(async (tx) => {
      const user = await q.insertUser(tx, { email: input.email.trim(), name: input.name, passwordHash });
      await q.insertSession(tx, { tokenHash: s.hash, userId: user.id, expiresAt: s.expiresAt });
      return { user, sessionToken: s.token, expiresAt: s.expiresAt };
    });
  } catch (err) {
    if (isUniqueViolation(err))
      throw new AppError(409, 'email_taken', 'An account with this email already exists.');
    throw err;
  }
}

/** Seconds until the oldest failure leaves the window. */
function secondsUntilWindowEnds(oldest: Date | null): number {
  const until = (oldest?.getTime() ?? Date.now()) + LOGIN_WINDOW_SECONDS * 1000;
  return (until - Date.now()) / 1000;
}

export async function login(
  db: Db,
  input: { email: string; password: string; ip: string },
  ttlHours: number,
): Promise<SessionResult> {
  const email = input.email.trim().toLowerCase();
  const failures = await q.selectLoginFailures(db, email, input.ip, LOGIN_WINDOW_SECONDS);
  const limited =
    failures.emailAndIp.count >= MAX_FAILURES_PER_EMAIL_AND_IP
      ? failures.emailAndIp
      : failures.email.count >= MAX_FAILURES_PER_EMAIL
        ? failures.email
        : failures.ip.count >= MAX_FAILURES_PER_IP
          ? failures.ip
          : null;
  if (limited) {
    throw rateLimited(
      'Too many failed sign-ins; wait before trying again.',
      secondsUntilWindowEnds(limited.oldest),
    );
  }
  const user = await q.selectOptionalUserByEmail(db, email);
  const ok = await verifyPassword(user?.passwordHash ?? null, input.password);
  if (!user || !ok) {
    await q.insertLoginFailure(db, email, input.ip);
    throw new AppError(401, 'invalid_credentials', 'Email or password is wrong.');
  }
  const s = sessionFor(ttlHours);
  await q.insertSessionForgettingFailures(db, email, {
    tokenHash: s.hash,
    userId: user.id,
    expiresAt: s.expiresAt,
  });
  const { id, name, createdAt } = user;
  return { user: { id, email: user.email, name, createdAt }, sessionToken: s.token, expiresAt: s.expiresAt };
}

export async function logout(db: Db, caller: q.Caller): Promise<void> {
  if (caller.via === 'session') await db.transaction((tx) => q.deleteSession(tx, caller.credentialId));
}

export async function createApiToken(db: Db, caller: q.Caller, name: string) {
  const { token, hash } = newToken('lt');
  const row = await q.insertApiToken(db, { tokenHash: hash, userId: caller.id, name });
  return { token, id: row.id };
}

export async function deleteApiToken(db: Db, caller: q.Caller, id: string) {
  if (!(await db.transaction((tx) => q.deleteApiToken(tx, id, caller.id)))) throw notFound('Token');
}
