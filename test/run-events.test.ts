import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startGrader } from '../src/grading/grader.ts';
import { withTestApp } from './app.ts';
import { buildWorld, type World } from './factories.ts';
import { closeTestSandboxes, testSandboxes } from './grading.ts';
import { openStream, type TestStream } from './sse.ts';

/**
 * A run not done within the request's wait: 202 queued, then `run.updated` on /events to its author
 * only. A short request timeout bounds the wait (the request must be answered before it).
 */
const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0, REQUEST_TIMEOUT_MS: 1500 });
let w: World;
let base: string;
let grader: { stop(): Promise<void> } | undefined;
const open: TestStream[] = [];

beforeAll(async () => {
  w = await buildWorld(ctx.app, 'RunEv');
  await ctx.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(ctx.app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const s of open) s.close();
  await grader?.stop();
  await closeTestSandboxes();
});

const stream = async (token: string) => {
  const s = await openStream(base, { authorization: `Bearer ${token}` });
  open.push(s);
  return s;
};
const runEvents = (s: TestStream) => s.events.filter((e) => e.event === 'run.updated');

it('answers 202 queued when no grader is free, then sends run.updated to the author only', async () => {
  const student = await stream(w.student.token);
  const ta = await stream(w.ta.token);
  const res = await w.student.req('POST', `/exercises/${w.exercise.id}/runs`, {
    code: 'function add(a, b) { return a + b; }',
  });
  expect(res.statusCode, res.body).toBe(202);
  const queued = res.json().run;
  expect(queued).toMatchObject({ status: 'queued', results: [], message: null });

  grader = await startGrader(ctx.config, ctx.url, { sandboxes: testSandboxes() });
  await student.waitFor((s) => runEvents(s).some((e) => JSON.parse(e.data).run.status === 'passed'));
  const done = JSON.parse(runEvents(student).at(-1)!.data).run;
  expect(done).toMatchObject({ id: queued.id, status: 'passed' });
  expect((await w.student.req('GET', `/runs/${queued.id}`)).json().run).toEqual(done);

  // A submission event to the TA afterwards proves their stream was live; it never had the run.
  const sub = await w.student.req('POST', `/exercises/${w.exercise.id}/submissions`, {
    code: 'function add(a, b) { return a + b; }',
  });
  const subId = sub.json().submission.id;
  await ta.waitFor((s) =>
    s.events.some((e) => e.event === 'submission.updated' && JSON.parse(e.data).submission.id === subId),
  );
  expect(runEvents(ta)).toEqual([]);
  expect(ta.events.map((e) => e.data).join('\n')).not.toContain(queued.id);
});
