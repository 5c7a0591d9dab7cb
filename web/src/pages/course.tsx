import { api } from '../api/client.ts';
import type { Course, LessonSummary, Progress } from '../api/types.ts';
import {
  Breadcrumb,
  ErrorMessage,
  isStaffRole,
  Loaded,
  Loading,
  PageHeading,
  RoleBadge,
  useLoad,
} from '../components/ui.tsx';
import { Link, useTitle } from '../router.tsx';

export interface CourseData {
  course: Course;
  lessons: LessonSummary[];
}

export const loadCourse = (courseId: string, signal: AbortSignal) =>
  api<CourseData>('GET', `/courses/${encodeURIComponent(courseId)}`, undefined, { signal });

function ProgressPanel({ courseId }: { courseId: string }) {
  const progress = useLoad(
    (signal) =>
      api<Progress>('GET', `/courses/${encodeURIComponent(courseId)}/progress`, undefined, { signal }),
    [courseId],
  );
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
        <ul className="plain">
          {p.exercises.map((e) => (
            <li key={e.id}>
              <Link href={`/exercises/${e.id}`}>{e.title}</Link>{' '}
              <span className="muted">
                {e.bestScore === null ? 'not attempted' : `${e.bestScore} / ${e.maxScore}`} · {e.attempts}{' '}
                {e.attempts === 1 ? 'attempt' : 'attempts'}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export default function CoursePage({ courseId }: { courseId: string }) {
  const state = useLoad((signal) => loadCourse(courseId, signal), [courseId]);
  useTitle(state.data?.course.title ?? 'Course');
  return (
    <Loaded state={state}>
      {({ course, lessons }) => {
        const staff = isStaffRole(course.role);
        return (
          <>
            <Breadcrumb trail={[]} />
            <div className="title-row">
              <PageHeading>{course.title}</PageHeading>
              <RoleBadge role={course.role} />
            </div>
            {course.description && <p className="lead">{course.description}</p>}
            {staff && (
              <section className="card staff-tools" aria-labelledby="staff-heading">
                <h2 id="staff-heading">Teaching</h2>
                {course.joinCode && (
                  <p>
                    Join code: <code className="join-code">{course.joinCode}</code>
                  </p>
                )}
                <ul className="actions">
                  {course.role === 'instructor' && (
                    <li>
                      <Link href={`/courses/${course.id}/edit`}>Edit course</Link>
                    </li>
                  )}
                  <li>
                    <Link href={`/courses/${course.id}/lessons/new`}>Add a lesson</Link>
                  </li>
                  <li>
                    <Link href={`/courses/${course.id}/members`}>Members &amp; roles</Link>
                  </li>
                  <li>
                    <Link href={`/courses/${course.id}/gradebook`}>Gradebook</Link>
                  </li>
                </ul>
              </section>
            )}
            <section aria-labelledby="lessons-heading">
              <h2 id="lessons-heading">Lessons</h2>
              {lessons.length === 0 ? (
                <p className="empty">No lessons yet.</p>
              ) : (
                <ol className="lesson-list">
                  {lessons.map((l) => (
                    <li key={l.id}>
                      <Link href={`/lessons/${l.id}`}>{l.title}</Link>{' '}
                      <span className="muted">
                        {l.exerciseCount} {l.exerciseCount === 1 ? 'exercise' : 'exercises'}
                      </span>
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
