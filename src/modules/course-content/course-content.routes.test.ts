import { beforeAll, describe, expect, it } from 'vitest';
import { anon, createActor, withTestApp } from '../../../test/app.ts';
import { buildWorld, createLesson, insertSubmission, type World } from '../../../test/factories.ts';

/** v1.1 copy, export and import of a course's content. */
const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });
let w: World;

// Exact JSON as an instructor wrote it: key order, an integer beyond 2^53, a float with trailing zero.
const RAW_TESTS = `[
  {"name": "keys", "kind": "call", "args": [{"zeta": 1, "alpha": 2}], "expected": ["zeta", "alpha"]},
  {"name": "big", "kind": "call", "args": [12345678901234567890], "expected": 12345678901234567891, "points": 3},
  {"name": "close", "kind": "call", "args": [1.50], "expected": 1.5, "tolerance": 0.01, "hidden": true},
  {"name": "echo", "kind": "io", "stdin": "hi\\n", "stdout": "hi\\n", "hidden": true}
]`;

beforeAll(async () => {
  w = await buildWorld(ctx.app, 'Content');
  const draftLesson = await createLesson(w.instructor, w.course.id, {
    title: 'Week 2',
    position: 3,
    publishedAt: null,
  });
  const body = `{
    "title": "Keys", "language": "python", "entrypoint": "f", "prompt": "Return the keys.",
    "starterCode": "def f(x):\\n    pass\\n", "maxScore": 7, "maxAttempts": 4,
    "dueAt": "2027-01-10T12:00:00.000Z",
    "latePolicy": [{"until": "2027-01-11T12:00:00.000Z", "credit": 0.5}],
    "referenceSolution": "def f(x):\\n    return list(x)\\n",
    "publishedAt": "2027-01-01T00:00:00.000Z",
    "limits": {"timeMs": 1500, "memoryMb": 96},
    "tests": ${RAW_TESTS}
  }`;
  const res = await w.instructor.req('POST', `/lessons/${draftLesson.id}/exercises`, body, {
    'content-type': 'application/json',
  });
  expect(res.statusCode, res.body).toBe(201);
  await insertSubmission(ctx.database.pool, {
    courseId: w.course.id,
    exerciseId: w.exercise.id,
    userId: w.student.id,
    status: 'passed',
    score: 10,
  });
});

const exportOf = async (actor: World['instructor'], courseId: string) => {
  const res = await actor.req('GET', `/courses/${courseId}/export`);
  expect(res.statusCode, res.body).toBe(200);
  return res;
};

describe('GET /courses/:id/export', () => {
  it('holds everything to recreate the content, hidden tests and reference solutions, exactly as written', async () => {
    const res = await exportOf(w.ta, w.course.id);
    const doc = res.json();
    expect(doc).toMatchObject({ format: 'lab-course', version: 1, course: { title: w.course.title } });
    const day = new Date().toISOString().slice(0, 10);
    expect(res.headers['content-disposition']).toContain(`filename="${w.course.title}-export-${day}.json"`);
    expect(doc.lessons.map((l: { title: string }) => l.title)).toContain('Week 2');
    const week2 = doc.lessons.find((l: { title: string }) => l.title === 'Week 2');
    expect(week2).toMatchObject({ position: 3, publishedAt: null });
    expect(week2.exercises[0]).toMatchObject({
      title: 'Keys',
      maxScore: 7,
      maxAttempts: 4,
      referenceSolution: 'def f(x):\n    return list(x)\n',
      latePolicy: [{ until: '2027-01-11T12:00:00.000Z', credit: 0.5 }],
      limits: { timeMs: 1500, memoryMb: 96 },
    });
    expect(week2.exercises[0].tests.map((t: { hidden: boolean }) => t.hidden)).toEqual([
      false,
      false,
      true,
      true,
    ]);
    // The text itself keeps key order and big integers exactly.
    expect(res.body).toContain('"args":[{"zeta":1,"alpha":2}]');
    expect(res.body).toContain('"args":[12345678901234567890],"expected":12345678901234567891');
    // Nothing of the people: no members, no submissions, no join code.
    expect(res.body).not.toContain(w.student.email);
    expect(res.body).not.toContain(w.course.joinCode);
  });
});

describe('POST /courses/import', () => {
  it('recreates the course for any user as its instructor; exporting it again gives the same document', async () => {
    const original = await exportOf(w.instructor, w.course.id);
    const someone = await createActor(ctx.app, 'Importer');
    const res = await someone.req('POST', '/courses/import', original.body, {
      'content-type': 'application/json',
    });
    expect(res.statusCode, res.body).toBe(201);
    const course = res.json().course;
    expect(course).toMatchObject({ title: w.course.title, role: 'instructor', archived: false });
    expect(course.joinCode).not.toBe(w.course.joinCode);
    const again = await exportOf(someone, course.id);
    expect(again.body).toBe(original.body);
    const members = (await someone.req('GET', `/courses/${course.id}/members`)).json();
    expect(members.items.map((m: { user: { id: string } }) => m.user.id)).toEqual([someone.id]);
  });

  it('refuses an invalid document with every problem listed, and creates nothing', async () => {
    const doc = (await exportOf(w.instructor, w.course.id)).json();
    doc.course.title = 'Broken import';
    doc.lessons[0].exercises[0].tests[0].name = ''; // schema: too short
    const res = await w.student.req('POST', '/courses/import', doc);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('validation_failed');

    const rules = (await exportOf(w.instructor, w.course.id)).json();
    rules.course.title = 'Broken import';
    const ex = rules.lessons.find((l: { title: string }) => l.title === 'Week 2').exercises[0];
    ex.latePolicy = [{ until: '2026-01-01T00:00:00.000Z', credit: 0.5 }]; // before dueAt
    rules.lessons[0].exercises[0].tests = [
      { name: 'same', kind: 'call', args: [], expected: 1 },
      { name: 'same', kind: 'call', args: [], expected: 2 },
    ];
    const before = await ctx.database.pool.query(`select count(*)::int as n from courses`);
    const bad = await w.student.req('POST', '/courses/import', rules);
    expect(bad.statusCode, bad.body).toBe(400);
    const fields = bad.json().error.details.map((d: { field: string }) => d.field);
    expect(fields.some((f: string) => /^lessons\.\d+\.exercises\.0\.latePolicy\.0\.until$/.test(f))).toBe(
      true,
    );
    expect(fields.some((f: string) => /^lessons\.0\.exercises\.0\.tests/.test(f))).toBe(true);
    const after = await ctx.database.pool.query(`select count(*)::int as n from courses`);
    expect(after.rows[0].n).toBe(before.rows[0].n);
    const named = await ctx.database.pool.query(`select 1 from courses where title = 'Broken import'`);
    expect(named.rows).toHaveLength(0);
  });

  it('refuses other formats and versions, and needs a caller', async () => {
    for (const body of [
      { format: 'moodle', version: 1, course: { title: 'x', description: '' }, lessons: [] },
      { format: 'lab-course', version: 2, course: { title: 'x', description: '' }, lessons: [] },
      { format: 'lab-course', version: 1, course: { title: 'x', description: '' } },
    ]) {
      const res = await w.student.req('POST', '/courses/import', body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
    }
    const empty = { format: 'lab-course', version: 1, course: { title: 'x', description: '' }, lessons: [] };
    expect((await anon(ctx.app, 'POST', '/courses/import', empty)).statusCode).toBe(401);
    expect((await w.student.req('POST', '/courses/import', empty)).statusCode).toBe(201);
  });

  it('takes a document bigger than the 1 MiB of other requests', async () => {
    const doc = (await exportOf(w.instructor, w.course.id)).json();
    doc.course.title = 'Big';
    doc.lessons = Array.from({ length: 12 }, (_, i) => ({
      title: `L${i}`,
      body: 'x'.repeat(150_000),
      position: i,
      exercises: [],
    }));
    const text = JSON.stringify(doc);
    expect(text.length).toBeGreaterThan(1024 * 1024);
    const res = await w.instructor.req('POST', '/courses/import', text, {
      'content-type': 'application/json',
    });
    expect(res.statusCode, res.body.slice(0, 300)).toBe(201);
  });
});

describe('POST /courses/:id/copy', () => {
  it('copies lessons and exercises with their settings, no members but the caller, no submissions', async () => {
    const res = await w.ta.req('POST', `/courses/${w.course.id}/copy`, { title: 'Next term' });
    expect(res.statusCode, res.body).toBe(201);
    const copy = res.json().course;
    expect(copy).toMatchObject({ title: 'Next term', role: 'instructor' });
    const members = (await w.ta.req('GET', `/courses/${copy.id}/members`)).json();
    expect(members.items.map((m: { user: { id: string } }) => m.user.id)).toEqual([w.ta.id]);
    const { rows } = await ctx.database.pool.query(
      `select count(*)::int as n from submissions where course_id = $1`,
      [copy.id],
    );
    expect(rows[0].n).toBe(0);
    const original = (await exportOf(w.ta, w.course.id)).body;
    const copied = (await exportOf(w.ta, copy.id)).body;
    expect(copied).toBe(original.replace(JSON.stringify(w.course.title), JSON.stringify('Next term')));
    expect((await w.student.req('GET', `/courses/${copy.id}`)).statusCode).toBe(404);
  });

  it('validates the title', async () => {
    expect((await w.ta.req('POST', `/courses/${w.course.id}/copy`, { title: '' })).statusCode).toBe(400);
    expect((await w.ta.req('POST', `/courses/${w.course.id}/copy`, {})).statusCode).toBe(400);
  });
});
