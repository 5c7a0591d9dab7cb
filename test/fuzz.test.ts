import fc from 'fast-check';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { ORIGIN, withTestApp } from './app.ts';
import { buildWorld, insertSubmission, type World } from './factories.ts';
import { routesFromTree } from './routes.ts';

/**
 * Property tests: random and malformed params, query strings, headers and bodies thrown at every
 * /api/v1 route never produce a 5xx (503 included: nothing here overloads the app), and every 4xx has
 * the {"error": {code, message}} shape. Routes are read from the app's router, so a new route is fuzzed
 * without touching this file.
 */

// Load shedding is tested elsewhere; a busy test machine must not turn these requests into 503s.
const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });

const RUNS = Number(process.env.FUZZ_RUNS) || 30;
const PREFIX = '/api/v1';

interface Route {
  method: string;
  path: string;
  params: string[];
  /** Top-level body fields from the route's schema, so bodies get past "unknown field" sometimes. */
  fields: string[];
  streaming: boolean;
}

let w: World;
let routes: Route[] = [];
let submissionId = '';
let runId = '';

beforeAll(async () => {
  w = await buildWorld(ctx.app, 'Fuzz');
  await insertSubmission(ctx.database.pool, {
    courseId: w.course.id,
    exerciseId: w.exercise.id,
    userId: w.student.id,
    status: 'passed',
    score: 10,
  });
  submissionId = (await ctx.database.pool.query('select id from submissions limit 1')).rows[0].id;
  runId = (
    await ctx.database.pool.query(
      `insert into runs (course_id, exercise_id, user_id, code, status)
       values ($1, $2, $3, 'x', 'passed') returning id`,
      [w.course.id, w.exercise.id, w.student.id],
    )
  ).rows[0].id;
  const doc = (await ctx.app.inject({ method: 'GET', url: '/docs' })).json() as {
    paths: Record<string, Record<string, { requestBody?: unknown }>>;
  };
  routes = routesFromTree(ctx.app.printRoutes({ commonPrefix: false }))
    .filter((r) => r.path.startsWith(`${PREFIX}/`) && r.method !== 'HEAD')
    .map(({ method, path }) => {
      const op = doc.paths[path.replace(/:(\w+)/g, '{$1}')]?.[method.toLowerCase()];
      const schema = (op?.requestBody as { content?: Record<string, { schema?: { properties?: object } }> })
        ?.content?.['application/json']?.schema;
      return {
        method,
        path,
        params: [...path.matchAll(/:(\w+)/g)].map((m) => m[1]!),
        fields: Object.keys(schema?.properties ?? {}),
        streaming: JSON.stringify(op ?? {}).includes('event-stream'),
      };
    });
});

const weird = fc.constantFrom(
  '',
  ' ',
  '..',
  '%00',
  '%',
  '%E0%A4%A',
  'null',
  '-1',
  '1e309',
  '\u0000',
  'x'.repeat(300),
);
const realIds = () =>
  fc.constantFrom(
    w.course.id,
    w.lesson.id,
    w.exercise.id,
    w.student.id,
    w.instructor.id,
    submissionId,
    runId,
  );

const paramValue = () =>
  fc.oneof(
    realIds().map(encodeURIComponent),
    fc.uuid().map(encodeURIComponent),
    fc.string({ maxLength: 40 }).map(encodeURIComponent),
    weird,
  );

const queryString = fc.oneof(
  fc.constant(''),
  fc
    .dictionary(
      fc.oneof(fc.constantFrom('limit', 'cursor', 'format', 'userId', 'status'), fc.string({ maxLength: 8 })),
      fc.oneof(
        fc.string({ maxLength: 30 }),
        fc.integer({ min: -5, max: 200 }).map(String),
        fc.constantFrom(
          'csv',
          'json',
          'WyJ4IiwieSJd',
          'W10',
          'WzEsIjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCJd',
        ),
      ),
      { maxKeys: 3 },
    )
    .map((d) => `?${new URLSearchParams(d).toString()}`),
  fc.constantFrom('?limit=1&limit=2', '?%zz=1', '?cursor=%', '?format[]=csv', '?=&&='),
);

type Auth =
  | 'none'
  | 'instructorToken'
  | 'studentToken'
  | 'outsiderToken'
  | 'garbage'
  | 'cookie'
  | 'cookieNoOrigin';
const authArb = fc.constantFrom<Auth>(
  'none',
  'instructorToken',
  'studentToken',
  'outsiderToken',
  'garbage',
  'cookie',
  'cookieNoOrigin',
);

function authHeaders(auth: Auth, garbage: string): Record<string, string> {
  switch (auth) {
    case 'none':
      return {};
    case 'instructorToken':
      return { authorization: `Bearer ${w.instructor.token}` };
    case 'studentToken':
      return { authorization: `Bearer ${w.student.token}` };
    case 'outsiderToken':
      return { authorization: `Bearer ${w.outsider.token}` };
    case 'garbage':
      return garbage.length % 2
        ? { authorization: garbage.replace(/[\r\n]/g, '') }
        : { cookie: `lab_session=${encodeURIComponent(garbage)}; x=%zz; =` };
    case 'cookie':
      return { cookie: w.ta.cookie, origin: ORIGIN, host: 'localhost:80' };
    case 'cookieNoOrigin':
      return { cookie: w.ta.cookie, referer: garbage.replace(/[\r\n]/g, '') };
  }
}

const contentType = fc.oneof(
  fc.constantFrom(
    undefined,
    'application/json',
    'application/json; charset=utf-8',
    'APPLICATION/JSON',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/json; charset=latin1',
  ),
  fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, '')),
);

const bodyFor = (fields: string[]) =>
  fc.oneof(
    fc.constant(undefined),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 200 }),
    fc.constantFrom('{', '{"a":', '[1,', 'nul', '{"title":"x",}', '\u0000', '{}', '[]', 'null', '"x"'),
    // Known fields with random values: gets past "unknown field" and into the deeper checks.
    (fields.length > 0
      ? fc.dictionary(fc.constantFrom(...fields), fc.jsonValue({ maxDepth: 3 }), { maxKeys: fields.length })
      : fc.constant({})
    ).map((o) => JSON.stringify(o)),
  );

async function send(opts: InjectOptions): Promise<LightMyRequestResponse> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    // A valid run waits for a grader (none here) up to its tests' time limits + 5 s, then answers 202.
    timer = setTimeout(() => reject(new Error(`no response in 20 s: ${opts.method} ${opts.url}`)), 20_000);
  });
  try {
    return await Promise.race([ctx.app.inject(opts), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function checkResponse(res: LightMyRequestResponse, what: string) {
  expect(res.statusCode, `${what} → ${res.statusCode} ${res.body.slice(0, 300)}`).toBeLessThan(500);
  if (res.statusCode >= 400) {
    const body = JSON.parse(res.body);
    expect(typeof body.error?.code, what).toBe('string');
    expect(typeof body.error?.message, what).toBe('string');
  }
}

describe('fuzzing every /api/v1 route', () => {
  it('finds the routes from the router', () => {
    expect(routes.length).toBeGreaterThanOrEqual(22);
    const names = routes.map((r) => `${r.method} ${r.path}`);
    expect(names).toContain('PUT /api/v1/courses/:courseId/members/:userId');
    // v1.1: runs, exceptions, course management and reuse are fuzzed like the rest.
    for (const name of [
      'POST /api/v1/exercises/:exerciseId/runs',
      'GET /api/v1/runs/:runId',
      'PUT /api/v1/exercises/:exerciseId/exceptions/:userId',
      'DELETE /api/v1/exercises/:exerciseId/exceptions/:userId',
      'GET /api/v1/exercises/:exerciseId/exceptions',
      'DELETE /api/v1/exercises/:exerciseId',
      'DELETE /api/v1/courses/:courseId/members/:userId',
      'POST /api/v1/courses/:courseId/join-code',
      'POST /api/v1/courses/:courseId/copy',
      'GET /api/v1/courses/:courseId/export',
      'POST /api/v1/courses/import',
    ])
      expect(names).toContain(name);
    expect(routesFromTree('├── /a (GET)\n│   └── /:id (PUT, DELETE)\n└── /b')).toEqual([
      { method: 'GET', path: '/a' },
      { method: 'PUT', path: '/a/:id' },
      { method: 'DELETE', path: '/a/:id' },
    ]);
  });

  it('never answers 5xx, and every 4xx has the error shape', async () => {
    for (const route of routes) {
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            params: fc.tuple(...route.params.map(() => paramValue()), fc.constant('')),
            query: queryString,
            auth: authArb,
            garbage: fc.string({ maxLength: 60 }),
            contentType,
            body: bodyFor(route.fields),
            requestId: fc.option(fc.string({ maxLength: 20 }).map((s) => s.replace(/[\r\n]/g, ''))),
          }),
          async (input) => {
            // An authenticated event stream stays open by design; its refusals are still fuzzed.
            const auth = route.streaming && input.auth !== 'garbage' ? 'none' : input.auth;
            let i = 0;
            const url = route.path.replace(/:\w+/g, () => input.params[i++]!) + input.query;
            const headers: Record<string, string> = { ...authHeaders(auth, input.garbage) };
            if (input.contentType !== undefined) headers['content-type'] = input.contentType;
            if (input.requestId !== null) headers['x-request-id'] = input.requestId;
            const res = await send({
              method: route.method as InjectOptions['method'],
              url,
              headers,
              ...(input.body === undefined ? {} : { payload: input.body }),
            });
            checkResponse(res, `${route.method} ${url} [${auth}]`);
          },
        ),
        { numRuns: RUNS },
      );
    }
  });
});
