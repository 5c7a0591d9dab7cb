import { isStaff } from './course.policy.ts';
import type { CourseRow, LessonSummaryRow, MemberRow } from './course.queries.ts';

/** The join code lets anyone in, so only staff see it. */
export function presentCourse(c: CourseRow) {
  return {
    id: c.id,
    title: c.title,
    description: c.description,
    ...(isStaff(c.role) ? { joinCode: c.joinCode } : {}),
    role: c.role,
    archived: c.archivedAt !== null,
    createdAt: c.createdAt.toISOString(),
  };
}

export function presentMember(m: MemberRow) {
  return {
    user: { id: m.userId, name: m.name, email: m.email },
    role: m.role,
    joinedAt: m.joinedAt.toISOString(),
  };
}

export function presentLessonSummary(l: LessonSummaryRow) {
  return {
    id: l.id,
    title: l.title,
    position: l.position,
    exerciseCount: l.exerciseCount,
    publishedAt: l.publishedAt === null ? null : new Date(l.publishedAt).toISOString(),
  };
}
