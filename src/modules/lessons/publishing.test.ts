import { beforeAll, describe, expect, it } from 'vitest';
import { withTestApp } from '../../../test/app.ts';
import { buildWorld, createExercise, createLesson, type World } from '../../../test/factories.ts';

/** v1.1 publishedAt on lessons and exercises: null or future = invisible to students, visible to staff. */
const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });
let w: World;
const ADD = 'function add(a, b) { return a + b; }';
const later = () => new Date(Date.now() + 3_600_000).toISOString();

beforeAll(async () => {
  w = await buildWorld(ctx.app, 'Pub');
});

const ids = (list: Array<{ id: string }>) => list.map((x) => x.id);

describe('draft and scheduled content', () => {
  it('hides a draft exercise from students everywhere: lists, by id, submissions, progress', async () => {
    const draft = await createExercise(w.instructor, w.lesson.id, { publishedAt: null, title: 'Draft' });
    const scheduled = await createExercise(w.instructor, w.lesson.id, { publishedAt: later() });
    expect(draft.publishedAt).toBeNull();

    const lesson = (await w.student.req('GET', `/lessons/${w.lesson.id}`)).json();
    expect(ids(lesson.exercises)).not.toContain(draft.id);
    expect(ids(lesson.exercises)).not.toContain(scheduled.id);
    expect(ids(lesson.exercises)).toContain(w.exercise.id);
    for (const id of [draft.id, scheduled.id]) {
      const get = await w.student.req('GET', `/exercises/${id}`);
      expect(get.statusCode).toBe(404);
      expect(get.json().error.code).toBe('not_found');
      expect((await w.student.req('POST', `/exercises/${id}/submissions`, { code: ADD })).statusCode).toBe(
        404,
      );
      expect((await w.student.req('GET', `/exercises/${id}/submissions`)).statusCode).toBe(404);
    }
    const progress = (await w.student.req('GET', `/courses/${w.course.id}/progress`)).json();
    expect(ids(progress.exercises)).not.toContain(draft.id);
    const course = (await w.student.req('GET', `/courses/${w.course.id}`)).json();
    const staffCourse = (await w.ta.req('GET', `/courses/${w.course.id}`)).json();
    const count = (c: { lessons: Array<{ id: string; exerciseCount: number }> }) =>
      c.lessons.find((l) => l.id === w.lesson.id)!.exerciseCount;
    expect(count(staffCourse) - count(course)).toBe(2);

    // Staff see both, with the field.
    const staffLesson = (await w.ta.req('GET', `/lessons/${w.lesson.id}`)).json();
    expect(staffLesson.exercises.find((e: { id: string }) => e.id === draft.id).publishedAt).toBeNull();
    expect((await w.ta.req('GET', `/exercises/${draft.id}`)).statusCode).toBe(200);
    // The gradebook lists every exercise, drafts included, with publishedAt to tell them apart.
    const gradebook = (await w.ta.req('GET', `/courses/${w.course.id}/gradebook`)).json();
    expect(ids(gradebook.exercises)).toContain(draft.id);

    // Publishing makes it appear.
    const now = new Date().toISOString();
    expect((await w.instructor.req('PATCH', `/exercises/${draft.id}`, { publishedAt: now })).statusCode).toBe(
      200,
    );
    expect((await w.student.req('GET', `/exercises/${draft.id}`)).statusCode).toBe(200);
    expect(
      (await w.student.req('POST', `/exercises/${draft.id}/submissions`, { code: ADD })).statusCode,
    ).toBe(202);
  });

  it('hides a draft lesson and every exercise in it, even published ones', async () => {
    const lesson = await createLesson(w.instructor, w.course.id, { title: 'Week 9', publishedAt: null });
    const inside = await createExercise(w.instructor, lesson.id);
    expect(inside.publishedAt).not.toBeNull();
    expect((await w.student.req('GET', `/lessons/${lesson.id}`)).statusCode).toBe(404);
    expect((await w.student.req('GET', `/exercises/${inside.id}`)).statusCode).toBe(404);
    expect(
      (await w.student.req('POST', `/exercises/${inside.id}/submissions`, { code: ADD })).statusCode,
    ).toBe(404);
    const course = (await w.student.req('GET', `/courses/${w.course.id}`)).json();
    expect(ids(course.lessons)).not.toContain(lesson.id);
    const progress = (await w.student.req('GET', `/courses/${w.course.id}/progress`)).json();
    expect(ids(progress.exercises)).not.toContain(inside.id);
    const staff = (await w.instructor.req('GET', `/courses/${w.course.id}`)).json();
    expect(staff.lessons.find((l: { id: string }) => l.id === lesson.id).publishedAt).toBeNull();

    const when = new Date(Date.now() - 1000).toISOString();
    await w.instructor.req('PATCH', `/lessons/${lesson.id}`, { publishedAt: when });
    expect((await w.student.req('GET', `/lessons/${lesson.id}`)).statusCode).toBe(200);
    expect((await w.student.req('GET', `/exercises/${inside.id}`)).statusCode).toBe(200);
  });

  it('a scheduled lesson appears by itself once its time passes', async () => {
    const lesson = await createLesson(w.instructor, w.course.id, { publishedAt: later() });
    expect((await w.student.req('GET', `/lessons/${lesson.id}`)).statusCode).toBe(404);
    // Time passes (moved in the database: the rule compares with now()).
    await ctx.database.pool.query(
      `update lessons set published_at = now() - interval '1 second' where id = $1`,
      [lesson.id],
    );
    expect((await w.student.req('GET', `/lessons/${lesson.id}`)).statusCode).toBe(200);
  });

  it('defaults publishedAt to the time of creation and validates it', async () => {
    const lesson = await createLesson(w.instructor, w.course.id);
    expect(Date.parse(lesson.publishedAt as string)).toBeLessThanOrEqual(Date.now());
    const bad = await w.instructor.req('POST', `/courses/${w.course.id}/lessons`, {
      title: 'x',
      publishedAt: 'soon',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('validation_failed');
  });
});
