import type { ExceptionRow } from './exception.queries.ts';
export function presentException(x: ExceptionRow) {
  return {
    userId: x.userId,
    dueAt: x.dueAt ? x.dueAt.toISOString() : null,
    extraAttempts: x.extraAttempts,
    ...(x.name !== undefined ? { user: { id: x.userId, name: x.name, email: x.email ?? '' } } : {}),
  };
}
