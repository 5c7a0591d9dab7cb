import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { api } from '../api/client.ts';
import { useStreamState, useSubmissionEvents } from '../api/events.ts';
import type { Gradebook, Submission } from '../api/types.ts';
import {
  ArchivedBanner,
  Breadcrumb,
  Loaded,
  PageHeading,
  PublishBadge,
  publishState,
  useLoad,
} from '../components/ui.tsx';
import { Link, useTitle } from '../router.tsx';
import { loadCourse } from './course.tsx';

type SortKey = 'name' | 'total' | `ex:${string}`;
type Row = Gradebook['rows'][number];

const round2 = (n: number) => Math.round(n * 100) / 100;

function GradebookTable({ gradebook, courseTitle }: { gradebook: Gradebook; courseTitle: string }) {
  const [sort, setSort] = useState<{ key: SortKey; dir: 1 | -1 }>({ key: 'name', dir: 1 });
  const maxTotal = round2(gradebook.exercises.reduce((a, e) => a + e.maxScore, 0));

  const rows = useMemo(() => {
    const value = (r: Row): string | number => {
      if (sort.key === 'name') return r.user.name.toLowerCase();
      if (sort.key === 'total') return r.total;
      return r.scores[sort.key.slice(3)] ?? -1;
    };
    return [...gradebook.rows].sort((a, b) => {
      const x = value(a);
      const y = value(b);
      return (x < y ? -1 : x > y ? 1 : 0) * sort.dir;
    });
  }, [gradebook.rows, sort]);

  const sortButton = (key: SortKey, label: React.ReactNode, numeric: boolean) => {
    const active = sort.key === key;
    return (
      <button
        type="button"
        className="sort"
        onClick={() => setSort({ key, dir: active ? (sort.dir === 1 ? -1 : 1) : numeric ? -1 : 1 })}
      >
        {label}
        <span aria-hidden="true">{active ? (sort.dir === 1 ? ' ▲' : ' ▼') : ' ↕'}</span>
      </button>
    );
  };
  const ariaSort = (key: SortKey) =>
    sort.key === key ? (sort.dir === 1 ? 'ascending' : 'descending') : ('none' as const);

  const n = gradebook.rows.length;
  const avg = (f: (r: Row) => number | null) => {
    const vals = gradebook.rows.map(f).filter((v): v is number => v !== null);
    return vals.length ? round2(vals.reduce((a, b) => a + b, 0) / vals.length) : '—';
  };

  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling table must be reachable by keyboard
    <section className="table-wrap gradebook-wrap" tabIndex={0} aria-label="Gradebook table">
      <table className="gradebook">
        <caption>
          Best score per exercise for the {n} {n === 1 ? 'student' : 'students'} of {courseTitle}. “late”: the
          best submission was late; ×n: attempts used. Select a column to sort, a score to read the
          submissions.
        </caption>
        <thead>
          <tr>
            <th scope="col" className="sticky-col" aria-sort={ariaSort('name')}>
              {sortButton('name', 'Name', false)}
            </th>
            {gradebook.exercises.map((e) => (
              <th key={e.id} scope="col" className="num" aria-sort={ariaSort(`ex:${e.id}`)}>
                {sortButton(
                  `ex:${e.id}`,
                  <>
                    {e.title} <span className="muted">/{e.maxScore}</span>
                  </>,
                  true,
                )}
                {publishState(e.publishedAt) !== 'published' && (
                  <>
                    <br />
                    <PublishBadge publishedAt={e.publishedAt} />
                  </>
                )}
              </th>
            ))}
            <th scope="col" className="num" aria-sort={ariaSort('total')}>
              {sortButton('total', `Total /${maxTotal}`, true)}
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.user.id} data-user-id={r.user.id}>
              <th scope="row" className="sticky-col">
                {r.user.name}
                <br />
                <small className="muted">{r.user.email}</small>
              </th>
              {gradebook.exercises.map((e) => {
                const s = r.scores[e.id];
                const late = r.late[e.id] === true;
                const attempts = r.attempts[e.id] ?? 0;
                return (
                  <td key={e.id} className="num" data-exercise-id={e.id}>
                    <Link
                      href={`/exercises/${e.id}/submissions?userId=${encodeURIComponent(r.user.id)}`}
                      aria-label={`${r.user.name}, ${e.title}: ${s ?? 'no submission'}${late ? ', late' : ''}, ${attempts} ${attempts === 1 ? 'attempt' : 'attempts'}; view submissions`}
                    >
                      <span className="cell-score">{s ?? '—'}</span>
                      {late && <span className="badge late">late</span>}
                      {attempts > 0 && <span className="attempts">×{attempts}</span>}
                    </Link>
                  </td>
                );
              })}
              <td className="num">
                <strong>{r.total}</strong>
              </td>
            </tr>
          ))}
        </tbody>
        {n > 0 && (
          <tfoot>
            <tr>
              <th scope="row" className="sticky-col">
                Class average
              </th>
              {gradebook.exercises.map((e) => (
                <td key={e.id} className="num">
                  {avg((r) => r.scores[e.id] ?? null)}
                </td>
              ))}
              <td className="num">{avg((r) => r.total)}</td>
            </tr>
          </tfoot>
        )}
      </table>
    </section>
  );
}

export default function GradebookPage({ courseId }: { courseId: string }) {
  useTitle('Gradebook');
  const state = useLoad(
    async (signal) => {
      const started = performance.now();
      const [c, gradebook] = await Promise.all([
        loadCourse(courseId, signal),
        api<Gradebook>('GET', `/courses/${encodeURIComponent(courseId)}/gradebook`, undefined, { signal }),
      ]);
      return { ...c, gradebook, at: new Date(), tookMs: performance.now() - started };
    },
    [courseId],
  );
  const stream = useStreamState();
  // Live: a graded submission of one of this course's exercises reloads the table, at most once in 2 s,
  // or in ten times the last load's duration when that is longer: the gradebook is a heavy read (an
  // 8,000-student course is ~14 MB), during a deadline burst events come many a second, and an open tab
  // should not keep the server (or itself) loading more than a tenth of the time.
  const exerciseIds = useRef(new Set<string>());
  exerciseIds.current = new Set(state.data?.gradebook.exercises.map((e) => e.id) ?? []);
  const lastLoadMs = useRef(0);
  lastLoadMs.current = state.data?.tookMs ?? 0;
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const { reload } = state;
  const onEvent = useCallback(
    (s: Submission) => {
      if (s.status === 'queued' || s.status === 'running' || !exerciseIds.current.has(s.exerciseId)) return;
      if (timer.current) return;
      timer.current = setTimeout(
        () => {
          timer.current = undefined;
          reload();
        },
        Math.max(2000, 10 * lastLoadMs.current),
      );
    },
    [reload],
  );
  useSubmissionEvents(onEvent);
  useEffect(() => () => clearTimeout(timer.current), []);
  return (
    <Loaded state={state}>
      {({ course, gradebook, at }) => (
        <>
          <Breadcrumb trail={[[`/courses/${course.id}`, course.title]]} />
          <ArchivedBanner course={course} />
          <div className="title-row">
            <PageHeading>Gradebook</PageHeading>
            <span className={`badge live-${stream}`} role="status" data-testid="live">
              {stream === 'open' ? `Live · updated ${at.toLocaleTimeString()}` : 'Not live: use Refresh'}
            </span>
            <a
              className="button"
              href={`/api/v1/courses/${encodeURIComponent(course.id)}/gradebook?format=csv`}
              download
            >
              Download CSV
            </a>
            <button type="button" onClick={state.reload} disabled={state.loading}>
              {state.loading ? 'Refreshing…' : 'Refresh'}
            </button>
          </div>
          {gradebook.exercises.length === 0 && <p className="empty">No exercises yet.</p>}
          <GradebookTable gradebook={gradebook} courseTitle={course.title} />
        </>
      )}
    </Loaded>
  );
}
