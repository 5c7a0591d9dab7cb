import { useEffect } from 'react';
import { api } from '../api/client.ts';
import type { ExerciseSummary, Lesson, Progress } from '../api/types.ts';
import { Markdown } from '../components/markdown.tsx';
import {
  ArchivedBanner,
  Breadcrumb,
  formatDate,
  isStaffRole,
  Loaded,
  PageHeading,
  PublishBadge,
  useLoad,
} from '../components/ui.tsx';
import { Link, useTitle } from '../router.tsx';
import { loadCourse, loadProgress, markVisited, progressMark } from './course.tsx';

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
      const progress: Progress | null = isStaffRole(c.course.role)
        ? null
        : await loadProgress(c.course.id, signal).catch(() => null);
      return { ...l, ...c, courseLessons: c.lessons, progress };
    },
    [lessonId],
  );
  useTitle(state.data?.lesson.title ?? 'Lesson');
  useEffect(() => {
    if (state.data) markVisited(state.data.lesson.id);
  }, [state.data]);
  return (
    <Loaded state={state}>
      {({ lesson, exercises, course, courseLessons, progress }) => {
        const staff = isStaffRole(course.role);
        const i = courseLessons.findIndex((l) => l.id === lesson.id);
        const prev = i > 0 ? courseLessons[i - 1] : undefined;
        const next = i >= 0 ? courseLessons[i + 1] : undefined;
        const mine = new Map((progress?.exercises ?? []).map((e) => [e.id, e]));
        return (
          <article>
            <Breadcrumb trail={[[`/courses/${course.id}`, course.title]]} />
            <ArchivedBanner course={course} />
            <div className="title-row">
              <PageHeading>{lesson.title}</PageHeading>
              {staff && <PublishBadge publishedAt={lesson.publishedAt} />}
              {staff && !course.archived && (
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
            {i >= 0 && (
              <p className="muted">
                Lesson {i + 1} of {courseLessons.length}
              </p>
            )}
            <Markdown source={lesson.body} className="lesson-body" />
            <section aria-labelledby="exercises-heading">
              <h2 id="exercises-heading">Exercises</h2>
              {exercises.length === 0 ? (
                <p className="empty">This lesson has no exercises.</p>
              ) : (
                <ul className="exercise-list">
                  {exercises.map((e) => {
                    const p = mine.get(e.id);
                    const m = p ? progressMark(p) : null;
                    return (
                      <li key={e.id} className="card">
                        {m && (
                          <span className={`mark mark-${m.cls}`} aria-hidden="true">
                            {m.mark}
                          </span>
                        )}{' '}
                        <Link href={`/exercises/${e.id}`}>{e.title}</Link>
                        {m && <span className="visually-hidden"> ({m.label})</span>}
                        <span className="muted">
                          {' '}
                          {e.language === 'python' ? 'Python' : 'JavaScript'} · {e.maxScore} points
                          {(p?.dueAt ?? e.dueAt) && ` · due ${formatDate(p?.dueAt ?? e.dueAt)}`}
                          {p && p.bestScore !== null && ` · best ${p.bestScore}`}
                        </span>{' '}
                        {staff && <PublishBadge publishedAt={e.publishedAt} />}
                      </li>
                    );
                  })}
                </ul>
              )}
            </section>
            <nav className="pager" aria-label="Lessons of this course">
              {prev ? (
                <Link href={`/lessons/${prev.id}`} rel="prev">
                  ← Previous: {prev.title}
                </Link>
              ) : (
                <span />
              )}
              <Link href={`/courses/${course.id}`}>All lessons</Link>
              {next ? (
                <Link href={`/lessons/${next.id}`} rel="next">
                  Next: {next.title} →
                </Link>
              ) : (
                <span />
              )}
            </nav>
          </article>
        );
      }}
    </Loaded>
  );
}
