import { api } from '../api/client.ts';
import type { Progress } from '../api/types.ts';

// Kept apart from course.tsx so the course list (in the first bundle) does not pull the course page in.
export const loadProgress = (courseId: string, signal?: AbortSignal) =>
  api<Progress>('GET', `/courses/${encodeURIComponent(courseId)}/progress`, undefined, { signal });
