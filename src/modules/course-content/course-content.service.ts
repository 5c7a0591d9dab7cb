import type { Static } from '@sinclair/typebox';
import type { Db } from '../../db/client.ts';
import { AppError, type ErrorDetail, notFound } from '../../shared/errors.ts';
import type { Caller } from '../auth/auth.queries.ts';
import { authorize, can } from '../courses/course.policy.ts';
import { createCourse } from '../courses/course.service.ts';
import { selectMembership } from '../courses/membership.queries.ts';
import { checkWhole, exerciseValues } from '../exercises/exercise.service.ts';
import { normaliseTests, presentTest, testsSource } from '../exercises/exercise-tests.ts';
import { type CourseContent, insertCourseContent, selectCourseContent } from './course-content.queries.ts';
import type { CourseDocument } from './course-document.schemas.ts';

type Document = Static<typeof CourseDocument>;

async function readAsStaff(db: Db, caller: Caller, courseId: string): Promise<CourseContent> {
  const { role } = await selectMembership(db, courseId, caller.id);
  authorize(role, can.author);
  const content = await selectCourseContent(db, courseId);
  if (!content) throw notFound('Course');
  return content;
}

/** A copy of the course's content (v1.1): no members but the caller, who is its instructor; no submissions. */
export async function copyCourse(db: Db, caller: Caller, courseId: string, title: string) {
  const content = await readAsStaff(db, caller, courseId);
  return createCourse(db, caller, { title, description: content.description }, undefined, (tx, id) =>
    insertCourseContent(tx, id, content.lessons),
  );
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** The course document (v1.1), tests' arguments and expected values as written (see RawJson). */
export async function exportCourse(db: Db, caller: Caller, courseId: string) {
  const content = await readAsStaff(db, caller, courseId);
  return {
    format: 'lab-course' as const,
    version: 1 as const,
    course: { title: content.title, description: content.description },
    lessons: content.lessons.map((l) => ({
      title: l.title,
      body: l.body,
      position: l.position,
      publishedAt: iso(l.publishedAt),
      exercises: l.exercises.map((e) => ({
        title: e.title,
        prompt: e.prompt,
        language: e.language,
        entrypoint: e.entrypoint,
        starterCode: e.starterCode,
        tests: e.tests.map(presentTest),
        maxScore: e.maxScore,
        dueAt: iso(e.dueAt),
        maxAttempts: e.maxAttempts,
        limits: e.limits,
        referenceSolution: e.referenceSolution,
        publishedAt: iso(e.publishedAt),
        latePolicy: e.latePolicy,
      })),
    })),
  };
}

/**
 * A new course from a document (v1.1), the caller its instructor. The schema checked its shape; the
 * exercises' own rules are checked here, all of them, and the 400 lists every problem with its path
 * in the document. Nothing is created unless everything is valid. `rawBody` is the document as sent,
 * where the tests' arguments and expected values are read exactly.
 */
export async function importCourse(db: Db, caller: Caller, doc: Document, rawBody?: string) {
  const details: ErrorDetail[] = [];
  const lessons: CourseContent['lessons'] = doc.lessons.map((lesson, i) => ({
    title: lesson.title,
    body: lesson.body,
    position: lesson.position,
    publishedAt:
      lesson.publishedAt === undefined
        ? new Date()
        : lesson.publishedAt
          ? new Date(lesson.publishedAt)
          : null,
    exercises: lesson.exercises.map((exercise, j) => {
      const at = `lessons.${i}.exercises.${j}.`;
      const tests = normaliseTests(
        exercise.tests,
        testsSource(rawBody, ['lessons', i, 'exercises', j, 'tests']),
        details,
        `${at}tests`,
      );
      const values = exerciseValues(exercise, tests);
      checkWhole(values, details, at);
      return values;
    }),
  }));
  for (const [i, lesson] of doc.lessons.entries())
    if (Buffer.byteLength(lesson.body, 'utf8') > 200_000)
      details.push({ field: `lessons.${i}.body`, message: 'must be at most 200 kB of UTF-8' });
  if (details.length > 0)
    throw new AppError(400, 'validation_failed', `${details[0]!.field} ${details[0]!.message}`, details);
  return createCourse(db, caller, doc.course, undefined, (tx, id) => insertCourseContent(tx, id, lessons));
}
