import { Type } from '@sinclair/typebox';
import { Id } from '../../http/schemas.ts';

const Title = Type.String({ minLength: 1, maxLength: 200 });
const Description = Type.String({ maxLength: 10_000 });
export const RoleSchema = Type.Union([
  Type.Literal('instructor'),
  Type.Literal('ta'),
  Type.Literal('student'),
]);

export const CreateCourseBody = Type.Object(
  { title: Title, description: Type.Optional(Description) },
  { additionalProperties: false },
);

export const PatchCourseBody = Type.Object(
  {
    title: Type.Optional(Title),
    description: Type.Optional(Description),
    /** v1.1: an archived course is read-only. */
    archived: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const JoinBody = Type.Object(
  { joinCode: Type.String({ minLength: 1, maxLength: 64 }) },
  { additionalProperties: false },
);

export const PutMemberBody = Type.Object({ role: RoleSchema }, { additionalProperties: false });

export const CourseParams = Type.Object({ courseId: Id });
export const MemberParams = Type.Object({ courseId: Id, userId: Id });

export const CourseSchema = Type.Object({
  id: Type.String(),
  title: Type.String(),
  description: Type.String(),
  joinCode: Type.Optional(Type.String()),
  role: RoleSchema,
  archived: Type.Boolean(),
  createdAt: Type.String(),
});

export const LessonSummarySchema = Type.Object({
  id: Type.String(),
  title: Type.String(),
  position: Type.Integer(),
  exerciseCount: Type.Integer(),
  publishedAt: Type.Union([Type.String(), Type.Null()]),
});

export const MemberSchema = Type.Object({
  user: Type.Object({ id: Type.String(), name: Type.String(), email: Type.String() }),
  role: RoleSchema,
  joinedAt: Type.String(),
});
