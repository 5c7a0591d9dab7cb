import type { courseRole } from '../../db/schema/index.ts';
import { AppError, forbidden, notFound } from '../../shared/errors.ts';

/** A role in a course (the course_role enum). */
export type Role = (typeof courseRole.enumValues)[number];

/**
 * Small pure policy functions: who may do what in a course, given their role there (null = not a
 * member). Outsiders get 404, not 403, so they cannot probe which course ids exist (API.md).
 */
export const can = {
  view: (role: Role | null) => role !== null,
  edit: (role: Role | null) => role === 'instructor',
  author: (role: Role | null) => role === 'instructor' || role === 'ta',
  seeStaffData: (role: Role | null) => role === 'instructor' || role === 'ta',
  manageMembers: (role: Role | null) => role === 'instructor',
};

export const isStaff = (role: Role | null): role is 'instructor' | 'ta' =>
  role === 'instructor' || role === 'ta';

/** Throws 404 for outsiders and 403 for members whose role does not allow the action. */
export function authorize(
  role: Role | null,
  allowed: (role: Role | null) => boolean,
  what = 'Course',
): asserts role is Role {
  if (role === null) throw notFound(what);
  if (!allowed(role)) throw forbidden();
}

/** An archived course is read-only (v1.1): no submissions, runs or content changes until it is unarchived. */
export function assertNotArchived(archived: boolean) {
  if (archived)
    throw new AppError(
      409,
      'course_archived',
      'This course is archived: it is read-only until it is unarchived.',
    );
}

/** Staff see drafts and scheduled lessons and exercises; students only what is published. */
export const canSee = (role: Role | null, published: boolean) =>
  role !== null && (published || isStaff(role));

/**
 * The one way a read of a course's thing decides "outsider → 404" (API.md: a resource the caller may
 * not know exists). `found` is the row read together with the caller's role in its course — null or
 * undefined when there is no such row, `role` null when the caller is not a member — and `visible`
 * whether it is published (students get 404 for drafts and scheduled ones; absent = published). Then
 * `allowed` (default: any member) decides 403.
 */
export function requireVisible<T extends { role: Role | null; visible?: boolean }>(
  found: T | null | undefined,
  what: string,
  allowed: (role: Role | null) => boolean = can.view,
): T & { role: Role } {
  if (!found || !canSee(found.role, found.visible ?? true)) throw notFound(what);
  const { role } = found;
  authorize(role, allowed, what);
  return { ...found, role };
}
