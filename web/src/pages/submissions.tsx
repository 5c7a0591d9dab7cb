import { api } from '../api/client.ts';
import type { Member, Page, Submission } from '../api/types.ts';
import { SubmissionResult } from '../components/submission-view.tsx';
import { Breadcrumb, formatDate, Loaded, PageHeading, useLoad } from '../components/ui.tsx';
import { Link, useTitle } from '../router.tsx';
import { type ExerciseData, loadExercise, loadSubmissions, useLiveSubmissions } from './exercise.tsx';

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
  if (subs.length === 0) return <p className="empty">No submissions yet.</p>;
  return (
    <ol className="history" aria-live="polite">
      {subs.map((s) => (
        <li key={s.id} className="card">
          <h2 className="h3">
            {names.get(s.userId) ?? s.userId} <span className="muted">· {formatDate(s.createdAt)}</span>
          </h2>
          <SubmissionResult submission={s} maxScore={data.exercise.maxScore} />
        </li>
      ))}
    </ol>
  );
}

/** Staff view: every submission of an exercise, or one student's (?userId=), live. */
export default function SubmissionsPage({ exerciseId, userId }: { exerciseId: string; userId?: string }) {
  const state = useLoad(
    async (signal) => {
      const data = await loadExercise(exerciseId, signal);
      const [subs, members] = await Promise.all([
        loadSubmissions(exerciseId, userId, signal),
        api<Page<Member>>('GET', `/courses/${data.course.id}/members?limit=100`, undefined, { signal }).catch(
          () => ({
            items: [] as Member[],
            nextCursor: null,
          }),
        ),
      ]);
      const names = new Map(members.items.map((m) => [m.user.id, m.user.name]));
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
