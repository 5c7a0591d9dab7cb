import { useState } from 'react';
import { api } from '../api/client.ts';
import type { Course, LessonSummary } from '../api/types.ts';
import {
  ArchivedBanner,
  Breadcrumb,
  ErrorMessage,
  formatDate,
  Input,
  isStaffRole,
  Loaded,
  Loading,
  PageHeading,
  PublishBadge,
  RoleBadge,
  SubmitButton,
  useLoad,
  useSubmit,
} from '../components/ui.tsx';
import { Link, navigate, useTitle } from '../router.tsx';
import { loadProgress } from './course-data.ts';

export interface CourseData {
  course: Course;
  lessons: LessonSummary[];
}

export const loadCourse = (courseId: string, signal: AbortSignal) =>
  api<CourseData>('GET', `/courses/${encodeURIComponent(courseId)}`, undefined, { signal });

export { loadProgress };

/** Where a student stands on an exercise, as a word and a mark. */
export function progressMark(e: { bestScore: number | null; maxScore: number }) {
  if (e.bestScore === null) return { mark: '○', label: 'not started', cls: 'todo' };
  if (e.bestScore >= e.maxScore) return { mark: '✓', label: 'done', cls: 'done' };
  return { mark: '◐', label: 'partly done', cls: 'partial' };
}

function ProgressPanel({ courseId }: { courseId: string }) {
  const progress = useLoad((signal) => loadProgress(courseId, signal), [courseId]);
  if (progress.error) return <ErrorMessage error={progress.error} />;
  if (!progress.data) return <Loading label="Loading your progress…" />;
  const p = progress.data;
  const pct = p.maxTotal > 0 ? Math.round((100 * p.total) / p.maxTotal) : 0;
  return (
    <section className="card" aria-labelledby="progress-heading">
      <h2 id="progress-heading">Your progress</h2>
      <p>
        <strong>{p.total}</strong> of {p.maxTotal} points ({pct} %)
      </p>
      <progress max={100} value={pct} aria-label="Course progress">
        {pct} %
      </progress>
      {p.exercises.length > 0 && (
        <ul className="plain progress-list">
          {p.exercises.map((e) => {
            const m = progressMark(e);
            return (
              <li key={e.id}>
                <span className={`mark mark-${m.cls}`} aria-hidden="true">
                  {m.mark}
                </span>{' '}
                <Link href={`/exercises/${e.id}`}>{e.title}</Link>{' '}
                <span className="muted">
                  <span className="visually-hidden">{m.label}, </span>
                  {e.bestScore === null ? 'not attempted' : `${e.bestScore} / ${e.maxScore}`} · {e.attempts}{' '}
                  {e.attempts === 1 ? 'attempt' : 'attempts'}
                  {e.attemptsLeft !== null && `, ${e.attemptsLeft} left`}
                  {e.dueAt && ` · due ${formatDate(e.dueAt)}`}
                  {e.late && ' · late'}
                </span>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}

function JoinCode({ course, onChange }: { course: Course; onChange: (c: Course) => void }) {
  const form = useSubmit();
  const [status, setStatus] = useState('');
  const regenerate = async () => {
    if (!window.confirm('Make a new join code? The current code stops working at once.')) return;
    const r = await form.run(() => api<{ course: Course }>('POST', `/courses/${course.id}/join-code`));
    if (r) {
      onChange(r.course);
      setStatus('New join code made; the old one no longer works.');
    }
  };
  return (
    <div className="join-code-row">
      <p>
        Join code: <code className="join-code">{course.joinCode}</code>
      </p>
      {course.role === 'instructor' && (
        <button type="button" onClick={regenerate} disabled={form.busy} aria-busy={form.busy}>
          New join code
        </button>
      )}
      <span role="status" className="muted">
        {status}
      </span>
      <ErrorMessage error={form.error} />
    </div>
  );
}

/** Copy (v1.1): lessons and exercises into a new course of which the caller is instructor. */
function CopyCourse({ course }: { course: Course }) {
  const [title, setTitle] = useState(`${course.title} (copy)`);
  const form = useSubmit();
  const submit = form.onSubmit(
    () => api<{ course: Course }>('POST', `/courses/${course.id}/copy`, { title }),
    (r) => navigate(`/courses/${r.course.id}`),
  );
  return (
    <form onSubmit={submit} className="inline-form" noValidate aria-labelledby="copy-heading">
      <h3 id="copy-heading">Copy this course</h3>
      <p className="muted">
        Lessons and exercises with their tests and settings; no members, no submissions.
      </p>
      <Input
        label="Title of the copy"
        value={title}
        onChange={(e) => setTitle(e.target.value)}
        error={form.fieldError('title')}
      />
      <ErrorMessage error={form.error} />
      <SubmitButton busy={form.busy}>Copy course</SubmitButton>
    </form>
  );
}

function Archive({ course, onChange }: { course: Course; onChange: (c: Course) => void }) {
  const form = useSubmit();
  const toggle = async () => {
    const archived = !course.archived;
    if (
      archived &&
      !window.confirm(
        'Archive this course? It becomes read-only: no submissions, runs or changes until unarchived.',
      )
    )
      return;
    const r = await form.run(() => api<{ course: Course }>('PATCH', `/courses/${course.id}`, { archived }));
    if (r) onChange(r.course);
  };
  return (
    <div>
      <button type="button" onClick={toggle} disabled={form.busy} aria-busy={form.busy}>
        {course.archived ? 'Unarchive course' : 'Archive course'}
      </button>
      <ErrorMessage error={form.error} />
    </div>
  );
}

function StaffTools({ course, onChange }: { course: Course; onChange: (c: Course) => void }) {
  const exportName = `${course.title.replace(/[/\\:*?"<>|]+/g, '-')}.lab-course.json`;
  return (
    <section className="card staff-tools" aria-labelledby="staff-heading">
      <h2 id="staff-heading">Teaching</h2>
      {course.joinCode && <JoinCode course={course} onChange={onChange} />}
      <ul className="actions">
        {course.role === 'instructor' && (
          <li>
            <Link href={`/courses/${course.id}/edit`}>Edit course</Link>
          </li>
        )}
        {!course.archived && (
          <li>
            <Link href={`/courses/${course.id}/lessons/new`}>Add a lesson</Link>
          </li>
        )}
        <li>
          <Link href={`/courses/${course.id}/members`}>Members &amp; roles</Link>
        </li>
        <li>
          <Link href={`/courses/${course.id}/gradebook`}>Gradebook</Link>
        </li>
        <li>
          <a href={`/api/v1/courses/${encodeURIComponent(course.id)}/export`} download={exportName}>
            Export (JSON)
          </a>
        </li>
      </ul>
      <div className="two-col">
        <CopyCourse course={course} />
        {course.role === 'instructor' && (
          <div>
            <h3>Archive</h3>
            <p className="muted">At the end of term: the course stays readable, nothing can be changed.</p>
            <Archive course={course} onChange={onChange} />
          </div>
        )}
      </div>
    </section>
  );
}

const VISITED = 'lab:visited';
export function markVisited(lessonId: string) {
  try {
    const v = new Set(JSON.parse(window.localStorage.getItem(VISITED) ?? '[]') as string[]);
    v.add(lessonId);
    window.localStorage.setItem(VISITED, JSON.stringify([...v].slice(-2000)));
  } catch {
    // Marks are a convenience.
  }
}
function visited(): Set<string> {
  try {
    return new Set(JSON.parse(window.localStorage.getItem(VISITED) ?? '[]') as string[]);
  } catch {
    return new Set();
  }
}

export default function CoursePage({ courseId }: { courseId: string }) {
  const state = useLoad((signal) => loadCourse(courseId, signal), [courseId]);
  useTitle(state.data?.course.title ?? 'Course');
  return (
    <Loaded state={state}>
      {({ course, lessons }) => {
        const staff = isStaffRole(course.role);
        const seen = visited();
        const onChange = (c: Course) => state.set({ course: c, lessons });
        return (
          <>
            <Breadcrumb trail={[]} />
            <ArchivedBanner course={course} />
            <div className="title-row">
              <PageHeading>{course.title}</PageHeading>
              <RoleBadge role={course.role} />
              {course.archived && <span className="badge archived">Archived</span>}
            </div>
            {course.description && <p className="lead">{course.description}</p>}
            {staff && <StaffTools course={course} onChange={onChange} />}
            <section aria-labelledby="lessons-heading">
              <h2 id="lessons-heading">Lessons</h2>
              {lessons.length === 0 ? (
                <p className="empty">No lessons yet.</p>
              ) : (
                <ol className="lesson-list">
                  {lessons.map((l) => (
                    <li key={l.id}>
                      {!staff && (
                        <span
                          className={`mark ${seen.has(l.id) ? 'mark-done' : 'mark-todo'}`}
                          aria-hidden="true"
                        >
                          {seen.has(l.id) ? '✓' : '○'}
                        </span>
                      )}{' '}
                      <Link href={`/lessons/${l.id}`}>{l.title}</Link>{' '}
                      {!staff && (
                        <span className="visually-hidden">
                          {seen.has(l.id) ? '(read)' : '(not read yet)'}
                        </span>
                      )}
                      <span className="muted">
                        {l.exerciseCount} {l.exerciseCount === 1 ? 'exercise' : 'exercises'}
                      </span>{' '}
                      {staff && <PublishBadge publishedAt={l.publishedAt} />}
                    </li>
                  ))}
                </ol>
              )}
            </section>
            {!staff && <ProgressPanel courseId={course.id} />}
          </>
        );
      }}
    </Loaded>
  );
}
