import { api } from '../api/client.ts';
import type { ExerciseSummary, Lesson } from '../api/types.ts';
import { Markdown } from '../components/markdown.tsx';
import { Breadcrumb, formatDate, isStaffRole, Loaded, PageHeading, useLoad } from '../components/ui.tsx';
import { Link, useTitle } from '../router.tsx';
import { loadCourse } from './course.tsx';

export interface LessonData {
  lesson: Lesson;
  exercises: ExerciseSummary[];
}

export const loadLesson = (lessonId: string, signal: AbortSignal) =>
  api<LessonData>('GET', `/lessons/${encodeURIComponent(lessonId)}`, undefined, { signal });

export default function LessonPage({ lessonId }: { lessonId: string }) {
  const state = useLoad(
    async (signal) => {
      const l = await loadLesson(lessonId, signal);
      const c = await loadCourse(l.lesson.courseId, signal);
      return { ...l, ...c };
    },
    [lessonId],
  );
  useTitle(state.data?.lesson.title ?? 'Lesson');
  return (
    <Loaded state={state}>
      {({ lesson, exercises, course }) => {
        const staff = isStaffRole(course.role);
        return (
          <article>
            <Breadcrumb trail={[[`/courses/${course.id}`, course.title]]} />
            <div className="title-row">
              <PageHeading>{lesson.title}</PageHeading>
              {staff && (
                <>
                  <Link className="button" href={`/lessons/${lesson.id}/edit`}>
                    Edit lesson
                  </Link>
                  <Link className="button" href={`/lessons/${lesson.id}/exercises/new`}>
                    Add exercise
                  </Link>
                </>
              )}
            </div>
            <Markdown source={lesson.body} className="lesson-body" />
            <section aria-labelledby="exercises-heading">
              <h2 id="exercises-heading">Exercises</h2>
              {exercises.length === 0 ? (
                <p className="empty">This lesson has no exercises.</p>
              ) : (
                <ul className="exercise-list">
                  {exercises.map((e) => (
                    <li key={e.id} className="card">
                      <Link href={`/exercises/${e.id}`}>{e.title}</Link>
                      <span className="muted">
                        {' '}
                        {e.language === 'python' ? 'Python' : 'JavaScript'} · {e.maxScore} points
                        {e.dueAt && ` · due ${formatDate(e.dueAt)}`}
                      </span>
                    </li>
                  ))}
                </ul>
              )}
            </section>
          </article>
        );
      }}
    </Loaded>
  );
}
