import { useMemo, useState } from 'react';
import { api } from '../api/client.ts';
import type { Gradebook } from '../api/types.ts';
import { Breadcrumb, Loaded, PageHeading, useLoad } from '../components/ui.tsx';
import { Link, useTitle } from '../router.tsx';
import { loadCourse } from './course.tsx';

type SortKey = 'name' | 'email' | 'total' | `ex:${string}`;

const round2 = (n: number) => Math.round(n * 100) / 100;

function GradebookTable({ gradebook, courseTitle }: { gradebook: Gradebook; courseTitle: string }) {
  const [sort, setSort] = useState<{ key: SortKey; dir: 1 | -1 }>({ key: 'name', dir: 1 });
  const maxTotal = gradebook.exercises.reduce((a, e) => a + e.maxScore, 0);

  const rows = useMemo(() => {
    const value = (r: Gradebook['rows'][number]): string | number => {
      if (sort.key === 'name') return r.user.name.toLowerCase();
      if (sort.key === 'email') return r.user.email.toLowerCase();
      if (sort.key === 'total') return r.total;
      return r.scores[sort.key.slice(3)] ?? -1;
    };
    return [...gradebook.rows].sort((a, b) => {
      const x = value(a);
      const y = value(b);
      return (x < y ? -1 : x > y ? 1 : 0) * sort.dir;
    });
  }, [gradebook.rows, sort]);

  const header = (key: SortKey, label: string, numeric = false) => {
    const active = sort.key === key;
    return (
      <th
        scope="col"
        aria-sort={active ? (sort.dir === 1 ? 'ascending' : 'descending') : 'none'}
        className={numeric ? 'num' : ''}
      >
        <button
          type="button"
          className="sort"
          onClick={() => setSort({ key, dir: active ? (sort.dir === 1 ? -1 : 1) : numeric ? -1 : 1 })}
        >
          {label}
          <span aria-hidden="true">{active ? (sort.dir === 1 ? ' ▲' : ' ▼') : ' ↕'}</span>
        </button>
      </th>
    );
  };

  const n = gradebook.rows.length;
  const avg = (f: (r: Gradebook['rows'][number]) => number | null) => {
    const vals = gradebook.rows.map(f).filter((v): v is number => v !== null);
    return vals.length ? round2(vals.reduce((a, b) => a + b, 0) / vals.length) : '—';
  };

  return (
    <div className="table-wrap">
      <table className="gradebook">
        <caption>
          Best score per exercise for the {n} {n === 1 ? 'student' : 'students'} of {courseTitle}. Select a
          column to sort.
        </caption>
        <thead>
          <tr>
            {header('name', 'Name')}
            {header('email', 'Email')}
            {gradebook.exercises.map((e) => (
              <th
                key={e.id}
                scope="col"
                className="num"
                aria-sort={sort.key === `ex:${e.id}` ? (sort.dir === 1 ? 'ascending' : 'descending') : 'none'}
              >
                <button
                  type="button"
                  className="sort"
                  onClick={() =>
                    setSort({
                      key: `ex:${e.id}`,
                      dir: sort.key === `ex:${e.id}` ? (sort.dir === 1 ? -1 : 1) : -1,
                    })
                  }
                >
                  {e.title} <span className="muted">/{e.maxScore}</span>
                  <span aria-hidden="true">
                    {sort.key === `ex:${e.id}` ? (sort.dir === 1 ? ' ▲' : ' ▼') : ' ↕'}
                  </span>
                </button>
              </th>
            ))}
            {header('total', `Total /${maxTotal}`, true)}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.user.id}>
              <th scope="row">{r.user.name}</th>
              <td>{r.user.email}</td>
              {gradebook.exercises.map((e) => {
                const s = r.scores[e.id];
                return (
                  <td key={e.id} className="num">
                    <Link
                      href={`/exercises/${e.id}/submissions?userId=${encodeURIComponent(r.user.id)}`}
                      aria-label={`${r.user.name}, ${e.title}: ${s ?? 'no submission'}; view submissions`}
                    >
                      {s ?? '—'}
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
              <th scope="row" colSpan={2}>
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
    </div>
  );
}

export default function GradebookPage({ courseId }: { courseId: string }) {
  useTitle('Gradebook');
  const state = useLoad(
    async (signal) => {
      const [c, gradebook] = await Promise.all([
        loadCourse(courseId, signal),
        api<Gradebook>('GET', `/courses/${encodeURIComponent(courseId)}/gradebook`, undefined, { signal }),
      ]);
      return { ...c, gradebook };
    },
    [courseId],
  );
  return (
    <Loaded state={state}>
      {({ course, gradebook }) => (
        <>
          <Breadcrumb trail={[[`/courses/${course.id}`, course.title]]} />
          <div className="title-row">
            <PageHeading>Gradebook</PageHeading>
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
