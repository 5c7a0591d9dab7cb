import { beforeAll, describe, expect, it } from 'vitest';
import { anon, createActor, whileBusy, withTestApp } from '../../../test/app.ts';
import { selectAfterCommitWhileWaiting } from '../../../test/commit-while-waiting.ts';
import { buildWorld, createExercise, type World } from '../../../test/factories.ts';

// Load shedding off: the shared test machine's event-loop delay is not what these tests are about.
const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });
let w: World;

const submit = (actor: World['student'], exerciseId: string, code: string, key?: string) =>
  actor.req('POST', `/exercises/${exerciseId}/submissions`, { code }, key ? { 'idempotency-key': key } : {});

async function countRows(sql: string, params: unknown[]) {
  const { rows } = await ctx.database.pool.query<{ n: number }>(sql, params);
  return rows[0]!.n;
}

beforeAll(async () => {
  w = await buildWorld(ctx.app, 'Sub');
});

describe('POST /exercises/:id/submissions', () => {
  it('queues a submission and its grading job together', async () => {
    const res = await submit(w.student, w.exercise.id, 'function add(a, b) { return a + b; }');
    expect(res.statusCode).toBe(202);
    const s = res.json().submission;
    expect(s).toMatchObject({
      exerciseId: w.exercise.id,
      userId: w.student.id,
      status: 'queued',
      score: null,
      message: null,
      late: false,
      gradedAt: null,
      results: [],
    });
    expect(Object.keys(s).sort()).toEqual(
      [
        'code',
        'createdAt',
        'credit',
        'exerciseId',
        'gradedAt',
        'id',
        'late',
        'message',
        'rawScore',
        'results',
        'score',
        'status',
        'userId',
      ].sort(),
    );
    expect(s).toMatchObject({ code: 'function add(a, b) { return a + b; }', rawScore: null, credit: 1 });
    expect(
      await countRows('select count(*)::int as n from grading_jobs where submission_id = $1', [s.id]),
    ).toBe(1);
  });

  it('answers 401 / 404 to strangers and unknown exercises', async () => {
    expect(
      (await anon(ctx.app, 'POST', `/exercises/${w.exercise.id}/submissions`, { code: 'x' })).statusCode,
    ).toBe(401);
    expect((await submit(w.outsider, w.exercise.id, 'x')).statusCode).toBe(404);
    expect((await submit(w.student, '00000000-0000-0000-0000-000000000000', 'x')).statusCode).toBe(404);
    const bad = await submit(w.student, 'not-a-uuid', 'x');
    expect(bad.statusCode).toBe(404);
    expect(bad.json().error.code).toBe('not_found');
  });

  it('validates the body, the code size in bytes and the key length', async () => {
    const url = `/exercises/${w.exercise.id}/submissions`;
    expect((await w.student.req('POST', url, {})).statusCode).toBe(400);
    const extra = await w.student.req('POST', url, { code: 'x', lang: 'js' });
    expect(extra.statusCode).toBe(400);
    expect(extra.json().error.details[0].field).toBe('lang');
    // 60,000 two-byte characters: within maxLength, over 100 kB.
    const big = await submit(w.student, w.exercise.id, 'é'.repeat(60_000));
    expect(big.statusCode).toBe(400);
    expect(big.json().error.details[0].field).toBe('code');
    expect((await submit(w.student, w.exercise.id, 'a'.repeat(100_000))).statusCode).toBe(202);
    expect((await submit(w.student, w.exercise.id, 'a\u0000b')).statusCode).toBe(400);
    const longKey = await submit(w.student, w.exercise.id, 'x', 'k'.repeat(201));
    expect(longKey.statusCode).toBe(400);
    expect(longKey.json().error.details[0].field).toBe('Idempotency-Key');
    expect((await submit(w.student, w.exercise.id, 'x', 'k'.repeat(200))).statusCode).toBe(202);
  });

  it('replays the same key and body with 200, refuses another body with 409', async () => {
    const first = await submit(w.student, w.exercise.id, 'one', 'key-1');
    expect(first.statusCode).toBe(202);
    const again = await submit(w.student, w.exercise.id, 'one', 'key-1');
    expect(again.statusCode).toBe(200);
    expect(again.json().submission.id).toBe(first.json().submission.id);
    const other = await submit(w.student, w.exercise.id, 'two', 'key-1');
    expect(other.statusCode).toBe(409);
    expect(other.json().error.code).toBe('idempotency_conflict');
    // Keys are scoped to the caller: the TA may use the same key.
    expect((await submit(w.ta, w.exercise.id, 'two', 'key-1')).statusCode).toBe(202);
  });

  it('turns parallel duplicates with one key into exactly one submission', async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, () =>
        whileBusy(() => submit(w.student, w.exercise.id, 'parallel', 'key-par')),
      ),
    );
    const codes = results.map((r) => r.statusCode).sort();
    expect(codes.filter((c) => c === 202)).toHaveLength(1);
    expect(codes.filter((c) => c === 200)).toHaveLength(11);
    expect(new Set(results.map((r) => r.json().submission.id)).size).toBe(1);
    expect(
      await countRows('select count(*)::int as n from submissions where idempotency_key = $1', ['key-par']),
    ).toBe(1);
  });

  it('enforces maxAttempts race-safely, replays keys after exhaustion, ignores infrastructure errors', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id, { maxAttempts: 2 });
    const racers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => whileBusy(() => submit(w.student, ex.id, `try ${i}`, `race-${i}`))),
    );
    expect(racers.filter((r) => r.statusCode === 202)).toHaveLength(2);
    const refused = racers.filter((r) => r.statusCode === 409);
    expect(refused).toHaveLength(4);
    expect(refused[0]!.json().error.code).toBe('attempts_exhausted');
    const winner = racers.findIndex((r) => r.statusCode === 202);
    const replay = await submit(w.student, ex.id, `try ${winner}`, `race-${winner}`);
    expect(replay.statusCode).toBe(200);
    // An infrastructure error gives the attempt back.
    await ctx.database.pool.query(
      `update submissions set status = 'error', counts_as_attempt = false
        where id = $1`,
      [racers[winner]!.json().submission.id],
    );
    expect((await submit(w.student, ex.id, 'after infra error')).statusCode).toBe(202);
    expect((await submit(w.student, ex.id, 'one too many')).statusCode).toBe(409);
  });

  it('refuses a submit at once while another of the same user to the same exercise is being recorded', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id, {});
    // A submit in progress: its transaction holds the submitter's lock.
    const held = await ctx.database.pool.connect();
    try {
      await held.query('begin');
      await held.query(`select pg_advisory_xact_lock(hashtextextended($1, 0))`, [
        `submit:${w.student.id}:${ex.id}`,
      ]);
      const refused = await submit(w.student, ex.id, 'meanwhile', 'busy-key');
      expect(refused.statusCode).toBe(429);
      expect(refused.json().error.code).toBe('rate_limited');
      expect(refused.headers['retry-after']).toBe('1');
      // Nothing of it was recorded, and the same student's other exercises are not held up.
      expect(
        await countRows('select count(*)::int as n from submissions where exercise_id = $1', [ex.id]),
      ).toBe(0);
      expect((await submit(w.student, w.exercise.id, 'elsewhere')).statusCode).toBe(202);
      await held.query('commit');
    } finally {
      held.release();
    }
    const retried = await submit(w.student, ex.id, 'meanwhile', 'busy-key');
    expect(retried.statusCode).toBe(202);
  });

  it('counts a submit that committed while this one waited: the gate reads after its lock, not at the statement start', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id, { maxAttempts: 1 });
    // A: a submit of the same student committing while B's statement waits; B's snapshot predates it.
    const row = await selectAfterCommitWhileWaiting(
      ctx.database.pool,
      {
        sql: `insert into submissions (course_id, exercise_id, user_id, code, body_hash) values ($1, $2, $3, 'a', 'h')`,
        params: [w.course.id, ex.id, w.student.id],
      },
      {
        sql: `select g.locked, g.attempts,
                (select count(*)::int from submissions where exercise_id = $2 and user_id = $1) as seen
           from (select pg_advisory_xact_lock(4242)::text as t) w,
                lateral lab_submit_gate($1, $2, 60 + length(w.t)) g`,
        params: [w.student.id, ex.id],
      },
    );
    // The statement's own snapshot missed A; the gate's counts did not.
    expect(row).toEqual({ locked: true, attempts: 1, seen: 0 });
    // And the API refuses the second attempt.
    expect((await submit(w.student, ex.id, 'b')).statusCode).toBe(409);
  });

  it('accepts late submissions and marks them', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id, { dueAt: '2020-01-01T00:00:00Z' });
    const res = await submit(w.student, ex.id, 'late');
    expect(res.statusCode).toBe(202);
    expect(res.json().submission.late).toBe(true);
  });
});

describe('GET /submissions/:id', () => {
  it('shows a submission to its author and course staff only', async () => {
    const id = (await submit(w.student, w.exercise.id, 'mine')).json().submission.id;
    for (const who of [w.student, w.ta, w.instructor]) {
      const res = await who.req('GET', `/submissions/${id}`);
      expect(res.statusCode).toBe(200);
      expect(res.json().submission.id).toBe(id);
    }
    const classmate = await createActor(ctx.app, 'Classmate');
    await classmate.req('POST', '/courses/join', { joinCode: w.course.joinCode });
    expect((await classmate.req('GET', `/submissions/${id}`)).statusCode).toBe(404);
    expect((await w.outsider.req('GET', `/submissions/${id}`)).statusCode).toBe(404);
    expect((await w.student.req('GET', '/submissions/nope')).statusCode).toBe(404);
    expect((await anon(ctx.app, 'GET', `/submissions/${id}`)).statusCode).toBe(401);
  });

  it('masks hidden tests for students, not for staff', async () => {
    const id = (await submit(w.student, w.exercise.id, 'graded')).json().submission.id;
    await ctx.database.pool.query(
      `update submissions set status = 'failed', score = 5, graded_at = now(), results = $2::jsonb where id = $1`,
      [
        id,
        JSON.stringify([
          { name: 'small', passed: true, hidden: false, message: null, durationMs: 1 },
          { name: 'echo', passed: false, hidden: true, message: 'expected "hi" got "ho"', durationMs: 2 },
        ]),
      ],
    );
    const mine = (await w.student.req('GET', `/submissions/${id}`)).json().submission;
    // Not even how long it ran: a duration can carry a hidden input out (busy-wait `secret % 1000` ms).
    expect(mine.results[1]).toEqual({
      name: 'echo',
      passed: false,
      hidden: true,
      message: null,
      durationMs: 0,
      output: null,
      points: 1,
    });
    expect(mine.score).toBe(5);
    const staff = (await w.ta.req('GET', `/submissions/${id}`)).json().submission;
    expect(staff.results[1].message).toBe('expected "hi" got "ho"');
    const listed = (await w.student.req('GET', `/exercises/${w.exercise.id}/submissions`)).json().items;
    expect(listed.find((s: { id: string }) => s.id === id).results[1].message).toBeNull();
  });

  it('masks by the exercise’s current flags: a test made hidden later no longer shows its old message', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id);
    const id = (await submit(w.student, ex.id, 'graded')).json().submission.id;
    await ctx.database.pool.query(
      `update submissions set status = 'failed', score = 0, graded_at = now(), results = $2::jsonb where id = $1`,
      [
        id,
        JSON.stringify([
          {
            name: 'small',
            passed: false,
            hidden: false,
            message: 'Expected 3, received 4.',
            durationMs: 7,
            output: 'dbg',
            points: 1,
          },
          {
            name: 'echo',
            passed: false,
            hidden: true,
            message: 'Wrong output.',
            durationMs: 2,
            output: null,
            points: 1,
          },
        ]),
      ],
    );
    const before = (await w.student.req('GET', `/submissions/${id}`)).json().submission;
    expect(before.results[0]).toMatchObject({
      message: 'Expected 3, received 4.',
      output: 'dbg',
      durationMs: 7,
    });
    const patch = await w.instructor.req('PATCH', `/exercises/${ex.id}`, {
      tests: [
        { name: 'small', kind: 'call', args: [1, 2], expected: 3, hidden: true },
        { name: 'echo', kind: 'io', stdin: 'hi\n', stdout: 'hi\n', hidden: true },
      ],
    });
    expect(patch.statusCode).toBe(200);
    const after = (await w.student.req('GET', `/submissions/${id}`)).json().submission;
    expect(after.results[0]).toEqual({
      name: 'small',
      passed: false,
      hidden: true,
      message: null,
      durationMs: 0,
      output: null,
      points: 1,
    });
    const listed = (await w.student.req('GET', `/exercises/${ex.id}/submissions`)).json().items[0];
    expect(listed.results[0].message).toBeNull();
    // Staff still read everything.
    const staff = (await w.ta.req('GET', `/submissions/${id}`)).json().submission;
    expect(staff.results[0]).toMatchObject({ message: 'Expected 3, received 4.', output: 'dbg' });
  });
});

describe('GET /exercises/:id/submissions', () => {
  it('lists own submissions to members, everyone’s to staff, newest first, paginated', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await submit(w.student, ex.id, `s${i}`)).json().submission.id);
    const taId = (await submit(w.ta, ex.id, 'ta')).json().submission.id;

    const own = (await w.student.req('GET', `/exercises/${ex.id}/submissions`)).json();
    expect(own.items.map((s: { id: string }) => s.id)).toEqual([...ids].reverse());
    expect(own.nextCursor).toBeNull();
    // A student's userId filter cannot widen the view.
    const sneaky = (await w.student.req('GET', `/exercises/${ex.id}/submissions?userId=${w.ta.id}`)).json();
    expect(sneaky.items.every((s: { userId: string }) => s.userId === w.student.id)).toBe(true);

    const all = (await w.instructor.req('GET', `/exercises/${ex.id}/submissions`)).json();
    expect(all.items.map((s: { id: string }) => s.id)).toEqual([taId, ...[...ids].reverse()]);
    const filtered = (
      await w.instructor.req('GET', `/exercises/${ex.id}/submissions?userId=${w.student.id}`)
    ).json();
    expect(filtered.items).toHaveLength(3);
    const none = (await w.instructor.req('GET', `/exercises/${ex.id}/submissions?userId=zzz`)).json();
    expect(none.items).toEqual([]);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `/exercises/${ex.id}/submissions?limit=1${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await w.ta.req('GET', q)).json();
      seen.push(...page.items.map((s: { id: string }) => s.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all.items.map((s: { id: string }) => s.id));

    expect((await w.ta.req('GET', `/exercises/${ex.id}/submissions?cursor=garbage`)).statusCode).toBe(400);
    const forged = Buffer.from(JSON.stringify(['not a date', 'x'])).toString('base64url');
    expect((await w.ta.req('GET', `/exercises/${ex.id}/submissions?cursor=${forged}`)).statusCode).toBe(400);
    expect((await w.ta.req('GET', `/exercises/${ex.id}/submissions?limit=0`)).statusCode).toBe(400);
    expect((await w.outsider.req('GET', `/exercises/${ex.id}/submissions`)).statusCode).toBe(404);
    expect((await anon(ctx.app, 'GET', `/exercises/${ex.id}/submissions`)).statusCode).toBe(401);
    expect((await w.student.req('GET', '/exercises/nope/submissions')).statusCode).toBe(404);
  });
});

describe('POST /exercises/:id/regrade', () => {
  it('requeues every submission for staff only', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id);
    const id = (await submit(w.student, ex.id, 'a')).json().submission.id;
    await submit(w.ta, ex.id, 'b');
    // As if graded: the job is gone.
    const results = [
      {
        name: 'small',
        passed: false,
        hidden: false,
        message: 'expected 3',
        durationMs: 1,
        output: null,
        points: 1,
      },
      {
        name: 'echo',
        passed: false,
        hidden: true,
        message: 'expected 42',
        durationMs: 1,
        output: null,
        points: 1,
      },
    ];
    await ctx.database.pool.query(
      `update submissions set status = 'failed', score = 5, message = 'half', results = $2, graded_at = now()
        where id = $1`,
      [id, JSON.stringify(results)],
    );
    const graded = (await w.student.req('GET', `/submissions/${id}`)).json().submission;
    expect(graded.results.map((r: { message: string | null }) => r.message)).toEqual(['expected 3', null]);
    await ctx.database.pool.query('delete from grading_jobs where submission_id = $1', [id]);

    expect((await w.student.req('POST', `/exercises/${ex.id}/regrade`)).statusCode).toBe(403);
    expect((await anon(ctx.app, 'POST', `/exercises/${ex.id}/regrade`)).statusCode).toBe(401);
    expect((await w.outsider.req('POST', `/exercises/${ex.id}/regrade`)).statusCode).toBe(404);
    expect((await w.ta.req('POST', '/exercises/nope/regrade')).statusCode).toBe(404);
    const res = await w.ta.req('POST', `/exercises/${ex.id}/regrade`);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ queued: 2 });
    // The previous verdict stays visible until the new one lands, masked by the current flags.
    const s = (await w.student.req('GET', `/submissions/${id}`)).json().submission;
    expect(s).toMatchObject({ status: 'queued', score: 5, message: 'half', gradedAt: graded.gradedAt });
    expect(s.results).toEqual([results[0], { ...results[1], message: null, durationMs: 0 }]);
    const staff = (await w.ta.req('GET', `/submissions/${id}`)).json().submission;
    expect(staff).toMatchObject({ status: 'queued', score: 5, gradedAt: graded.gradedAt, results });
    const listed = (await w.student.req('GET', `/exercises/${ex.id}/submissions`)).json();
    const mine = listed.items.find((x: { id: string }) => x.id === id);
    expect(mine.results.map((r: { message: string | null }) => r.message)).toEqual(['expected 3', null]);
    expect(
      await countRows(
        'select count(*)::int as n from grading_jobs j join submissions s on s.id = j.submission_id where s.exercise_id = $1',
        [ex.id],
      ),
    ).toBe(2);
  });
});
