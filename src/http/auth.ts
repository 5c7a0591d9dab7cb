import { parseCookie, stringifySetCookie } from 'cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type client from 'prom-client';
import type { Db } from '../db/client.ts';
import { unauthenticated } from '../shared/errors.ts';
import { type Caller, prepareCallerLookups } from './caller.queries.ts';
import { CallerCache } from './caller-cache.ts';
import { hashToken } from './credentials.ts';

export type { Caller } from './caller.queries.ts';

export const SESSION_COOKIE = 'lab_session';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller, resolved once per request; null when anonymous. */
    caller(): Promise<Caller | null>;
    callerPromise?: Promise<Caller | null>;
  }
  interface FastifyInstance {
    callerCache: CallerCache;
  }
}

function bearerToken(header: string): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : null;
}

/**
 * The session cookie's value, parsed when asked for: only the session routes and the CSRF check of a
 * state-changing request need it, so no hook parses cookies on every request.
 */
export function sessionCookie(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  return header ? parseCookie(header)[SESSION_COOKIE] : undefined;
}

/** True when the request authenticates with its session cookie (the CSRF check applies). */
export function usesSessionCookie(request: FastifyRequest): boolean {
  return !request.headers.authorization && sessionCookie(request) !== undefined;
}

/** Sets the session cookie (HttpOnly, SameSite=Lax, whole site) or, with `null`, clears it. */
export function writeSessionCookie(
  reply: FastifyReply,
  session: { token: string; expires: Date; secure: boolean } | null,
) {
  const cookie = session
    ? { value: session.token, expires: session.expires, secure: session.secure }
    : { value: '', expires: new Date(0), secure: false };
  reply.header(
    'set-cookie',
    stringifySetCookie({ name: SESSION_COOKIE, ...cookie, httpOnly: true, sameSite: 'lax', path: '/' }),
  );
}

/**
 * `request.caller()`: the user behind the bearer token or session cookie, memoised per request, from
 * this instance's caller cache (http/caller-cache.ts) or one primary round trip. With read replicas
 * the lookup also reads the user's last write position, which changes with every write on any
 * instance, so the cache is off there. Returns the cache: its `tap` goes on the LISTEN connection.
 */
export function registerAuth(
  app: FastifyInstance,
  db: Db,
  withWritePosition = false,
  registry?: client.Registry,
): CallerCache {
  const lookups = prepareCallerLookups(db, withWritePosition);
  const cache = new CallerCache({ enabled: !withWritePosition, registry });
  app.decorate('callerCache', cache);
  app.decorateRequest('callerPromise', undefined);
  app.decorateRequest('caller', function (this: FastifyRequest) {
    this.callerPromise ??= resolveCaller(this);
    return this.callerPromise;
  });

  function resolveCaller(request: FastifyRequest): Promise<Caller | null> {
    // A bearer header decides alone: a bad token is not rescued by a cookie.
    const header = request.headers.authorization;
    if (header !== undefined) {
      const token = bearerToken(header);
      if (!token || token.length > 200) return Promise.resolve(null);
      const hash = hashToken(token);
      return cache.resolve(`t${hash}`, () => lookups.byToken(hash));
    }
    const cookie = sessionCookie(request);
    if (!cookie || cookie.length > 200) return Promise.resolve(null);
    const hash = hashToken(cookie);
    return cache.resolve(`s${hash}`, () => lookups.bySession(hash));
  }

  return cache;
}

/**
 * After a revocation has committed: this instance forgets the credential at once (the others do when
 * its NOTIFY arrives, within the cache's trust window).
 */
export function forgetCredential(request: FastifyRequest, credentialId: string) {
  request.server.callerCache.revoke(credentialId);
}

/** The caller, or 401. */
export async function requireCaller(request: FastifyRequest): Promise<Caller> {
  const caller = await request.caller();
  if (!caller) throw unauthenticated();
  return caller;
}
