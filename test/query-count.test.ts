import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRADEBOOK_BATCH } from '../src/modules/gradebook/gradebook.queries.ts';
import { type Actor, withTestApp } from './app.ts';
import { addMembers, buildWorld, insertSubmission, insertUsers, type World } from './factories.ts';

/**
 * Counts the SQL statements each read issues, in a small course and in a big one (many lessons,
 * exercises, members, submissions). The count must be a small constant, the same for both: a
 * per-row query (N+1) would grow with the course.
 *
 * How: every pg client the app's pools hand out is remembered ('acquire'), and Client#query is
 * wrapped to count calls on those clients while a request is being measured. That counts exactly
 * what goes over the wire (BEGIN/COMMIT included), whatever the query layer above does.
 */

// Load shedding is tested elsewhere; a busy test machine must not turn these requests into 503s.
const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });

const appClients = new WeakSet<object>();
const heavyClients = new WeakSet<object>();
let counting = false;
let count = 0;
let heavyCount = 0;
const original = pg.Client.prototype.query;

beforeAll(() => {
  for (const pool of [ctx.database.pool, ctx.database.heavyPool])
    pool.on('acquire', (client) => appClients.add(client));
  ctx.database.heavyPool.on('acquire', (client) => heavyClients.add(client));
  // biome-ignore lint/suspicious/noExplicitAny: wrapping pg's overloaded method
  pg.Client.prototype.query = function (this: pg.Client, ...args: any[]) {
    if (counting && appClients.has(this)) count++;
    if (counting && heavyClients.has(this)) heavyCount++;
    // biome-ignore lint/suspicious/noExplicitAny: pg's overloads
    return (original as any).apply(this, args);
  } as typeof original;
});
afterAll(() => {
  pg.Client.prototype.query = original;
});

async function cacheHits(): Promise<number> {
  const metric = ctx.app.deps.metrics.registry.getSingleMetric('lab_caller_lookups_total');
  return (await metric!.get()).values.find((v) => v.labels.result === 'hit')?.value ?? 0;
}

/**
 * The statements of one request. `cached`: the caller comes from the instance's caller cache (the hot
 * path; the request is repeated until it was a cache hit, since the cache is only trusted while its
 * LISTEN path is proven live), else the cache is emptied first and the caller is looked up.
 */
async function statements(
  actor: Actor,
  url: string,
  caller: 'cached' | 'looked up' = 'cached',
  send: { method: string; body?: unknown; status: number } = { method: 'GET', status: 200 },
): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    if (caller === 'looked up') ctx.app.callerCache.clear();
    else await actor.req('GET', '/me');
    const hits = await cacheHits();
    count = 0;
    heavyCount = 0;
    counting = true;
    try {
      const res = await actor.req(send.method, url, send.body);
      expect(res.statusCode, res.body).toBe(send.status);
    } finally {
      counting = false;
    }
    const hit = (await cacheHits()) > hits;
    if (hit === (caller === 'cached')) return count;
    if (attempt >= 50) throw new Error(`the caller was never ${caller}`);
  }
}

/** Grows a world to `lessons` lessons × `perLesson` exercises, `students` more students with submissions. */
async function grow(w: World, lessons: number, perLesson: number, students: number) {
  const pool = ctx.database.pool;
  await pool.query(
    `with l as (
       insert into lessons (course_id, title, body, position)
       select $1, 'Lesson ' || i, 'body', i from generate_series(1, $2::int) i returning id
     )
     insert into exercises (course_id, lesson_id, title, language, entrypoint, tests, max_score, limits)
     select $1, l.id, 'Ex ' || j, 'javascript', 'f',
            '[{"name":"t","kind":"call","args":[],"expected":1,"hidden":true}]', 10, '{"timeMs":2000,"memoryMb":64}'
     from l, generate_series(1, $3::int) j`,
    [w.course.id, lessons, perLesson],
  );
  const ids = await insertUsers(pool, students);
  await addMembers(pool, w.course.id, ids);
  const { rows } = await pool.query<{ id: string }>('select id from exercises where course_id = $1', [
    w.course.id,
  ]);
  for (const userId of [w.student.id, ...ids.slice(0, 20)])
    for (const e of rows.slice(0, 30))
      await insertSubmission(pool, {
        courseId: w.course.id,
        exerciseId: e.id,
        userId,
        status: 'failed',
        score: 5,
      });
  // The student is in many courses too (GET /courses).
  for (let i = 0; i < 30; i++) {
    const c = (await w.instructor.req('POST', '/courses', { title: `Many ${i}` })).json().course;
    await addMembers(pool, c.id, [w.student.id]);
  }
}

/** Students per world, for the gradebook's FETCHes: the small world has 1, the big one 301. */
const STUDENTS = new Map<World, number>();
/** The gradebook's statements: role check, begin, the columns, declare, a FETCH per batch, commit. */
const gradebookStatements = (w: World) => 5 + Math.floor(STUDENTS.get(w)! / GRADEBOOK_BATCH) + 1;

// Statements per request with the caller cached (the hot path); a looked-up caller adds one. Each is
// the same for a small and a big course, but the gradebook's FETCHes, one per GRADEBOOK_BATCH students.
const READS: [string, (w: World) => string, 'student' | 'ta', number | ((w: World) => number)][] = [
  ['GET /courses/:id', (w) => `/courses/${w.course.id}`, 'student', 1],
  ['GET /courses', () => '/courses?limit=100', 'student', 1],
  ['GET /lessons/:id', (w) => `/lessons/${w.lesson.id}`, 'student', 1],
  ['GET /exercises/:id', (w) => `/exercises/${w.exercise.id}`, 'student', 1],
  ['GET /courses/:id/members', (w) => `/courses/${w.course.id}/members?limit=100`, 'ta', 2],
  // The gradebook, JSON or CSV, is read in one snapshot, its students through a cursor.
  ['GET /courses/:id/gradebook', (w) => `/courses/${w.course.id}/gradebook`, 'ta', gradebookStatements],
  [
    'GET /courses/:id/gradebook?format=csv',
    (w) => `/courses/${w.course.id}/gradebook?format=csv`,
    'ta',
    gradebookStatements,
  ],
  ['GET /courses/:id/progress', (w) => `/courses/${w.course.id}/progress`, 'student', 2],
];

let small: World;
let big: World;
beforeAll(async () => {
  [small, big] = await Promise.all([buildWorld(ctx.app, 'Small'), buildWorld(ctx.app, 'Big')]);
  // The big world's lesson gets many exercises too.
  await ctx.database.pool.query(
    `insert into exercises (course_id, lesson_id, title, language, tests, max_score, limits)
     select $1, $2, 'Extra ' || i, 'python', '[{"name":"t","kind":"io","stdin":"","stdout":"","hidden":false}]', 1,
            '{"timeMs":2000,"memoryMb":64}' from generate_series(1, 40) i`,
    [big.course.id, big.lesson.id],
  );
  await grow(big, 40, 5, 300);
  STUDENTS.set(small, 1).set(big, 301);
});

describe('statements per request do not grow with the course', () => {
  it.each(READS)('%s, the caller cached', async (name, url, who, expected) => {
    const count = (w: World) => (typeof expected === 'number' ? expected : expected(w));
    const s = await statements(small[who], url(small));
    const b = await statements(big[who], url(big));
    if (process.env.SHOW_COUNTS) console.log(`${name}: ${b} statements`);
    expect(s).toBe(count(small));
    expect(b).toBe(count(big));
    // Without the cache (first request of a credential, or the cache not trusted): one more, the lookup.
    expect(await statements(big[who], url(big), 'looked up')).toBe(count(big) + 1);
  });

  it('the gradebook runs on the heavy pool; light reads do not', async () => {
    await statements(big.ta, `/courses/${big.course.id}/gradebook`);
    // Everything but the role check: begin, the columns, declare, the FETCHes, commit.
    expect(heavyCount).toBe(gradebookStatements(big) - 1);
    await statements(big.student, `/courses/${big.course.id}`);
    expect(heavyCount).toBe(0);
  });

  it('a submit is two statements, no transaction left open between them: the access, then gate + limits + submission + job', async () => {
    const url = `/exercises/${big.exercise.id}/submissions`;
    const submit = { method: 'POST', body: { code: 'function f() { return 1; }' }, status: 202 };
    expect(await statements(big.student, url, 'cached', submit)).toBe(2);
  });

  it('the big world really is big', async () => {
    const detail = (await big.student.req('GET', `/courses/${big.course.id}`)).json();
    expect(detail.lessons).toHaveLength(41);
    const gb = (await big.ta.req('GET', `/courses/${big.course.id}/gradebook`)).json();
    expect(gb.rows.length).toBe(301);
    expect(gb.exercises.length).toBe(241);
    expect((await big.student.req('GET', `/lessons/${big.lesson.id}`)).json().exercises).toHaveLength(41);
    expect((await big.student.req('GET', '/courses?limit=100')).json().items).toHaveLength(31);
  });
});
