import { useCallback, useEffect, useRef, useState } from 'react';
import { api, describeError } from '../api/client.ts';
import { useStreamState, useSubmissionEvents } from '../api/events.ts';
import type { Course, Exercise, Page, Submission } from '../api/types.ts';
import { CodeEditor } from '../components/code-editor.tsx';
import { Markdown } from '../components/markdown.tsx';
import { isPending, SubmissionResult } from '../components/submission-view.tsx';
import { Breadcrumb, formatDate, isStaffRole, Loaded, PageHeading, useLoad } from '../components/ui.tsx';
import { Link, useTitle } from '../router.tsx';
import { useUser } from '../session.tsx';
import { loadCourse } from './course.tsx';
import { loadLesson } from './lesson.tsx';

export interface ExerciseData {
  exercise: Exercise;
  course: Course;
  lessonTitle: string | null;
}

/** The exercise with the course (for the caller's role) and the lesson title (for the breadcrumb). */
export async function loadExercise(exerciseId: string, signal: AbortSignal): Promise<ExerciseData> {
  const { exercise } = await api<{ exercise: Exercise }>(
    'GET',
    `/exercises/${encodeURIComponent(exerciseId)}`,
    undefined,
    {
      signal,
    },
  );
  const lesson = await loadLesson(exercise.lessonId, signal);
  const { course } = await loadCourse(exercise.courseId ?? lesson.lesson.courseId, signal);
  return { exercise, course, lessonTitle: lesson.lesson.title };
}

export async function loadSubmissions(exerciseId: string, userId: string | undefined, signal?: AbortSignal) {
  const q = new URLSearchParams({ limit: '100' });
  if (userId) q.set('userId', userId);
  return api<Page<Submission>>(
    'GET',
    `/exercises/${encodeURIComponent(exerciseId)}/submissions?${q}`,
    undefined,
    {
      signal,
    },
  );
}

/** Newest first; an update replaces the older copy of the same submission, never a newer state. */
export function mergeSubmission(list: Submission[], s: Submission): Submission[] {
  const i = list.findIndex((x) => x.id === s.id);
  if (i === -1) return [s, ...list].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const old = list[i]!;
  if (!isPending(old) && isPending(s) && old.gradedAt && !s.gradedAt) return list;
  const next = [...list];
  next[i] = s;
  return next;
}

/**
 * Keeps a list of submissions current: live from /events, and by polling the pending ones while the
 * event stream is down (so a blocked or broken stream still shows results).
 */
export function useLiveSubmissions(
  exerciseId: string,
  initial: Submission[],
  accept: (s: Submission) => boolean,
) {
  const [subs, setSubs] = useState(initial);
  const stream = useStreamState();
  const acceptRef = useRef(accept);
  acceptRef.current = accept;

  const onEvent = useCallback(
    (s: Submission) => {
      if (s.exerciseId === exerciseId && acceptRef.current(s)) setSubs((list) => mergeSubmission(list, s));
    },
    [exerciseId],
  );
  useSubmissionEvents(onEvent);

  const pendingIds = subs
    .filter(isPending)
    .map((s) => s.id)
    .join(',');
  useEffect(() => {
    if (!pendingIds || stream === 'open') return;
    const timer = setInterval(() => {
      for (const id of pendingIds.split(',')) {
        api<{ submission: Submission }>('GET', `/submissions/${id}`).then(
          (r) => setSubs((list) => mergeSubmission(list, r.submission)),
          () => {},
        );
      }
    }, 2000);
    return () => clearInterval(timer);
  }, [pendingIds, stream]);

  return [subs, setSubs] as const;
}

const draftKey = (userId: string, exerciseId: string) => `lab:draft:${userId}:${exerciseId}`;

function readDraft(key: string): string | null {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

function Workspace({ data, initial }: { data: ExerciseData; initial: Submission[] }) {
  const { exercise, course } = data;
  const user = useUser();
  const key = draftKey(user.id, exercise.id);
  const [code, setCode] = useState(() => readDraft(key) ?? exercise.starterCode);
  const [saved, setSaved] = useState(true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const idempotency = useRef<{ key: string; code: string } | null>(null);
  const [subs, setSubs] = useLiveSubmissions(exercise.id, initial, (s) => s.userId === user.id);

  // The draft is saved as you type (debounced), so a reload or a crash loses nothing.
  useEffect(() => {
    // Untouched starter code is not a draft: a later fix of the starter code still reaches this student.
    if ((readDraft(key) ?? exercise.starterCode) === code) return setSaved(true);
    setSaved(false);
    const t = setTimeout(() => {
      try {
        window.localStorage.setItem(key, code);
        setSaved(true);
      } catch {
        // Storage full or disabled: the editor still works, the draft just is not kept.
      }
    }, 300);
    // A reload within those 300 ms still keeps the last keystrokes.
    const flush = () => {
      try {
        window.localStorage.setItem(key, code);
      } catch {
        // As above.
      }
    };
    window.addEventListener('pagehide', flush);
    return () => {
      clearTimeout(t);
      window.removeEventListener('pagehide', flush);
    };
  }, [key, code, exercise.starterCode]);

  // Every accepted submission counts; the server has the final word (409 attempts_exhausted).
  const left = exercise.maxAttempts === null ? null : Math.max(0, exercise.maxAttempts - subs.length);
  const pastDue = exercise.dueAt !== null && Date.parse(exercise.dueAt) < Date.now();

  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      window.localStorage.setItem(key, code);
      setSaved(true);
    } catch {
      // See the draft effect above.
    }
    // The same key for a retry of the same code: a lost response never costs a second attempt.
    if (!idempotency.current || idempotency.current.code !== code) {
      idempotency.current = { key: crypto.randomUUID(), code };
    }
    try {
      const r = await api<{ submission: Submission }>(
        'POST',
        `/exercises/${exercise.id}/submissions`,
        { code },
        { headers: { 'idempotency-key': idempotency.current.key } },
      );
      idempotency.current = null;
      setSubs((list) => mergeSubmission(list, r.submission));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const latest = subs[0];
  return (
    <>
      <section aria-labelledby="code-heading" className="card">
        <h2 id="code-heading">Your code</h2>
        <CodeEditor
          label={`Code (${exercise.language === 'python' ? 'Python' : 'JavaScript'})`}
          language={exercise.language}
          value={code}
          onChange={setCode}
          minHeight="16rem"
        />
        <div className="button-row">
          <button
            type="button"
            className="primary"
            onClick={submit}
            disabled={busy || left === 0}
            aria-busy={busy}
          >
            {busy && <span className="spinner" aria-hidden="true" />}
            {busy ? 'Submitting…' : 'Submit'}
          </button>
          <button
            type="button"
            onClick={() => {
              if (window.confirm('Replace your code with the starter code?')) setCode(exercise.starterCode);
            }}
          >
            Reset to starter code
          </button>
          <span className="muted" aria-live="polite">
            {saved ? 'Draft saved on this device' : 'Saving draft…'}
          </span>
        </div>
        <p className="muted" data-testid="attempts">
          {left === null ? 'Unlimited attempts' : `${left} of ${exercise.maxAttempts} attempts left`}
        </p>
        {left === 0 && <p className="error">You have used all your attempts.</p>}
        {error ? (
          <p className="error" role="alert">
            {describeError(error)}
          </p>
        ) : null}
        {pastDue && <p className="warning">The due date has passed: new submissions are marked late.</p>}
      </section>

      <section aria-labelledby="result-heading" className="card">
        <h2 id="result-heading">Result</h2>
        <div aria-live="polite" aria-atomic="false" className="live-result">
          {latest ? (
            <SubmissionResult submission={latest} maxScore={exercise.maxScore} />
          ) : (
            <p className="empty">Submit your code to run the tests.</p>
          )}
        </div>
      </section>

      <section aria-labelledby="history-heading">
        <h2 id="history-heading">Your submissions</h2>
        {subs.length === 0 ? (
          <p className="empty">None yet.</p>
        ) : (
          <ol className="history">
            {subs.map((s) => (
              <li key={s.id}>
                <details>
                  <summary>
                    {formatDate(s.createdAt)} — {s.status}
                    {s.score !== null && `, ${s.score} / ${exercise.maxScore}`}
                    {s.late && ' (late)'}
                  </summary>
                  <SubmissionResult submission={s} maxScore={exercise.maxScore} />
                </details>
              </li>
            ))}
          </ol>
        )}
      </section>
      {isStaffRole(course.role) && (
        <p className="muted">As course staff, your submissions count as checks of the exercise.</p>
      )}
    </>
  );
}

export default function ExercisePage({ exerciseId }: { exerciseId: string }) {
  const user = useUser();
  const state = useLoad(
    async (signal) => {
      const data = await loadExercise(exerciseId, signal);
      const subs = await loadSubmissions(
        exerciseId,
        isStaffRole(data.course.role) ? user.id : undefined,
        signal,
      );
      return { data, subs: subs.items.filter((s) => s.userId === user.id) };
    },
    [exerciseId, user.id],
  );
  useTitle(state.data?.data.exercise.title ?? 'Exercise');
  return (
    <Loaded state={state}>
      {({ data, subs }) => {
        const { exercise, course } = data;
        const staff = isStaffRole(course.role);
        return (
          <>
            <Breadcrumb
              trail={[
                [`/courses/${course.id}`, course.title],
                [`/lessons/${exercise.lessonId}`, data.lessonTitle],
              ]}
            />
            <div className="title-row">
              <PageHeading>{exercise.title}</PageHeading>
              {staff && (
                <>
                  <Link className="button" href={`/exercises/${exercise.id}/edit`}>
                    Edit exercise
                  </Link>
                  <Link className="button" href={`/exercises/${exercise.id}/submissions`}>
                    All submissions
                  </Link>
                </>
              )}
            </div>
            <dl className="facts">
              <div>
                <dt>Language</dt>
                <dd>{exercise.language === 'python' ? 'Python' : 'JavaScript'}</dd>
              </div>
              <div>
                <dt>Points</dt>
                <dd>{exercise.maxScore}</dd>
              </div>
              <div>
                <dt>Due</dt>
                <dd>{exercise.dueAt ? formatDate(exercise.dueAt) : 'No due date'}</dd>
              </div>
            </dl>
            {exercise.prompt && <Markdown source={exercise.prompt} className="prompt" />}
            {exercise.tests.length > 0 && (
              <details className="card">
                <summary>Tests ({exercise.tests.length})</summary>
                <ul className="plain">
                  {exercise.tests.map((t, i) => (
                    // biome-ignore lint/suspicious/noArrayIndexKey: the tests are a fixed list; names may repeat
                    <li key={`${t.name}-${i}`}>
                      <code>{t.name}</code>{' '}
                      <span className="muted">{t.kind === 'call' ? 'function call' : 'input/output'}</span>
                      {t.hidden && <span className="badge hidden-test">hidden</span>}
                      {!t.hidden && t.kind === 'call' && 'args' in t && t.args !== undefined && (
                        <span className="mono">
                          {' '}
                          {exercise.entrypoint}({JSON.stringify(t.args).slice(1, -1)}) →{' '}
                          {JSON.stringify(t.expected)}
                        </span>
                      )}
                    </li>
                  ))}
                </ul>
              </details>
            )}
            <Workspace data={data} initial={subs} />
          </>
        );
      }}
    </Loaded>
  );
}
