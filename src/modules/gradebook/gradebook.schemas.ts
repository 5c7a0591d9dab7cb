import { type Static, Type } from '@sinclair/typebox';

export const Score = Type.Union([Type.Number(), Type.Null()]);

export const GradebookResponse = Type.Object({
  exercises: Type.Array(
    Type.Object({
      id: Type.String(),
      title: Type.String(),
      maxScore: Type.Number(),
      publishedAt: Type.Union([Type.String(), Type.Null()]),
    }),
  ),
  rows: Type.Array(
    Type.Object({
      user: Type.Object({ id: Type.String(), name: Type.String(), email: Type.String() }),
      scores: Type.Record(Type.String(), Score),
      /** v1.1: the best submission was late. */
      late: Type.Record(Type.String(), Type.Boolean()),
      /** v1.1: attempts used. */
      attempts: Type.Record(Type.String(), Type.Integer()),
      total: Type.Number(),
    }),
  ),
});

/** The JSON gradebook (written as text by gradebook.render.ts); this schema documents it in /docs. */
export type Gradebook = Static<typeof GradebookResponse>;
