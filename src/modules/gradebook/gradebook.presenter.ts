import type { ProgressRow } from './gradebook.queries.ts';
import { round2 } from './gradebook.render.ts';

export function presentProgress(rows: ProgressRow[]) {
  const total = rows.reduce((sum, r) => sum + (r.bestScore ?? 0), 0);
  const maxTotal = rows.reduce((sum, r) => sum + r.maxScore, 0);
  return { exercises: rows, total: round2(total), maxTotal: round2(maxTotal) };
}
