import type { GradebookExercise, GradebookStudent, ProgressRow } from './gradebook.queries.ts';

export const round2 = (n: number) => Math.round(n * 100) / 100;

export function presentGradebook(data: { exercises: GradebookExercise[]; students: GradebookStudent[] }) {
  const exercises = data.exercises.map((e) => ({
    id: e.id,
    title: e.title,
    maxScore: Number(e.maxScore),
    publishedAt: e.publishedAt === null ? null : new Date(e.publishedAt).toISOString(),
  }));
  const rows = data.students.map((s) => {
    const scores: Record<string, number | null> = {};
    const late: Record<string, boolean> = {};
    const attempts: Record<string, number> = {};
    let total = 0;
    for (const e of exercises) {
      const best = s.scores[e.id];
      scores[e.id] = best === undefined ? null : Number(best);
      late[e.id] = s.late[e.id] === true;
      attempts[e.id] = s.attempts[e.id] ?? 0;
      total += best === undefined ? 0 : Number(best);
    }
    return { user: { id: s.id, name: s.name, email: s.email }, scores, late, attempts, total: round2(total) };
  });
  return { exercises, rows };
}

/**
 * A spreadsheet would run a cell starting with = + - @ (or tab/CR) as a formula, and names and titles
 * are typed by users: such cells get a leading apostrophe (OWASP "CSV injection"). The CSV export
 * applies the same rule in SQL (gradebook.queries.ts); the tests hold both to the same output.
 */
export const defuse = (cell: string) => (/^[=+\-@\t\r]/.test(cell) ? `'${cell}` : cell);

export function presentProgress(rows: ProgressRow[]) {
  const total = rows.reduce((sum, r) => sum + (r.bestScore ?? 0), 0);
  const maxTotal = rows.reduce((sum, r) => sum + r.maxScore, 0);
  return { exercises: rows, total: round2(total), maxTotal: round2(maxTotal) };
}
