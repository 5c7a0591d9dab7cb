import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll } from 'vitest';
import { buildApp } from '../src/app.ts';
import { type Config, loadConfig } from '../src/config.ts';
import { connectDatabase, type Database } from '../src/db/client.ts';
import { createTestDatabase } from './db.ts';

export interface TestContext {
  app: FastifyInstance;
  database: Database;
  config: Config;
  url: string;
}

/** Registers beforeAll/afterAll that give the file its own database and app. */
export function withTestApp(
  overrides: Partial<Config> | ((url: string) => Partial<Config>) = {},
): TestContext {
  const ctx = {} as TestContext;
  let drop: () => Promise<void> = async () => {};
  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    ctx.url = db.url;
    ctx.config = loadConfig(
      {},
      {
        DATABASE_URL: db.url,
        LOG_LEVEL: 'silent',
        // A busy CI machine can show event-loop delay spikes at start-up; shedding is tested on its own.
        MAX_EVENT_LOOP_DELAY_MS: 0,
        // Every actor registers from 127.0.0.1 and test files submit in bursts; the abuse limits are
        // tested on their own, with their defaults.
        REGISTRATIONS_PER_HOUR: 1_000_000,
        JOIN_FAILURES_PER_HOUR: 1_000_000,
        SUBMISSIONS_PER_MINUTE: 1_000_000,
        ...(typeof overrides === 'function' ? overrides(db.url) : overrides),
      },
    );
    ctx.database = connectDatabase(ctx.config, db.url, 'test');
    ctx.app = await buildApp(ctx.config, ctx.database, { logger: false });
    await ctx.app.ready();
  });
  afterAll(async () => {
    await ctx.app?.close();
    await ctx.database?.close();
    await drop();
  });
  return ctx;
}

export const ORIGIN = 'http://localhost:80';

/** A signed-in user: cookie session plus a bearer token, with helpers to call the API as them. */
export interface Actor {
  id: string;
  email: string;
  name: string;
  password: string;
  cookie: string;
  token: string;
  /** Calls the API with the bearer token. */
  req(
    method: InjectOptions['method'],
    url: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<LightMyRequestResponse>;
}

let seq = 0;

export async function createActor(app: FastifyInstance, name = 'User'): Promise<Actor> {
  seq += 1;
  const email = `${name.toLowerCase().replace(/\W/g, '')}-${seq}-${Math.random().toString(36).slice(2, 8)}@example.com`;
  const password = 'correct horse battery';
  const reg = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/register',
    payload: { email, password, name },
  });
  if (reg.statusCode !== 201) throw new Error(`register failed: ${reg.statusCode} ${reg.body}`);
  const cookie = `lab_session=${reg.cookies.find((c) => c.name === 'lab_session')!.value}`;
  const tok = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/tokens',
    payload: { name: 'test' },
    headers: { cookie, origin: ORIGIN, host: 'localhost:80' },
  });
  if (tok.statusCode !== 201) throw new Error(`token failed: ${tok.statusCode} ${tok.body}`);
  const token = tok.json().token as string;
  const id = reg.json().user.id as string;
  return {
    id,
    email,
    name,
    password,
    cookie,
    token,
    req(method, url, body, headers = {}) {
      return app.inject({
        method,
        url: apiUrl(url),
        headers: { authorization: `Bearer ${token}`, ...headers },
        ...(body === undefined ? {} : { payload: body as object }),
      });
    },
  };
}

/** Paths in tests are written as in API.md, without the /api/v1 prefix. */
export const apiUrl = (url: string) => (url.startsWith('/api/') ? url : `/api/v1${url}`);

/** Calls the API with no credentials. */
export function anon(app: FastifyInstance, method: InjectOptions['method'], url: string, body?: unknown) {
  return app.inject({ method, url: apiUrl(url), ...(body === undefined ? {} : { payload: body as object }) });
}

/**
 * Sends a request again, as a client honouring Retry-After would, while it is refused because another
 * submit or run of the same user is being recorded at that moment (429 with Retry-After: 1; the
 * try-locks in submission.queries.ts and run.queries.ts). Bounded; each retry waits for the next turn
 * of the event loop rather than a second, so racing tests stay fast.
 */
export async function whileBusy<
  R extends { statusCode: number; headers: Record<string, unknown>; json(): unknown },
>(send: () => Promise<R>): Promise<R> {
  for (let attempt = 0; ; attempt++) {
    const res = await send();
    const busy =
      res.statusCode === 429 &&
      res.headers['retry-after'] === '1' &&
      /being (recorded|started)/.test((res.json() as { error?: { message?: string } }).error?.message ?? '');
    if (!busy || attempt >= 500) return res;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
