import type { Db, Tx } from '../../db/client.ts';
import { isUuid } from '../../http/schemas.ts';
import { notFound, validationFailed } from '../../shared/errors.ts';
import type { Caller } from '../auth/auth.queries.ts';
import { assertNotArchived, authorize, can } from '../courses/course.policy.ts';
import { selectMembership } from '../courses/membership.queries.ts';
import * as q from './lesson.queries.ts';
import { MAX_BODY_BYTES } from './lesson.schemas.ts';

function checkBodySize(body: string | undefined) {
  if (body !== undefined && Buffer.byteLength(body, 'utf8') > MAX_BODY_BYTES)
    throw validationFailed('body', `must be at most ${MAX_BODY_BYTES / 1000} kB of UTF-8`);
}

const toDate = (s: string | null) => (s === null ? null : new Date(s));

export async function createLesson(
  db: Db,
  caller: Caller,
  courseId: string,
  input: { title: string; body: string; position?: number; publishedAt?: string | null },
) {
  checkBodySize(input.body);
  return db.transaction(async (tx) => {
    const course = await selectMembership(tx, courseId, caller.id);
    authorize(course.role, can.author);
    assertNotArchived(course.archived);
    return q.insertLesson(tx, {
      courseId,
      title: input.title,
      body: input.body,
      position: input.position,
      // Default: published when created (v1.1); null = a draft.
      publishedAt: input.publishedAt === undefined ? new Date() : toDate(input.publishedAt),
    });
  });
}

/** Loads the lesson and checks the caller may author it: 404 for strangers, 403 for students. */
async function authorLesson(tx: Tx, caller: Caller, lessonId: string) {
  const lesson = isUuid(lessonId) ? await q.selectLessonWithRole(tx, lessonId, caller.id) : null;
  if (!lesson) throw notFound('Lesson');
  authorize(lesson.role, can.author, 'Lesson');
  assertNotArchived(lesson.archived);
  return lesson;
}

export async function updateLesson(
  db: Db,
  caller: Caller,
  lessonId: string,
  input: { title?: string; body?: string; position?: number; publishedAt?: string | null },
) {
  checkBodySize(input.body);
  return db.transaction(async (tx) => {
    const lesson = await authorLesson(tx, caller, lessonId);
    const { publishedAt, ...rest } = input;
    const values = { ...rest, ...(publishedAt !== undefined ? { publishedAt: toDate(publishedAt) } : {}) };
    if (Object.keys(values).length === 0) return lesson;
    return q.updateLesson(tx, lessonId, values);
  });
}

export async function deleteLesson(db: Db, caller: Caller, lessonId: string) {
  await db.transaction(async (tx) => {
    await authorLesson(tx, caller, lessonId);
    await q.deleteLesson(tx, lessonId);
  });
}
