import { isStaff, type Role } from './course.policy.ts';

export interface CourseRow {
  id: string;
  title: string;
  description: string;
  joinCode: string;
  archivedAt: Date | null;
  createdAt: Date;
  role: Role;
}

export interface MemberRow {
  userId: string;
  name: string;
  email: string;
  role: Role;
  joinedAt: Date;
}

export interface LessonSummaryRow {
  id: string;
  title: string;
  position: number;
  exerciseCount: number;
  /** As aggregated by Postgres (json_build_object): a string. */
  publishedAt: string | null;
}

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
