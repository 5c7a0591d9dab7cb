import type { LessonPageRow, LessonRow } from './lesson.queries.ts';

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

export function presentLesson(l: LessonRow) {
  return {
    id: l.id,
    courseId: l.courseId,
    title: l.title,
    body: l.body,
    position: l.position,
    publishedAt: iso(l.publishedAt),
  };
}

/**
 * The GET /lessons/:id body as JSON text, the same document as `{lesson: presentLesson(…), exercises}`:
 * the exercise list arrives from Postgres as JSON text and is spliced in as it is; strings go through
 * JSON.stringify. No row objects, no serializer pass over the lesson body.
 */
export function lessonPageJson(l: Omit<LessonPageRow, 'role' | 'visible'>): string {
  return (
    `{"lesson":{"id":${JSON.stringify(l.id)},"courseId":${JSON.stringify(l.courseId)},` +
    `"title":${JSON.stringify(l.title)},"body":${JSON.stringify(l.body)},"position":${l.position},` +
    `"publishedAt":${JSON.stringify(l.publishedAt)}},"exercises":${l.exercises}}`
  );
}
