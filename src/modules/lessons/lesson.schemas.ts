import { Type } from '@sinclair/typebox';
import { Id } from '../../http/schemas.ts';

/** 200 kB of Markdown (API.md); the byte count is checked in the service, this bounds the characters. */
export const MAX_BODY_BYTES = 200_000;

const Title = Type.String({ minLength: 1, maxLength: 200 });
const Body = Type.String({ maxLength: MAX_BODY_BYTES });
const Position = Type.Integer({ minimum: 0, maximum: 1_000_000 });
/** v1.1: null or in the future = not visible to students; default: the time of creation. */
const PublishedAt = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);

export const CreateLessonBody = Type.Object(
  { title: Title, body: Body, position: Type.Optional(Position), publishedAt: Type.Optional(PublishedAt) },
  { additionalProperties: false },
);

export const PatchLessonBody = Type.Object(
  {
    title: Type.Optional(Title),
    body: Type.Optional(Body),
    position: Type.Optional(Position),
    publishedAt: Type.Optional(PublishedAt),
  },
  { additionalProperties: false },
);

export const LessonParams = Type.Object({ lessonId: Id });

export const LessonSchema = Type.Object({
  id: Type.String(),
  courseId: Type.String(),
  title: Type.String(),
  body: Type.String(),
  position: Type.Integer(),
  publishedAt: Type.Union([Type.String(), Type.Null()]),
});

export const ExerciseSummarySchema = Type.Object({
  id: Type.String(),
  title: Type.String(),
  language: Type.String(),
  maxScore: Type.Number(),
  dueAt: Type.Union([Type.String(), Type.Null()]),
  publishedAt: Type.Union([Type.String(), Type.Null()]),
});
