import type { RunRow } from './run.queries.ts';

/** A run is only ever shown to its author: nothing to mask (a student's run has only visible tests). */
export function presentRun(r: RunRow) {
  return {
    id: r.id,
    exerciseId: r.exerciseId,
    status: r.status,
    message: r.message,
    results: r.results,
    output: r.output,
    createdAt: r.createdAt.toISOString(),
  };
}

export const isDone = (r: { status: string }) => r.status !== 'queued' && r.status !== 'running';
