import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '../db/client.ts';
import { type Caller, prepareCallerLookups } from '../modules/auth/auth.queries.ts';
import { hashToken } from '../modules/auth/tokens.ts';
import { unauthenticated } from './errors.ts';

export const SESSION_COOKIE = 'lab_session';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller, resolved once per request; null when anonymous. */
    caller(): Promise<Caller | null>;
    callerPromise?: Promise<Caller | null>;
  }
}

function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : null;
}

/** True when the request authenticates with its session cookie (the CSRF check applies). */
export function usesSessionCookie(request: FastifyRequest): boolean {
  return !request.headers.authorization && typeof request.cookies?.[SESSION_COOKIE] === 'string';
}

export function registerAuth(app: FastifyInstance, db: Db, withWritePosition = false) {
  const lookups = prepareCallerLookups(db, withWritePosition);
  app.decorateRequest('callerPromise', undefined);
  app.decorateRequest('caller', function (this: FastifyRequest) {
    this.callerPromise ??= resolveCaller(this);
    return this.callerPromise;
  });

  async function resolveCaller(request: FastifyRequest): Promise<Caller | null> {
    // A bearer header decides alone: a bad token is not rescued by a cookie.
    if (request.headers.authorization !== undefined) {
      const token = bearerToken(request);
      return token && token.length <= 200 ? lookups.byToken(hashToken(token)) : null;
    }
    const cookie = request.cookies?.[SESSION_COOKIE];
    if (!cookie || cookie.length > 200) return null;
    return lookups.bySession(hashToken(cookie));
  }
}

/** The caller, or 401. */
export async function requireCaller(request: FastifyRequest): Promise<Caller> {
  const caller = await request.caller();
  if (!caller) throw unauthenticated();
  return caller;
}
