import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGrader } from '../src/grading/grader.ts';
import { type Actor, anon, withTestApp } from './app.ts';
import {
  addMembers,
  buildWorld,
  createCourse,
  createExercise,
  createLesson,
  exerciseBody,
  insertUsers,
  type World,
} from './factories.ts';
import { closeTestSandboxes, testSandboxes } from './grading.ts';

/**
 * Every route of the course domain (and auth) × every kind of caller, with the status API.md implies:
 * anonymous 401, outsiders 404 on course-scoped resources, members whose role is not enough 403.
 */

// Load shedding is tested elsewhere; a busy test machine must not turn these requests into 503s.
const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });

type Who = 'anonymous' | 'outsider' | 'student' | 'ta' | 'instructor';
const WHO: Who[] = ['anonymous', 'outsider', 'student', 'ta', 'instructor'];

interface Row {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  route: string;
  /** Builds the concrete URL and body; may create fresh resources so rows do not disturb each other. */
  setup: (
    w: World,
    me: Actor | null,
  ) => Promise<{ url: string; body?: unknown }> | { url: string; body?: unknown };
  expect: [anonymous: number, outsider: number, student: number, ta: number, instructor: number];
}

let other: { joinCode: string };
let seq = 0;

const ROWS: Row[] = [
  {
    method: 'POST',
    route: '/auth/register',
    expect: [201, 201, 201, 201, 201],
    setup: () => ({
      url: '/auth/register',
      body: { email: `matrix-${++seq}@example.com`, password: 'long enough pw', name: 'M' },
    }),
  },
  {
    method: 'POST',
    route: '/auth/login',
    expect: [200, 200, 200, 200, 200],
    setup: (w, me) => ({
      url: '/auth/login',
      body: { email: (me ?? w.outsider).email, password: (me ?? w.outsider).password },
    }),
  },
  { method: 'GET', route: '/me', expect: [401, 200, 200, 200, 200], setup: () => ({ url: '/me' }) },
  {
    method: 'POST',
    route: '/auth/tokens',
    expect: [401, 201, 201, 201, 201],
    setup: () => ({ url: '/auth/tokens', body: { name: 'matrix' } }),
  },
  {
    method: 'DELETE',
    route: '/auth/tokens/:id',
    expect: [401, 204, 204, 204, 204],
    setup: async (_w, me) => {
      if (!me) return { url: '/auth/tokens/00000000-0000-0000-0000-000000000000' };
      const made = await me.req('POST', '/auth/tokens', { name: 'to delete' });
      return { url: `/auth/tokens/${made.json().id}` };
    },
  },
  {
    method: 'POST',
    route: '/courses',
    expect: [401, 201, 201, 201, 201],
    setup: () => ({ url: '/courses', body: { title: 'New' } }),
  },
  {
    method: 'GET',
    route: '/courses',
    expect: [401, 200, 200, 200, 200],
    setup: () => ({ url: '/courses?limit=5' }),
  },
  {
    method: 'POST',
    route: '/courses/join',
    expect: [401, 200, 200, 200, 200],
    setup: () => ({ url: '/courses/join', body: { joinCode: other.joinCode } }),
  },
  {
    method: 'GET',
    route: '/courses/:courseId',
    expect: [401, 404, 200, 200, 200],
    setup: (w) => ({ url: `/courses/${w.course.id}` }),
  },
  {
    method: 'PATCH',
    route: '/courses/:courseId',
    expect: [401, 404, 403, 403, 200],
    setup: (w) => ({ url: `/courses/${w.course.id}`, body: { description: 'edited' } }),
  },
  {
    method: 'GET',
    route: '/courses/:courseId/members',
    expect: [401, 404, 403, 200, 200],
    setup: (w) => ({ url: `/courses/${w.course.id}/members` }),
  },
  {
    method: 'PUT',
    route: '/courses/:courseId/members/:userId',
    expect: [401, 404, 403, 403, 200],
    setup: (w) => ({ url: `/courses/${w.course.id}/members/${w.student.id}`, body: { role: 'student' } }),
  },
  {
    method: 'POST',
    route: '/courses/:courseId/lessons',
    expect: [401, 404, 403, 201, 201],
    setup: (w) => ({ url: `/courses/${w.course.id}/lessons`, body: { title: 'L', body: '' } }),
  },
  {
    method: 'GET',
    route: '/lessons/:lessonId',
    expect: [401, 404, 200, 200, 200],
    setup: (w) => ({ url: `/lessons/${w.lesson.id}` }),
  },
  {
    method: 'PATCH',
    route: '/lessons/:lessonId',
    expect: [401, 404, 403, 200, 200],
    setup: (w) => ({ url: `/lessons/${w.lesson.id}`, body: { body: 'edited' } }),
  },
  {
    method: 'DELETE',
    route: '/lessons/:lessonId',
    expect: [401, 404, 403, 204, 204],
    setup: async (w) => ({ url: `/lessons/${(await createLesson(w.instructor, w.course.id)).id}` }),
  },
  {
    method: 'POST',
    route: '/lessons/:lessonId/exercises',
    expect: [401, 404, 403, 201, 201],
    setup: (w) => ({ url: `/lessons/${w.lesson.id}/exercises`, body: exerciseBody() }),
  },
  {
    method: 'GET',
    route: '/exercises/:exerciseId',
    expect: [401, 404, 200, 200, 200],
    setup: (w) => ({ url: `/exercises/${w.exercise.id}` }),
  },
  {
    method: 'PATCH',
    route: '/exercises/:exerciseId',
    expect: [401, 404, 403, 200, 200],
    setup: (w) => ({ url: `/exercises/${w.exercise.id}`, body: { maxScore: 12 } }),
  },
  {
    method: 'GET',
    route: '/courses/:courseId/gradebook',
    expect: [401, 404, 403, 200, 200],
    setup: (w) => ({ url: `/courses/${w.course.id}/gradebook` }),
  },
  {
    method: 'GET',
    route: '/courses/:courseId/gradebook?format=csv',
    expect: [401, 404, 403, 200, 200],
    setup: (w) => ({ url: `/courses/${w.course.id}/gradebook?format=csv` }),
  },
  {
    method: 'GET',
    route: '/courses/:courseId/progress',
    expect: [401, 404, 200, 200, 200],
    setup: (w) => ({ url: `/courses/${w.course.id}/progress` }),
  },
  // v1.1
  {
    method: 'DELETE',
    route: '/exercises/:exerciseId',
    expect: [401, 404, 403, 204, 204],
    setup: async (w) => ({ url: `/exercises/${(await createExercise(w.instructor, w.lesson.id)).id}` }),
  },
  {
    method: 'POST',
    route: '/exercises/:exerciseId/runs',
    expect: [401, 404, 200, 200, 200],
    setup: (w) => ({ url: `/exercises/${w.exercise.id}/runs`, body: { code: ADD } }),
  },
  {
    method: 'GET',
    route: '/runs/:runId',
    // Its author only: a run is a draft, not something staff grade.
    expect: [401, 404, 200, 404, 404],
    setup: () => ({ url: `/runs/${studentRunId}` }),
  },
  {
    method: 'PUT',
    route: '/exercises/:exerciseId/exceptions/:userId',
    expect: [401, 404, 403, 200, 200],
    setup: (w) => ({
      url: `/exercises/${w.exercise.id}/exceptions/${w.student.id}`,
      body: { extraAttempts: 2 },
    }),
  },
  {
    method: 'DELETE',
    route: '/exercises/:exerciseId/exceptions/:userId',
    expect: [401, 404, 403, 204, 204],
    setup: async (w) => {
      const url = `/exercises/${w.exercise.id}/exceptions/${w.student.id}`;
      await w.instructor.req('PUT', url, { extraAttempts: 1 });
      return { url };
    },
  },
  {
    method: 'GET',
    route: '/exercises/:exerciseId/exceptions',
    expect: [401, 404, 403, 200, 200],
    setup: (w) => ({ url: `/exercises/${w.exercise.id}/exceptions` }),
  },
  {
    method: 'DELETE',
    route: '/courses/:courseId/members/:userId',
    expect: [401, 404, 403, 403, 204],
    setup: async (w) => {
      const [userId] = await insertUsers(ctx.database.pool, 1, `member-${++seq}`);
      await addMembers(ctx.database.pool, w.course.id, [userId!]);
      return { url: `/courses/${w.course.id}/members/${userId}` };
    },
  },
  {
    method: 'POST',
    route: '/courses/:courseId/join-code',
    expect: [401, 404, 403, 403, 200],
    setup: (w) => ({ url: `/courses/${w.course.id}/join-code` }),
  },
  {
    method: 'POST',
    route: '/courses/:courseId/copy',
    expect: [401, 404, 403, 201, 201],
    setup: (w) => ({ url: `/courses/${w.course.id}/copy`, body: { title: 'Copy' } }),
  },
  {
    method: 'GET',
    route: '/courses/:courseId/export',
    expect: [401, 404, 403, 200, 200],
    setup: (w) => ({ url: `/courses/${w.course.id}/export` }),
  },
  {
    method: 'POST',
    route: '/courses/import',
    expect: [401, 201, 201, 201, 201],
    setup: async (w) => ({
      url: '/courses/import',
      body: (await w.instructor.req('GET', `/courses/${w.course.id}/export`)).json(),
    }),
  },
  // Last: with a bearer token logout only ends cookie sessions, so later rows are unaffected anyway.
  {
    method: 'POST',
    route: '/auth/logout',
    expect: [401, 204, 204, 204, 204],
    setup: () => ({ url: '/auth/logout' }),
  },
];

const ADD = 'function add(a, b) { return a + b; }';
let w: World;
let studentRunId: string;
let grader: { stop(): Promise<void> } | undefined;
beforeAll(async () => {
  // Runs answer 200 once graded: a grader takes them.
  grader = await startGrader(ctx.config, ctx.url, { sandboxes: testSandboxes() });
  w = await buildWorld(ctx.app, 'Matrix');
  other = await createCourse(w.instructor, { title: 'Other course' });
  const run = await w.student.req('POST', `/exercises/${w.exercise.id}/runs`, { code: ADD });
  studentRunId = run.json().run.id;
});
afterAll(async () => {
  await grader?.stop();
  await closeTestSandboxes();
});

const actor = (who: Who): Actor | null => (who === 'anonymous' ? null : w[who]);

describe.each(ROWS)('$method $route', (row) => {
  it.each(WHO.map((who, i) => [who, row.expect[i]!] as const))('%s → %i', async (who, status) => {
    const me = actor(who);
    const { url, body } = await row.setup(w, me);
    const res = me ? await me.req(row.method, url, body) : await anon(ctx.app, row.method, url, body);
    expect(res.statusCode, res.body).toBe(status);
    if (status >= 400)
      expect(res.json().error.code).toBe(
        { 401: 'unauthenticated', 403: 'forbidden', 404: 'not_found' }[status],
      );
  });
});

it('the matrix covers every course-domain and auth route the app registers', async () => {
  const doc = (await ctx.app.inject({ method: 'GET', url: '/docs' })).json() as {
    paths: Record<string, object>;
  };
  const mine = /^\/api\/v1\/(auth|me|courses|lessons|runs|exercises\/\{exerciseId\}($|\/(runs|exceptions)))/;
  const registered = Object.entries(doc.paths)
    .filter(([p]) => mine.test(p))
    .flatMap(([p, ops]) =>
      Object.keys(ops).map(
        (m) => `${m.toUpperCase()} ${p.slice('/api/v1'.length).replace(/\{(\w+)\}/g, ':$1')}`,
      ),
    );
  expect(registered.length).toBeGreaterThanOrEqual(ROWS.length - 1);
  const covered = new Set(ROWS.map((r) => `${r.method} ${r.route.split('?')[0]}`));
  const missing = registered.filter(
    (r) => !covered.has(r) && !r.includes('/submissions') && !r.includes('/regrade'),
  );
  expect(missing).toEqual([]);
});
