import type { PublicUser } from '../auth/auth.queries.ts';

export function presentUser(u: PublicUser) {
  return { id: u.id, email: u.email, name: u.name, createdAt: u.createdAt.toISOString() };
}
