import { Type } from '@sinclair/typebox';
import { fields as exercise } from '../exercises/exercise.schemas.ts';

/**
 * The course document of export and import (v1.1): everything needed to recreate a course's content
 * — lessons, exercises, tests (hidden ones included, arguments and expected values as written),
 * reference solutions and settings — and nothing of its people. Import takes exactly what export gives.
 */
const ExerciseDocument = Type.Object(
  {
    title: exercise.title,
    prompt: Type.Optional(exercise.prompt),
    language: exercise.language,
    entrypoint: Type.Optional(exercise.entrypoint),
    starterCode: Type.Optional(exercise.starterCode),
    tests: exercise.tests,
    maxScore: exercise.maxScore,
    dueAt: Type.Optional(exercise.dueAt),
    maxAttempts: Type.Optional(exercise.maxAttempts),
    limits: Type.Optional(exercise.limits),
    referenceSolution: Type.Optional(exercise.referenceSolution),
    publishedAt: Type.Optional(exercise.publishedAt),
    latePolicy: Type.Optional(exercise.latePolicy),
  },
  { additionalProperties: false },
);

const LessonDocument = Type.Object(
  {
    title: Type.String({ minLength: 1, maxLength: 200 }),
    body: Type.String({ maxLength: 200_000 }),
    position: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
    publishedAt: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
    exercises: Type.Array(ExerciseDocument, { maxItems: 200 }),
  },
  { additionalProperties: false },
);

export const CourseDocument = Type.Object(
  {
    format: Type.Literal('lab-course'),
    version: Type.Literal(1),
    course: Type.Object(
      {
        title: Type.String({ minLength: 1, maxLength: 200 }),
        description: Type.String({ maxLength: 10_000 }),
      },
      { additionalProperties: false },
    ),
    lessons: Type.Array(LessonDocument, { maxItems: 500 }),
  },
  { additionalProperties: false },
);

export const CopyCourseBody = Type.Object(
  { title: Type.String({ minLength: 1, maxLength: 200 }) },
  { additionalProperties: false },
);
