import { Type } from '@sinclair/typebox';
import { Id } from '../../http/schemas.ts';

export const ExceptionParams = Type.Object({ exerciseId: Id, userId: Id });

/** v1.1. Omitted fields keep their value; dueAt null = the exercise's own due date. */
export const PutExceptionBody = Type.Object(
  {
    dueAt: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
    extraAttempts: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
  },
  { additionalProperties: false },
);

export const ExceptionSchema = Type.Object({
  userId: Type.String(),
  /** The student's own due date; null = the exercise's. */
  dueAt: Type.Union([Type.String(), Type.Null()]),
  extraAttempts: Type.Integer(),
  /** Who it is for (lists show names). */
  user: Type.Optional(Type.Object({ id: Type.String(), name: Type.String(), email: Type.String() })),
});
