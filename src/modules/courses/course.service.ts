import { randomBytes } from 'node:crypto';
import type { Db, Tx } from '../../db/client.ts';
import { isUniqueViolation } from '../../db/errors.ts';
import { parsePage, toPage } from '../../http/pagination.ts';
import { isUuid } from '../../http/schemas.ts';
import { AppError, notFound } from '../../shared/errors.ts';
import type { Caller } from '../auth/auth.queries.ts';
import { assertNotArchived, authorize, can, type Role } from './course.policy.ts';
import { presentCourse, presentMember } from './course.presenter.ts';
import * as q from './course.queries.ts';
import { selectMembership, selectRole } from './membership.queries.ts';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** 8 base32 characters = 40 random bits: not guessable through an API that needs a sign-in per try. */
export function newJoinCode(): string {
  const bytes = randomBytes(5);
  let bits = 0n;
  for (const b of bytes) bits = (bits << 8n) | BigInt(b);
  let out = '';
  for (let i = 7; i >= 0; i--) out += BASE32[Number((bits >> BigInt(i * 5)) & 31n)];
  return out;
}

/** Codes are shown in upper case; people type them in any case, with spaces or dashes. */
export const normaliseJoinCode = (code: string) => code.toUpperCase().replace(/[\s-]/g, '');

/**
 * A new course with the caller as its instructor. `fill` writes its content in the same transaction
 * (a copy, an import): either all of it exists afterwards, or nothing.
 */
export async function createCourse(
  db: Db,
  caller: Caller,
  input: { title: string; description?: string },
  generateCode: () => string = newJoinCode,
  fill?: (tx: Tx, courseId: string) => Promise<void>,
) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await db.transaction(async (tx) => {
        const course = await q.insertCourse(tx, {
          title: input.title,
          description: input.description ?? '',
          joinCode: generateCode(),
        });
        await q.insertMember(tx, course.id, caller.id, 'instructor');
        await fill?.(tx, course.id);
        return { ...course, role: 'instructor' as const };
      });
    } catch (err) {
      // A collision in 2^40 codes is rare; a fresh code on retry settles it.
      if (attempt < 5 && isUniqueViolation(err, 'courses_join_code_unique')) continue;
      throw err;
    }
  }
}

export async function listMyCourses(db: Db, caller: Caller, query: { limit: number; cursor?: string }) {
  const page = parsePage(query);
  const rows = await q.selectMyCourses(db, caller.id, page);
  return toPage(rows, page.limit, (r) => ({ at: r.sortKey, id: r.id }), presentCourse);
}

export async function updateCourse(
  db: Db,
  caller: Caller,
  courseId: string,
  input: { title?: string; description?: string; archived?: boolean },
) {
  return db.transaction(async (tx) => {
    const { role, archived } = await selectMembership(tx, courseId, caller.id);
    authorize(role, can.edit);
    // Archived = read-only, its title and description too; unarchiving (in the same request) opens it.
    const { archived: archive, ...rest } = input;
    const editsContent = rest.title !== undefined || rest.description !== undefined;
    if (editsContent) assertNotArchived(archive === false ? false : archived);
    const course = await q.updateCourse(tx, courseId, {
      ...rest,
      ...(archive === undefined || archive === archived ? {} : { archivedAt: archive ? new Date() : null }),
    });
    return { ...course, role };
  });
}

export async function join(db: Db, caller: Caller, joinCode: string) {
  const joined = await q.joinByCode(db, normaliseJoinCode(joinCode), caller.id);
  if (!joined.found) throw new AppError(404, 'invalid_join_code', 'No course has this join code.');
  if (!joined.course) assertNotArchived(joined.archived);
  return joined.course!;
}

/** A new join code (v1.1); the old one stops working at once. */
export async function regenerateJoinCode(
  db: Db,
  caller: Caller,
  courseId: string,
  generateCode: () => string = newJoinCode,
) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await db.transaction(async (tx) => {
        const { role } = await selectMembership(tx, courseId, caller.id);
        authorize(role, can.edit);
        return { ...(await q.updateCourse(tx, courseId, { joinCode: generateCode() })), role };
      });
    } catch (err) {
      if (attempt < 5 && isUniqueViolation(err, 'courses_join_code_unique')) continue;
      throw err;
    }
  }
}

/**
 * Removes a member (v1.1): they lose access at once; their submissions stay (and count again if
 * they rejoin). The last instructor cannot be removed.
 */
export async function removeMember(db: Db, caller: Caller, courseId: string, userId: string) {
  if (!isUuid(courseId)) throw notFound('Course');
  await db.transaction(async (tx) => {
    const locked = await q.lockCourseForRoleChange(tx, courseId, caller.id, isUuid(userId) ? userId : null);
    authorize(locked.callerRole, can.manageMembers);
    if (locked.targetRole === null) throw notFound('Member');
    if (locked.targetRole === 'instructor' && locked.instructors <= 1)
      throw new AppError(
        409,
        'last_instructor',
        'A course needs an instructor: promote another member first.',
      );
    await q.deleteMember(tx, courseId, userId);
  });
}

export async function listMembers(
  db: Db,
  caller: Caller,
  courseId: string,
  query: { limit: number; cursor?: string },
) {
  const page = parsePage(query);
  const role = await selectRole(db, courseId, caller.id);
  authorize(role, can.seeStaffData);
  const rows = await q.selectMembers(db, courseId, page);
  return toPage(rows, page.limit, (r) => ({ at: r.sortKey, id: r.userId }), presentMember);
}

export async function setMemberRole(db: Db, caller: Caller, courseId: string, userId: string, role: Role) {
  if (!isUuid(courseId)) throw notFound('Course');
  return db.transaction(async (tx) => {
    const locked = await q.lockCourseForRoleChange(tx, courseId, caller.id, isUuid(userId) ? userId : null);
    authorize(locked.callerRole, can.manageMembers);
    if (locked.targetRole === null) throw notFound('Member');
    if (locked.targetRole === 'instructor' && role !== 'instructor' && locked.instructors <= 1)
      throw new AppError(
        409,
        'last_instructor',
        'A course needs an instructor: promote another member first.',
      );
    return q.updateMemberRole(tx, courseId, userId, role);
  });
}
