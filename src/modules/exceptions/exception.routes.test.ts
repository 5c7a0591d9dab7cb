import { beforeAll, describe, expect, it } from 'vitest';
import { anon, withTestApp } from '../../../test/app.ts';
import { buildWorld, createExercise, exerciseBody, type World } from '../../../test/factories.ts';
import { claimSubmissionJob } from '../../../test/grading.ts';
import { recordOutcome } from '../../grading/queue.ts';

const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });
let w: World;

const ADD = 'function add(a, b) { return a + b; }';
const at = (minutesFromNow: number) => new Date(Date.now() + minutesFromNow * 60_000).toISOString();
const exceptionUrl = (exerciseId: string, userId: string) => `/exercises/${exerciseId}/exceptions/${userId}`;

const submit = (actor: World['student'], exerciseId: string) =>
  actor.req('POST', `/exercises/${exerciseId}/submissions`, { code: ADD });

/** Records a verdict for the submission as a grader would, with the raw score given. */
async function grade(submissionId: string, rawScore: number) {
  const job = await claimSubmissionJob(ctx.database.pool, submissionId);
  await recordOutcome(ctx.database.db, job, {
    status: rawScore === 10 ? 'passed' : 'failed',
    score: rawScore,
    message: null,
    infrastructure: false,
    results: [],
  });
}

const submissionOf = async (actor: World['student'], id: string) =>
  (await actor.req('GET', `/submissions/${id}`)).json().submission;

beforeAll(async () => {
  w = await buildWorld(ctx.app, 'Exc');
});

describe('PUT /exercises/:id/exceptions/:userId', () => {
  it('gives one student extra attempts: attemptsLeft shows them and submitting uses them', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id, { maxAttempts: 1 });
    expect((await submit(w.student, ex.id)).statusCode).toBe(202);
    expect((await submit(w.student, ex.id)).json().error.code).toBe('attempts_exhausted');
    const seen = async () => (await w.student.req('GET', `/exercises/${ex.id}`)).json().exercise.attemptsLeft;
    expect(await seen()).toBe(0);

    const put = await w.ta.req('PUT', exceptionUrl(ex.id, w.student.id), { extraAttempts: 2 });
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json()).toEqual({ exception: { userId: w.student.id, dueAt: null, extraAttempts: 2 } });
    expect(await seen()).toBe(2);
    const progress = (await w.student.req('GET', `/courses/${w.course.id}/progress`)).json();
    expect(progress.exercises.find((e: { id: string }) => e.id === ex.id)).toMatchObject({
      attempts: 1,
      attemptsLeft: 2,
    });
    expect((await submit(w.student, ex.id)).statusCode).toBe(202);
    expect((await submit(w.student, ex.id)).statusCode).toBe(202);
    expect((await submit(w.student, ex.id)).json().error.code).toBe('attempts_exhausted');
    expect(await seen()).toBe(0);
    // Staff see the exercise's own limit, not a student's.
    expect((await w.ta.req('GET', `/exercises/${ex.id}`)).json().exercise.attemptsLeft).toBe(1);
  });

  it("moves one student's due date: their lateness and credit follow at once, others' do not", async () => {
    const ex = await createExercise(w.instructor, w.lesson.id, {
      dueAt: at(-60),
      latePolicy: [{ until: at(60), credit: 0.5 }],
    });
    const mine = (await submit(w.student, ex.id)).json().submission;
    expect(mine).toMatchObject({ late: true, credit: 0.5 });
    await grade(mine.id, 10);
    expect(await submissionOf(w.student, mine.id)).toMatchObject({ rawScore: 10, credit: 0.5, score: 5 });

    // An extension to tomorrow: on time, full credit.
    await w.instructor.req('PUT', exceptionUrl(ex.id, w.student.id), { dueAt: at(24 * 60) });
    expect(await submissionOf(w.student, mine.id)).toMatchObject({ late: false, credit: 1, score: 10 });
    const exercise = (await w.student.req('GET', `/exercises/${ex.id}`)).json().exercise;
    expect(Date.parse(exercise.dueAt)).toBeGreaterThan(Date.now());
    const gradebook = (await w.ta.req('GET', `/courses/${w.course.id}/gradebook`)).json();
    const row = gradebook.rows.find((r: { user: { id: string } }) => r.user.id === w.student.id);
    expect(row.scores[ex.id]).toBe(10);
    expect(row.late[ex.id]).toBe(false);

    // Setting only extraAttempts keeps the due date.
    const kept = await w.instructor.req('PUT', exceptionUrl(ex.id, w.student.id), { extraAttempts: 3 });
    expect(Date.parse(kept.json().exception.dueAt)).toBeGreaterThan(Date.now());
    expect(kept.json().exception.extraAttempts).toBe(3);

    // Removing the exception puts the exercise's rules back.
    const del = await w.instructor.req('DELETE', exceptionUrl(ex.id, w.student.id));
    expect(del.statusCode).toBe(204);
    expect(await submissionOf(w.student, mine.id)).toMatchObject({ late: true, credit: 0.5, score: 5 });
    expect((await w.instructor.req('DELETE', exceptionUrl(ex.id, w.student.id))).statusCode).toBe(404);
  });

  it("shifts the late policy with a student's extension", async () => {
    // Due an hour ago, half credit until 10 minutes ago: submitting now is past the policy (0 credit)...
    const ex = await createExercise(w.instructor, w.lesson.id, {
      dueAt: at(-60),
      latePolicy: [{ until: at(-10), credit: 0.5 }],
    });
    const first = (await submit(w.student, ex.id)).json().submission;
    expect(first).toMatchObject({ late: true, credit: 0 });
    // ...but with a 30-minute extension the policy's end moves 30 minutes too: half credit.
    await w.ta.req('PUT', exceptionUrl(ex.id, w.student.id), { dueAt: at(-30) });
    expect(await submissionOf(w.student, first.id)).toMatchObject({ late: true, credit: 0.5 });
  });

  it('lists exceptions with who they are for', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id);
    await w.ta.req('PUT', exceptionUrl(ex.id, w.student.id), { extraAttempts: 1 });
    await w.ta.req('PUT', exceptionUrl(ex.id, w.ta.id), { extraAttempts: 4 });
    const list = await w.instructor.req('GET', `/exercises/${ex.id}/exceptions`);
    expect(list.statusCode).toBe(200);
    const items = list.json().items as Array<{
      userId: string;
      extraAttempts: number;
      user: { name: string };
    }>;
    expect(items.map((i) => [i.userId, i.extraAttempts]).sort()).toEqual(
      [
        [w.student.id, 1],
        [w.ta.id, 4],
      ].sort(),
    );
    expect(items.find((i) => i.userId === w.student.id)!.user.name).toBe(w.student.name);
  });

  it('validates its body and who it is for', async () => {
    const url = exceptionUrl(w.exercise.id, w.student.id);
    for (const body of [
      { extraAttempts: 1001 },
      { extraAttempts: -1 },
      { extraAttempts: 1.5 },
      { dueAt: 'tomorrow' },
      { other: 1 },
    ]) {
      const res = await w.instructor.req('PUT', url, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error.code).toBe('validation_failed');
    }
    // Not a member of the course: no exception for them.
    expect((await w.instructor.req('PUT', exceptionUrl(w.exercise.id, w.outsider.id), {})).statusCode).toBe(
      404,
    );
    expect((await w.student.req('PUT', url, { extraAttempts: 1 })).statusCode).toBe(403);
    expect((await w.outsider.req('GET', `/exercises/${w.exercise.id}/exceptions`)).statusCode).toBe(404);
    expect((await anon(ctx.app, 'PUT', url, {})).statusCode).toBe(401);
  });
});

describe('late policy', () => {
  it('gives full credit on time, the first unexpired entry after, 0 past the last', async () => {
    const onTime = await createExercise(w.instructor, w.lesson.id, {
      dueAt: at(60),
      latePolicy: [{ until: at(120), credit: 0.5 }],
    });
    expect((await submit(w.student, onTime.id)).json().submission).toMatchObject({ late: false, credit: 1 });
    const tiers = await createExercise(w.instructor, w.lesson.id, {
      dueAt: at(-120),
      latePolicy: [
        { until: at(-60), credit: 0.8 },
        { until: at(60), credit: 0.25 },
      ],
    });
    const late = (await submit(w.student, tiers.id)).json().submission;
    expect(late).toMatchObject({ late: true, credit: 0.25 });
    await grade(late.id, 7);
    expect(await submissionOf(w.student, late.id)).toMatchObject({ rawScore: 7, score: 1.75 });
    // v1 behaviour without a policy: late but full credit.
    const plain = await createExercise(w.instructor, w.lesson.id, { dueAt: at(-5) });
    expect((await submit(w.student, plain.id)).json().submission).toMatchObject({ late: true, credit: 1 });
  });

  it('recomputes credit when staff change the due date or the policy', async () => {
    const ex = await createExercise(w.instructor, w.lesson.id, {
      dueAt: at(-60),
      latePolicy: [{ until: at(60), credit: 0.5 }],
    });
    const s = (await submit(w.student, ex.id)).json().submission;
    await grade(s.id, 8);
    expect((await submissionOf(w.student, s.id)).score).toBe(4);
    const patched = await w.instructor.req('PATCH', `/exercises/${ex.id}`, {
      latePolicy: [{ until: at(60), credit: 0.75 }],
    });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(await submissionOf(w.student, s.id)).toMatchObject({ credit: 0.75, score: 6 });
    await w.instructor.req('PATCH', `/exercises/${ex.id}`, { dueAt: at(30) });
    expect(await submissionOf(w.student, s.id)).toMatchObject({ late: false, credit: 1, score: 8 });
  });

  it('refuses a policy that is not ascending, lacks a due date or has credit outside 0..1', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [
        {
          dueAt: at(0),
          latePolicy: [
            { until: at(60), credit: 0.5 },
            { until: at(30), credit: 0.2 },
          ],
        },
        'latePolicy.1.until',
      ],
      [{ latePolicy: [{ until: at(60), credit: 0.5 }] }, 'latePolicy'],
      [{ dueAt: at(0), latePolicy: [{ until: at(-60), credit: 0.5 }] }, 'latePolicy.0.until'],
      [{ dueAt: at(0), latePolicy: [{ until: at(60), credit: 1.5 }] }, 'latePolicy'],
    ];
    for (const [overrides, field] of cases) {
      const res = await w.instructor.req(
        'POST',
        `/lessons/${w.lesson.id}/exercises`,
        exerciseBody(overrides),
      );
      expect(res.statusCode, JSON.stringify(overrides)).toBe(400);
      expect(JSON.stringify(res.json().error.details)).toContain(field);
    }
  });
});
