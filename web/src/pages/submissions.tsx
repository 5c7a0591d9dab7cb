import { useRef, useState } from 'react';
import type { Submission } from '../api/types.ts';
import { CodeView, DiffView } from '../components/code-view.tsx';
import { SubmissionResult } from '../components/submission-view.tsx';
import { ArchivedBanner, Breadcrumb, formatDate, Loaded, PageHeading, useLoad } from '../components/ui.tsx';
import { Link, useTitle } from '../router.tsx';
import { type ExerciseData, loadExercise, loadSubmissions, useLiveSubmissions } from './exercise.tsx';
import { loadMembers } from './members.tsx';

function List({
  data,
  initial,
  names,
  userId,
}: {
  data: ExerciseData;
  initial: Submission[];
  names: Map<string, string>;
  userId?: string;
}) {
  const [subs] = useLiveSubmissions(data.exercise.id, initial, (s) => !userId || s.userId === userId);
  const [picked, setPicked] = useState<string[]>([]);
  const diffRef = useRef<HTMLElement>(null);
  if (subs.length === 0) return <p className="empty">No submissions yet.</p>;
  const who = (s: Submission) => names.get(s.userId) ?? 'A former member';
  const title = (s: Submission) => `${who(s)}, ${formatDate(s.createdAt)}`;
  const toggle = (id: string, on: boolean) => {
    setPicked((p) => (on ? [...p.filter((x) => x !== id), id].slice(-2) : p.filter((x) => x !== id)));
    if (on && picked.length >= 1)
      requestAnimationFrame(() => diffRef.current?.scrollIntoView({ block: 'nearest' }));
  };
  const pair = picked
    .map((id) => subs.find((s) => s.id === id))
    .filter((s): s is Submission => s !== undefined)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  return (
    <>
      <section className="card compare" aria-labelledby="compare-heading" ref={diffRef}>
        <h2 id="compare-heading">Compare two submissions</h2>
        {pair.length === 2 ? (
          <>
            <DiffView
              before={pair[0]!.code ?? ''}
              after={pair[1]!.code ?? ''}
              label={`From ${title(pair[0]!)} to ${title(pair[1]!)}`}
            />
            <button type="button" onClick={() => setPicked([])}>
              Clear comparison
            </button>
          </>
        ) : (
          <p className="empty" role="status">
            Tick “Compare” on two submissions below to see what changed between them
            {pair.length === 1 ? ` (one ticked: ${title(pair[0]!)})` : ''}.
          </p>
        )}
      </section>
      <ol className="history" aria-live="polite">
        {subs.map((s) => (
          <li key={s.id} className="card" data-submission-card={s.id}>
            <div className="title-row">
              <h2 className="h3">
                {who(s)} <span className="muted">· {formatDate(s.createdAt)}</span>
              </h2>
              <label className="checkbox">
                <input
                  type="checkbox"
                  checked={picked.includes(s.id)}
                  onChange={(e) => toggle(s.id, e.target.checked)}
                />{' '}
                Compare <span className="visually-hidden">the submission of {title(s)}</span>
              </label>
            </div>
            <SubmissionResult submission={s} maxScore={data.exercise.maxScore} />
            {s.code !== undefined && (
              <details className="code-details">
                <summary>
                  Code <span className="visually-hidden">of {title(s)}</span>
                </summary>
                <CodeView code={s.code} language={data.exercise.language} label={`Code of ${title(s)}`} />
              </details>
            )}
          </li>
        ))}
      </ol>
    </>
  );
}

/** Staff view: every submission of an exercise, or one student's (?userId=), live, with code and diffs. */
export default function SubmissionsPage({ exerciseId, userId }: { exerciseId: string; userId?: string }) {
  const state = useLoad(
    async (signal) => {
      const data = await loadExercise(exerciseId, signal);
      const [subs, members] = await Promise.all([
        loadSubmissions(exerciseId, userId, signal),
        // Every member, a page of 100 at a time: a big class's names all show.
        loadMembers(data.course.id, signal),
      ]);
      const names = new Map(members.map((m) => [m.user.id, m.user.name]));
      return { data, subs: subs.items, names };
    },
    [exerciseId, userId],
  );
  const who = userId ? state.data?.names.get(userId) : undefined;
  useTitle(`Submissions${state.data ? ` · ${state.data.data.exercise.title}` : ''}`);
  return (
    <Loaded state={state}>
      {({ data, subs, names }) => (
        <>
          <Breadcrumb
            trail={[
              [`/courses/${data.course.id}`, data.course.title],
              [`/courses/${data.course.id}/gradebook`, 'Gradebook'],
              [`/exercises/${data.exercise.id}`, data.exercise.title],
            ]}
          />
          <ArchivedBanner course={data.course} />
          <PageHeading>
            Submissions{who ? ` of ${who}` : ''}: {data.exercise.title}
          </PageHeading>
          {userId && (
            <p>
              <Link href={`/exercises/${data.exercise.id}/submissions`}>Show everyone's submissions</Link>
            </p>
          )}
          <List data={data} initial={subs} names={names} userId={userId} />
        </>
      )}
    </Loaded>
  );
}
