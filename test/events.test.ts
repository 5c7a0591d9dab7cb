import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.ts';
import { connectDatabase, type Database } from '../src/db/client.ts';
import { startGrader } from '../src/grading/grader.ts';
import { recordOutcome } from '../src/grading/queue.ts';
import { parseCursor } from '../src/realtime/event-cursor.ts';
import { createActor, withTestApp } from './app.ts';
import { buildWorld, createExercise, type World } from './factories.ts';
import { claimSubmissionJob } from './grading.ts';
import { openStream, type TestStream } from './sse.ts';
import { until } from './wait.ts';

const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0, SSE_HEARTBEAT_MS: 150, MAX_SSE_STREAMS: 6 });
let w: World;
let urlA: string;
let urlB: string;
let appB: FastifyInstance;
let databaseB: Database;
let grader: { stop(): Promise<void> };
const open: TestStream[] = [];

const listen = async (app: FastifyInstance) => {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
};
const auth = (a: { token: string }, extra: Record<string, string> = {}) => ({
  authorization: `Bearer ${a.token}`,
  ...extra,
});
async function stream(base: string, headers: Record<string, string>) {
  const s = await openStream(base, headers);
  open.push(s);
  return s;
}
/** The student's stream on instance A, let in. */
async function studentStreamOnA() {
  const s = await stream(urlA, auth(w.student));
  expect(s.status).toBe(200);
  return s;
}
/** Streams open on an instance, as its /metrics reports them. */
async function streamsOn(app: FastifyInstance) {
  const body = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  return Number(/^lab_sse_streams (\d+)$/m.exec(body)?.[1]);
}
const updatesOf = (s: TestStream, id: string) =>
  s.events.filter((e) => e.event === 'submission.updated' && JSON.parse(e.data).submission.id === id);
/** The cursor's `after` written with a submission's last update on a stream. */
const laterEventId = (s: TestStream, id: string) => parseCursor(updatesOf(s, id).at(-1)!.id)!.after;

/** Grades a submission by hand through the queue (as a grader would), to control the outcome. */
async function gradeByHand(submissionId: string, hiddenMessage: string) {
  const job = await claimSubmissionJob(ctx.database.pool, submissionId);
  return recordOutcome(ctx.database.db, job, {
    status: 'failed',
    score: 5,
    message: null,
    infrastructure: false,
    results: [
      { name: 'small', passed: true, hidden: false, message: null, durationMs: 1, output: null, points: 1 },
      {
        name: 'echo',
        passed: false,
        hidden: true,
        message: hiddenMessage,
        durationMs: 1,
        output: null,
        points: 1,
      },
    ],
  });
}

/**
 * The student's stream on A, two submissions to a new exercise, and an event id taken (by the early
 * result's transaction, which has not committed) before the later result commits and is delivered.
 */
async function laterSentWhileEarlyOpen() {
  const s = await studentStreamOnA();
  const ex = await createExercise(w.instructor, w.lesson.id);
  const submit = async (code: string) =>
    (await w.student.req('POST', `/exercises/${ex.id}/submissions`, { code })).json().submission.id as string;
  const early = await submit('early');
  const later = await submit('later');
  const { rows } = await ctx.database.pool.query<{ id: string }>(
    `select nextval(pg_get_serial_sequence('events', 'id'))::text as id`,
  );
  await gradeByHand(later, 'x');
  await s.waitFor((x) => updatesOf(x, later).some((e) => e.data.includes('"failed"')));
  return { s, early, later, lateId: Number(rows[0]!.id) };
}

beforeAll(async () => {
  w = await buildWorld(ctx.app, 'Ev');
  urlA = await listen(ctx.app);
  databaseB = connectDatabase(ctx.config, ctx.url, 'test-b');
  appB = await buildApp(ctx.config, databaseB, { logger: false });
  urlB = await listen(appB);
});

// Each test starts with no stream on A or B: the hubs count a stream until the server sees its socket
// close, and MAX_SSE_STREAMS (6 here) refuses streams past that count.
afterEach(async () => {
  for (const s of open.splice(0)) s.close();
  await until(
    async () => (await streamsOn(ctx.app)) === 0 && (await streamsOn(appB)) === 0,
    'the closed streams to leave both hubs',
  );
});

afterAll(async () => {
  await grader?.stop();
  await appB?.close();
  await databaseB?.close();
});

describe('GET /events', () => {
  it('needs a signed-in user', async () => {
    const s = await openStream(urlA);
    expect(s.status).toBe(401);
    expect(JSON.parse(s.body).error.code).toBe('unauthenticated');
  });

  it('delivers a result graded via instance B to streams on instance A, masked per recipient', async () => {
    // Polling once a minute: each result within the wait below means the submit woke the grader (B's
    // LISTEN connection, after the commit) and the grader announced its verdict after recording it.
    grader = await startGrader(ctx.config, ctx.url, { pollMs: 60_000 });
    const student = await stream(urlA, auth(w.student));
    const ta = await stream(urlA, auth(w.ta));
    const outsider = await stream(urlA, auth(w.outsider));
    expect(student.status).toBe(200);
    expect(student.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(student.retries[0]).toBeGreaterThan(0);

    const started = Date.now();
    const res = await appB.inject({
      method: 'POST',
      url: `/api/v1/exercises/${w.exercise.id}/submissions`,
      headers: auth(w.student),
      payload: {
        code: 'function add(a, b) { return a + b; }\nconsole.log(typeof stdin === "string" ? "nope" : "");',
      },
    });
    expect(res.statusCode).toBe(202);
    const id = res.json().submission.id as string;
    await student.waitFor((s) => updatesOf(s, id).length > 0);
    const latencyMs = Date.now() - started;
    await ta.waitFor((s) => updatesOf(s, id).length > 0);
    console.log(`first submit (B) → SSE event (A), cold sandbox: ${latencyMs} ms`);

    const mine = updatesOf(student, id)[0]!;
    expect(Number(mine.id)).toBeGreaterThan(0);
    const sub = JSON.parse(mine.data).submission;
    expect(sub).toMatchObject({ id, userId: w.student.id, status: 'failed', score: 5 });
    const hiddenForStudent = sub.results.find((r: { hidden: boolean }) => r.hidden);
    expect(hiddenForStudent.message).toBeNull();
    const hiddenForTa = JSON.parse(updatesOf(ta, id)[0]!.data).submission.results.find(
      (r: { hidden: boolean }) => r.hidden,
    );
    expect(typeof hiddenForTa.message).toBe('string');
    // The outsider only hears heartbeats.
    await outsider.waitFor((s) => s.comments.length > 0);
    expect(outsider.events).toHaveLength(0);

    // Warm (sandbox workers started): submit on B → event on A.
    const warm: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = Date.now();
      const r = await appB.inject({
        method: 'POST',
        url: `/api/v1/exercises/${w.exercise.id}/submissions`,
        headers: auth(w.student),
        payload: { code: `function add(a, b) { return a + b; } // ${i}` },
      });
      const sid = r.json().submission.id as string;
      await student.waitFor((s) => updatesOf(s, sid).length > 0);
      warm.push(Date.now() - t);
    }
    warm.sort((a, b) => a - b);
    console.log(`warm submit (B) → SSE event (A): median ${warm[2]} ms, max ${warm[4]} ms`);

    // A regrade on B wakes the grader too (after its commit): the first submission's new verdict
    // reaches A's streams long before the grader's next poll.
    const regrade = await appB.inject({
      method: 'POST',
      url: `/api/v1/exercises/${w.exercise.id}/regrade`,
      headers: auth(w.ta),
    });
    expect(regrade.statusCode).toBe(202);
    expect(regrade.json().queued).toBe(6);
    await student.waitFor((s) => updatesOf(s, id).length > 1);
    expect(JSON.parse(updatesOf(student, id).at(-1)!.data).submission).toMatchObject({
      id,
      status: 'failed',
    });
    await grader.stop();
  });

  it('sends an event once to each stream of its author and of the course staff, the author staff included', async () => {
    const tab1 = await studentStreamOnA();
    const tab2 = await studentStreamOnA();
    const teacher = await stream(urlA, auth(w.instructor));
    expect(teacher.status).toBe(200);
    const ex = await createExercise(w.instructor, w.lesson.id);
    const submit = async (actor: { token: string }) => {
      const r = await ctx.app.inject({
        method: 'POST',
        url: `/api/v1/exercises/${ex.id}/submissions`,
        headers: auth(actor),
        payload: { code: 'x' },
      });
      expect(r.statusCode).toBe(202);
      return r.json().submission.id as string;
    };
    const own = await submit(w.instructor);
    const theirs = await submit(w.student);
    await gradeByHand(own, 'for staff');
    await gradeByHand(theirs, 'for staff');
    await teacher.waitFor((s) => updatesOf(s, theirs).length > 0);
    for (const tab of [tab1, tab2]) await tab.waitFor((s) => updatesOf(s, theirs).length > 0);
    // Anything else written to these streams before two more heartbeats has arrived by then.
    await Promise.all([tab1, tab2, teacher].map((s) => s.heartbeats(2)));
    const hidden = (e: { data: string }) =>
      JSON.parse(e.data).submission.results.find((r: { hidden: boolean }) => r.hidden).message;
    // The instructor's own submission: once, unmasked, and to no student.
    expect(updatesOf(teacher, own)).toHaveLength(1);
    expect(hidden(updatesOf(teacher, own)[0]!)).toBe('for staff');
    // The student's: once on each of the student's streams, masked; once to the instructor, unmasked.
    for (const tab of [tab1, tab2]) {
      expect(updatesOf(tab, own)).toHaveLength(0);
      expect(updatesOf(tab, theirs)).toHaveLength(1);
      expect(hidden(updatesOf(tab, theirs)[0]!)).toBeNull();
    }
    expect(updatesOf(teacher, theirs)).toHaveLength(1);
    expect(hidden(updatesOf(teacher, theirs)[0]!)).toBe('for staff');
    for (const s of [tab1, tab2, teacher]) s.close();
  });

  it('sends heartbeats as comments', async () => {
    const s = await stream(urlB, auth(w.instructor));
    await s.waitFor((x) => x.comments.length >= 2, 3000);
    expect(s.comments[0]).toContain('heartbeat');
  });

  it('resumes from Last-Event-ID with only the events the user may see', async () => {
    const other = await createActor(ctx.app, 'Other');
    await other.req('POST', '/courses/join', { joinCode: w.course.joinCode });
    const ex = await createExercise(w.instructor, w.lesson.id);
    const a = (await w.student.req('POST', `/exercises/${ex.id}/submissions`, { code: 'a' })).json()
      .submission.id;
    const b = (await other.req('POST', `/exercises/${ex.id}/submissions`, { code: 'b' })).json().submission
      .id;
    const first = await gradeByHand(a, 'secret a');
    await gradeByHand(b, 'secret b');

    const resumed = await stream(urlA, auth(w.student, { 'last-event-id': String(first!.eventId - 1) }));
    await resumed.waitFor((s) => updatesOf(s, a).length === 1);
    expect(updatesOf(resumed, b)).toHaveLength(0);
    expect(resumed.events.every((e) => parseCursor(e.id)!.after >= first!.eventId)).toBe(true);
    expect(JSON.parse(updatesOf(resumed, a)[0]!.data).submission.results[1].message).toBeNull();

    const staff = await stream(urlB, auth(w.instructor, { 'last-event-id': String(first!.eventId - 1) }));
    await staff.waitFor((s) => updatesOf(s, a).length === 1 && updatesOf(s, b).length === 1);
    expect(JSON.parse(updatesOf(staff, b)[0]!.data).submission.results[1].message).toBe('secret b');

    // Nothing after the newest: nothing replayed; a malformed id is ignored.
    const none = await stream(urlA, auth(w.student, { 'last-event-id': '999999999' }));
    const junk = await stream(urlA, auth(w.student, { 'last-event-id': 'abc' }));
    await none.waitFor((s) => s.comments.length > 0);
    await junk.waitFor((s) => s.comments.length > 0);
    expect(none.events).toHaveLength(0);
    expect(junk.events).toHaveLength(0);
    for (const s of [resumed, staff, none, junk]) s.close();
  });

  it('refuses streams past MAX_SSE_STREAMS with 503 and Retry-After', async () => {
    const streams = await Promise.all(Array.from({ length: 6 }, () => stream(urlA, auth(w.student))));
    expect(streams.every((s) => s.status === 200)).toBe(true);
    const refused = await openStream(urlA, auth(w.student));
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBeDefined();
    expect(await streamsOn(ctx.app)).toBe(6);
    for (const s of streams) s.close();
  });

  it('keeps delivering after Postgres drops the LISTEN connection, catching up on what it missed', async () => {
    const s = await studentStreamOnA();
    const ex = await createExercise(w.instructor, w.lesson.id);
    const id = (await w.student.req('POST', `/exercises/${ex.id}/submissions`, { code: 'c' })).json()
      .submission.id;
    await ctx.database.pool.query(
      `select pg_terminate_backend(pid) from pg_stat_activity
        where datname = current_database() and application_name like 'lab:%:listen'`,
    );
    // Recorded while (probably) disconnected: the NOTIFY is lost, the catch-up finds the row.
    await gradeByHand(id, 'x');
    await s.waitFor((x) => updatesOf(x, id).length === 1);
  });

  it('delivers on catch-up an event that committed after a later one was delivered, its NOTIFY lost (a failover)', async () => {
    // The early result's transaction takes its event id first, a later event commits and is delivered...
    const { s, early, later, lateId } = await laterSentWhileEarlyOpen();
    // ...and then the early one commits on a primary whose NOTIFY no listener gets (inserted here
    // without one), before the listener reconnects.
    await ctx.database.pool.query(
      `insert into events (id, course_id, user_id, type, payload)
       select $1::bigint, course_id, user_id, type, jsonb_set(payload, '{submission,id}', to_jsonb($2::text))
         from events where type = 'submission.updated' and payload->'submission'->>'id' = $3
        order by id desc limit 1`,
      [lateId, early, later],
    );
    await ctx.database.pool.query(
      `select pg_terminate_backend(pid) from pg_stat_activity
        where datname = current_database() and application_name like 'lab:%:listen'`,
    );
    await s.waitFor((x) => updatesOf(x, early).some((e) => e.data.includes('"failed"')));
    // Sent after the later one, it leaves the stream's cursor at the later id, with nothing open below.
    const last = s.events.at(-1)!;
    expect(JSON.parse(last.data).submission.id).toBe(early);
    expect(parseCursor(last.id)).toEqual({ after: Number(laterEventId(s, later)), open: [] });
  });

  it('a stream resumed with its last id receives an event that committed below it after the client left', async () => {
    // The early result's transaction takes its event id, then a later event commits and is sent...
    const { s, early, later, lateId } = await laterSentWhileEarlyOpen();
    // ...its id line carries the id still open below it...
    const cursor = s.events.at(-1)!.id!;
    expect(parseCursor(cursor)!.open).toContain(lateId);
    expect(parseCursor(cursor)!.after).toBeGreaterThan(lateId);
    s.close();
    // ...the client goes away, the early event commits (its NOTIFY reaches no stream of the student)...
    await ctx.database.pool.query(
      `with e as (
         insert into events (id, course_id, user_id, type, payload)
         select $1::bigint, course_id, user_id, type, jsonb_set(payload, '{submission,id}', to_jsonb($2::text))
           from events where type = 'submission.updated' and payload->'submission'->>'id' = $3
          order by id desc limit 1
         returning id)
       select pg_notify('lab_events', id::text) from e`,
      [lateId, early, later],
    );
    // ...and the client comes back, on the other instance, with the last id it received.
    const resumed = await stream(urlB, auth(w.student, { 'last-event-id': cursor }));
    await resumed.waitFor((x) => updatesOf(x, early).some((e) => e.data.includes('"failed"')));
    await resumed.heartbeats(1);
    expect(updatesOf(resumed, later)).toHaveLength(0);
    expect(parseCursor(resumed.events.at(-1)!.id)).toEqual({ after: parseCursor(cursor)!.after, open: [] });
    resumed.close();
  });

  it('ends open streams with a retry hint when the app closes', async () => {
    const databaseC = connectDatabase(ctx.config, ctx.url, 'test-c');
    const appC = await buildApp(ctx.config, databaseC, { logger: false });
    const urlC = await listen(appC);
    const s = await stream(urlC, auth(w.student));
    const before = s.retries.length;
    await appC.close();
    await s.ended;
    expect(s.retries.length).toBe(before + 1);
    await databaseC.close();
  });
});
