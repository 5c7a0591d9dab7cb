import { lazy, type ReactNode, Suspense, useEffect, useState } from 'react';
import { describeError } from './api/client.ts';
import { Loading } from './components/ui.tsx';
import { SignInPage, SignUpPage } from './pages/auth.tsx';
import { CoursesPage } from './pages/courses.tsx';
import { Link, match, navigate, useLocation } from './router.tsx';
import { useSession } from './session.tsx';

// The first page (sign-in, course list) ships alone; pages with an editor or Markdown load on demand.
const CoursePage = lazy(() => import('./pages/course.tsx'));
const CourseEditPage = lazy(() => import('./pages/course-edit.tsx'));
const MembersPage = lazy(() => import('./pages/members.tsx'));
const GradebookPage = lazy(() => import('./pages/gradebook.tsx'));
const LessonPage = lazy(() => import('./pages/lesson.tsx'));
const LessonEditPage = lazy(() => import('./pages/lesson-edit.tsx'));
const ExercisePage = lazy(() => import('./pages/exercise.tsx'));
const ExerciseEditPage = lazy(() => import('./pages/exercise-edit.tsx'));
const SubmissionsPage = lazy(() => import('./pages/submissions.tsx'));

type Route = [pattern: string, render: (p: Record<string, string>, q: URLSearchParams) => ReactNode];

const routes: Route[] = [
  ['/', () => <CoursesPage />],
  ['/courses/:courseId', (p) => <CoursePage courseId={p.courseId!} />],
  ['/courses/:courseId/edit', (p) => <CourseEditPage courseId={p.courseId!} />],
  ['/courses/:courseId/members', (p) => <MembersPage courseId={p.courseId!} />],
  ['/courses/:courseId/gradebook', (p) => <GradebookPage courseId={p.courseId!} />],
  ['/courses/:courseId/lessons/new', (p) => <LessonEditPage courseId={p.courseId!} />],
  ['/lessons/:lessonId', (p) => <LessonPage lessonId={p.lessonId!} />],
  ['/lessons/:lessonId/edit', (p) => <LessonEditPage lessonId={p.lessonId!} />],
  ['/lessons/:lessonId/exercises/new', (p) => <ExerciseEditPage lessonId={p.lessonId!} />],
  ['/exercises/:exerciseId', (p) => <ExercisePage exerciseId={p.exerciseId!} />],
  [
    '/exercises/:exerciseId/edit',
    (p, q) => <ExerciseEditPage exerciseId={p.exerciseId!} check={q.get('check') === '1'} />,
  ],
  [
    '/exercises/:exerciseId/submissions',
    (p, q) => <SubmissionsPage exerciseId={p.exerciseId!} userId={q.get('userId') ?? undefined} />,
  ],
];

function Header() {
  const { user, signOut } = useSession();
  const [error, setError] = useState<unknown>(null);
  return (
    <header className="site-header">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Link href="/" className="brand">
        Lab
      </Link>
      {user && (
        <nav aria-label="Main">
          <Link href="/">My courses</Link>
          <span className="who" title={user.email}>
            {user.name}
          </span>
          <button
            type="button"
            className="link-button"
            onClick={() => signOut().catch((err) => setError(err))}
          >
            Sign out
          </button>
          {error ? (
            <span className="error" role="alert">
              {describeError(error)}
            </span>
          ) : null}
        </nav>
      )}
    </header>
  );
}

export function App() {
  const { user, ready } = useSession();
  const { path, query } = useLocation();
  const isAuthPage = path === '/signin' || path === '/signup';

  useEffect(() => {
    if (ready && !user && !isAuthPage) {
      const here = window.location.pathname + window.location.search;
      navigate(here === '/' ? '/signin' : `/signin?next=${encodeURIComponent(here)}`, { replace: true });
    }
  }, [ready, user, isAuthPage]);

  let page: ReactNode;
  if (!ready) page = <Loading />;
  else if (path === '/signin') page = <SignInPage next={query.get('next')} />;
  else if (path === '/signup') page = <SignUpPage next={query.get('next')} />;
  else if (!user) page = <Loading />;
  else {
    page = (
      <div className="panel">
        <h1>Page not found</h1>
        <p>
          There is nothing at this address. <Link href="/">Go to my courses</Link>.
        </p>
      </div>
    );
    for (const [pattern, render] of routes) {
      const params = match(pattern, path);
      if (params) {
        page = render(params, query);
        break;
      }
    }
  }

  return (
    <>
      <Header />
      {/* The gradebook takes the whole width: a class has many exercises. */}
      <main id="main" tabIndex={-1} className={path.endsWith('/gradebook') ? 'wide' : undefined}>
        <Suspense fallback={<Loading />}>
          <div key={path}>{page}</div>
        </Suspense>
      </main>
    </>
  );
}
