import { describe, expect, it } from 'vitest';
import { anon, withTestApp } from '../../../test/app.ts';
import { buildWorld, createExercise, createLesson } from '../../../test/factories.ts';

// Load shedding is tested elsewhere; a busy test machine must not turn these requests into 503s.
const ctx = withTestApp({ MAX_EVENT_LOOP_DELAY_MS: 0 });

describe('POST /courses/:courseId/lessons', () => {
  it('staff create lessons; position defaults to after the last', async () => {
    const w = await buildWorld(ctx.app, 'LessonCreate');
    const res = await w.ta.req('POST', `/courses/${w.course.id}/lessons`, {
      title: 'Loops',
      body: '# Loops',
    });
    expect(res.statusCode).toBe(201);
    expect(res.json().lesson).toEqual({
      id: expect.any(String),
      courseId: w.course.id,
      title: 'Loops',
      body: '# Loops',
      position: 1,
      publishedAt: expect.any(String),
    });
    const at = await createLesson(w.instructor, w.course.id, { position: 10 });
    expect(at.position).toBe(10);
    expect((await createLesson(w.instructor, w.course.id)).position).toBe(11);
  });

  it('accepts a 200 kB body and rejects one byte more (counted in UTF-8 bytes)', async () => {
    const w = await buildWorld(ctx.app, 'LessonSize');
    const url = `/courses/${w.course.id}/lessons`;
    expect(
      (await w.instructor.req('POST', url, { title: 'Big', body: 'a'.repeat(200_000) })).statusCode,
    ).toBe(201);
    const over = await w.instructor.req('POST', url, { title: 'Big', body: 'a'.repeat(200_001) });
    expect(over.statusCode).toBe(400);
    expect(over.json().error.details[0].field).toBe('body');
    // 100,000 two-byte characters are 200,000 bytes; one more is over.
    expect((await w.instructor.req('POST', url, { title: 'Ü', body: 'é'.repeat(100_000) })).statusCode).toBe(
      201,
    );
    const multi = await w.instructor.req('POST', url, { title: 'Ü', body: 'é'.repeat(100_001) });
    expect(multi.statusCode).toBe(400);
    expect(multi.json().error.code).toBe('validation_failed');
  });

  it.each([
    [{ title: 'x' }],
    [{ title: '', body: '' }],
    [{ title: 'x', body: '', position: -1 }],
    [{ title: 'x', body: '', position: 1.5 }],
    [{ title: 'x', body: '', extra: true }],
  ])('rejects %j with 400', async (body) => {
    const w = await buildWorld(ctx.app, 'LessonBad');
    expect((await w.instructor.req('POST', `/courses/${w.course.id}/lessons`, body)).statusCode).toBe(400);
  });

  it('students 403, outsiders 404, anonymous 401', async () => {
    const w = await buildWorld(ctx.app, 'LessonAuthz');
    const body = { title: 'x', body: '' };
    const url = `/courses/${w.course.id}/lessons`;
    expect((await w.student.req('POST', url, body)).statusCode).toBe(403);
    expect((await w.outsider.req('POST', url, body)).statusCode).toBe(404);
    expect((await anon(ctx.app, 'POST', url, body)).statusCode).toBe(401);
  });
});

describe('GET /lessons/:lessonId', () => {
  it('returns the lesson and its exercises to members', async () => {
    const w = await buildWorld(ctx.app, 'LessonGet');
    const due = await createExercise(w.instructor, w.lesson.id, {
      title: 'Due',
      dueAt: '2026-12-01T23:59:00+01:00',
      language: 'python',
    });
    const res = await w.student.req('GET', `/lessons/${w.lesson.id}`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.lesson).toMatchObject({
      id: w.lesson.id,
      courseId: w.course.id,
      body: '# Hello',
      position: 0,
    });
    const published = expect.any(String);
    expect(body.exercises).toEqual([
      {
        id: w.exercise.id,
        title: expect.any(String),
        language: 'javascript',
        maxScore: 10,
        dueAt: null,
        publishedAt: published,
      },
      {
        id: due.id,
        title: 'Due',
        language: 'python',
        maxScore: 10,
        dueAt: '2026-12-01T22:59:00.000Z',
        publishedAt: published,
      },
    ]);
  });

  it('is 404 to outsiders and for unknown ids', async () => {
    const w = await buildWorld(ctx.app, 'LessonHidden');
    for (const id of [w.lesson.id, '00000000-0000-0000-0000-000000000000', 'zzz'])
      expect((await w.outsider.req('GET', `/lessons/${id}`)).statusCode).toBe(404);
    expect((await anon(ctx.app, 'GET', `/lessons/${w.lesson.id}`)).statusCode).toBe(401);
  });
});

describe('PATCH and DELETE /lessons/:lessonId', () => {
  it('staff edit and delete; students 403; outsiders 404', async () => {
    const w = await buildWorld(ctx.app, 'LessonEdit');
    const url = `/lessons/${w.lesson.id}`;
    const res = await w.ta.req('PATCH', url, { title: 'New title', position: 3 });
    expect(res.statusCode).toBe(200);
    expect(res.json().lesson).toMatchObject({ title: 'New title', position: 3, body: '# Hello' });
    const same = await w.ta.req('PATCH', url, {});
    expect(same.json().lesson).toMatchObject({ title: 'New title', position: 3 });
    expect((await w.ta.req('PATCH', url, { body: 'x'.repeat(200_001) })).statusCode).toBe(400);
    expect((await w.student.req('PATCH', url, { title: 'x' })).statusCode).toBe(403);
    expect((await w.outsider.req('PATCH', url, { title: 'x' })).statusCode).toBe(404);
    expect((await w.student.req('DELETE', url)).statusCode).toBe(403);
    expect((await w.outsider.req('DELETE', url)).statusCode).toBe(404);
    expect((await w.instructor.req('DELETE', url)).statusCode).toBe(204);
    expect((await w.instructor.req('GET', url)).statusCode).toBe(404);
    expect((await w.instructor.req('GET', `/exercises/${w.exercise.id}`)).statusCode).toBe(404);
    expect((await w.instructor.req('DELETE', url)).statusCode).toBe(404);
    expect((await w.instructor.req('DELETE', '/lessons/nope')).statusCode).toBe(404);
  });
});

describe('GET /lessons/:lessonId, the body written as text', () => {
  it('is the same document the presenter gives: any text, timestamps as toISOString writes them', async () => {
    const w = await buildWorld(ctx.app, 'LessonText');
    const tricky = 'quote " backslash \\ newline \n tab \t nul-free \u0001 \u2028 emoji 😀 <script>';
    const publishedAt = '2026-01-02T03:04:05.678Z';
    const made = await createLesson(w.instructor, w.course.id, { title: tricky, body: tricky, publishedAt });
    const ex = await createExercise(w.instructor, made.id, {
      title: tricky,
      dueAt: '2026-12-01T23:59:00.5+01:00',
    });
    const res = await w.student.req('GET', `/lessons/${made.id}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.json()).toStrictEqual({
      lesson: {
        id: made.id,
        courseId: w.course.id,
        title: tricky,
        body: tricky,
        position: made.position,
        publishedAt,
      },
      exercises: [
        {
          id: ex.id,
          title: tricky,
          language: 'javascript',
          maxScore: ex.maxScore,
          dueAt: '2026-12-01T22:59:00.500Z',
          publishedAt: new Date(ex.publishedAt as string).toISOString(),
        },
      ],
    });
  });
});
