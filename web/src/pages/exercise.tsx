import { useCallback, useEffect, useRef, useState } from 'react';
import { api, describeError } from '../api/client.ts';
import { submissionEvents, useStreamState, useSubmissionEvents } from '../api/events.ts';
import type { Course, Exercise, ExerciseSummary, Page, Run, Submission } from '../api/types.ts';
import { CodeEditor } from '../components/code-editor.tsx';
import { CodeView } from '../components/code-view.tsx';
import { Markdown } from '../components/markdown.tsx';
import { isPending, RunResult, StatusBadge, SubmissionResult } from '../components/submission-view.tsx';
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
import { useUser } from '../session.tsx';
import { loadCourse } from './course.tsx';
import { ExceptionsPanel } from './exceptions.tsx';
import { loadLesson } from './lesson.tsx';

export interface ExerciseData {
  exercise: Exercise;
  course: Course;
  lessonTitle: string | null;
  /** The lesson's exercises in order, for previous/next. */
  siblings: ExerciseSummary[];
}

/** The exercise with the course (for the caller's role) and the lesson title (for the breadcrumb). */
export async function loadExercise(exerciseId: string, signal: AbortSignal): Promise<ExerciseData> {
  const { exercise } = await api<{ exercise: Exercise }>(
    'GET',
    `/exercises/${encodeURIComponent(exerciseId)}`,
    undefined,
    { signal },
  );
  const [lesson, { course }] = await Promise.all([
    loadLesson(exercise.lessonId, signal),
    loadCourse(exercise.courseId, signal),
  ]);
  return { exercise, course, lessonTitle: lesson.lesson.title, siblings: lesson.exercises };
}

/** Every submission of an exercise (or one user's), following the cursor. */
export async function loadSubmissions(exerciseId: string, userId: string | undefined, signal?: AbortSignal) {
  const all: Submission[] = [];
  let cursor: string | null = null;
  do {
    const q = new URLSearchParams({ limit: '100' });
    if (userId) q.set('userId', userId);
    if (cursor) q.set('cursor', cursor);
    const page: Page<Submission> = await api<Page<Submission>>(
      'GET',
      `/exercises/${encodeURIComponent(exerciseId)}/submissions?${q}`,
      undefined,
      { signal },
    );
    all.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && all.length < 2000);
  return { items: all };
}

/** Newest first; an update replaces the older copy of the same submission, never a newer state. */
export function mergeSubmission(list: Submission[], s: Submission): Submission[] {
  const i = list.findIndex((x) => x.id === s.id);
  if (i === -1) return [s, ...list].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const old = list[i]!;
  if (!isPending(old) && isPending(s) && old.gradedAt && !s.gradedAt) return list;
  const next = [...list];
  // Events leave the code out; keep the copy we have.
  next[i] = s.code === undefined && old.code !== undefined ? { ...s, code: old.code } : s;
  return next;
}

/**
 * Keeps a list of submissions current: live from /events, and by polling the pending ones while the
 * event stream is down (so a blocked or broken stream still shows results). With `watchRunning`, a
 * submission pending for over a second is also polled while the stream is up: the stream does not say
 * when grading starts, and a student waiting on an endless loop should see "Running", not "Queued".
 */
export function useLiveSubmissions(
  exerciseId: string,
  initial: Submission[],
  accept: (s: Submission) => boolean,
  watchRunning = false,
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
    if (!pendingIds || (stream === 'open' && !watchRunning)) return;
    const poll = () => {
      for (const id of pendingIds.split(',')) {
        api<{ submission: Submission }>('GET', `/submissions/${id}`).then(
          (r) => setSubs((list) => mergeSubmission(list, r.submission)),
          () => {},
        );
      }
    };
    let timer: ReturnType<typeof setInterval> | undefined;
    const first = setTimeout(() => {
      poll();
      timer = setInterval(poll, 2000);
    }, 1000);
    return () => {
      clearTimeout(first);
      clearInterval(timer);
    };
  }, [pendingIds, stream, watchRunning]);

  return [subs, setSubs] as const;
}

const draftKey = (userId: string, exerciseId: string) => `lab:draft:${userId}:${exerciseId}`;
const scoresKey = (userId: string, exerciseId: string) => `lab:scores:${userId}:${exerciseId}`;

function readDraft(key: string): string | null {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

interface RegradeNote {
  id: string;
  createdAt: string;
  before: number | null;
  after: number | null;
}

/**
 * The scores this device last showed, per submission: a graded submission whose score differs now was
 * regraded meanwhile (live, or while the student was away), and the student is told.
 */
function useRegradeNotes(key: string, subs: Submission[]) {
  const [notes, setNotes] = useState<RegradeNote[]>([]);
  useEffect(() => {
    let seen: Record<string, number | null> = {};
    try {
      seen = JSON.parse(window.localStorage.getItem(key) ?? '{}') as Record<string, number | null>;
    } catch {
      seen = {};
    }
    const found: RegradeNote[] = [];
    const next: Record<string, number | null> = { ...seen };
    for (const s of subs) {
      if (isPending(s) || !s.gradedAt) continue;
      if (s.id in seen && seen[s.id] !== s.score)
        found.push({ id: s.id, createdAt: s.createdAt, before: seen[s.id] ?? null, after: s.score });
      next[s.id] = s.score;
    }
    if (found.length) setNotes((old) => [...old.filter((n) => !found.some((f) => f.id === n.id)), ...found]);
    try {
      window.localStorage.setItem(key, JSON.stringify(next));
    } catch {
      // Without storage, only live regrades are noticed.
    }
  }, [key, subs]);
  return [notes, () => setNotes([])] as const;
}

/** Waits for a run to finish: its run.updated event, or GET /runs/:id every 2 s, until a deadline. */
export function waitForRun(id: string, deadlineMs: number, signal: AbortSignal): Promise<Run | null> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: Run | null) => {
      if (done) return;
      done = true;
      unsubscribe();
      clearInterval(timer);
      clearTimeout(limit);
      resolve(r);
    };
    const unsubscribe = submissionEvents.subscribeRuns((r) => {
      if (r.id === id && !isPending(r)) finish(r);
    });
    const timer = setInterval(() => {
      api<{ run: Run }>('GET', `/runs/${id}`, undefined, { signal }).then(
        (r) => !isPending(r.run) && finish(r.run),
        () => {},
      );
    }, 2000);
    const limit = setTimeout(() => finish(null), deadlineMs);
    signal.addEventListener('abort', () => finish(null));
  });
}

/** The Run button's logic: POST /runs, then wait when it answered 202 (queued). */
export function useRun(exercise?: Exercise) {
  const [run, setRun] = useState<Run | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [timedOut, setTimedOut] = useState(false);
  const ctl = useRef<AbortController | null>(null);
  useEffect(() => () => ctl.current?.abort(), []);
  const start = async (code: string, stdin?: string, target = exercise) => {
    if (!target) return false;
    ctl.current?.abort();
    const c = new AbortController();
    ctl.current = c;
    setBusy(true);
    setRun(null);
    setError(null);
    setTimedOut(false);
    try {
      const body = stdin === undefined ? { code } : { code, stdin };
      const r = await api<{ run: Run }>('POST', `/exercises/${target.id}/runs`, body, { signal: c.signal });
      setRun(r.run);
      if (isPending(r.run)) {
        const deadline = 60_000 + target.limits.timeMs * target.tests.length;
        const final = await waitForRun(r.run.id, deadline, c.signal);
        if (final) setRun(final);
        else if (!c.signal.aborted) setTimedOut(true);
      }
      return true;
    } catch (err) {
      if ((err as Error).name !== 'AbortError') setError(err);
      return false;
    } finally {
      if (ctl.current === c) setBusy(false);
    }
  };
  return { run, busy, error, timedOut, start };
}

export function ConsolePane({
  run,
  busy,
  error,
  timedOut,
}: {
  run: Run | null;
  busy: boolean;
  error: unknown;
  timedOut: boolean;
}) {
  return (
    <div className="console" aria-live="polite">
      {busy && !run && (
        <p className="loading">
          <span className="spinner" aria-hidden="true" /> Running…
        </p>
      )}
      {error ? (
        <p className="error" role="alert">
          {describeError(error)}
        </p>
      ) : null}
      {timedOut && <p className="warning">The run is taking unusually long; try again in a moment.</p>}
      {run && <RunResult run={run} />}
      {!run && !busy && !error && (
        <p className="empty">Run tries your code on the visible tests. Nothing is recorded.</p>
      )}
    </div>
  );
}

function Workspace({ data, initial }: { data: ExerciseData; initial: Submission[] }) {
  const { exercise, course } = data;
  const user = useUser();
  const key = draftKey(user.id, exercise.id);
  const [code, setCode] = useState(() => readDraft(key) ?? exercise.starterCode);
  const [saved, setSaved] = useState(true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [useStdin, setUseStdin] = useState(false);
  const [stdin, setStdin] = useState('');
  const [loadedNote, setLoadedNote] = useState('');
  const idempotency = useRef<{ key: string; code: string } | null>(null);
  const resultRef = useRef<HTMLElement>(null);
  const editorRef = useRef<HTMLElement>(null);
  const [subs, setSubs] = useLiveSubmissions(exercise.id, initial, (s) => s.userId === user.id, true);
  const [notes, clearNotes] = useRegradeNotes(scoresKey(user.id, exercise.id), subs);
  const runner = useRun(exercise);
  const initialCount = useRef(initial.length);
  const archived = course.archived;

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

  // The server's count at load (extensions included), less what was submitted since.
  const left =
    exercise.attemptsLeft === null
      ? null
      : Math.max(0, exercise.attemptsLeft - (subs.length - initialCount.current));
  const pastDue = exercise.dueAt !== null && Date.parse(exercise.dueAt) < Date.now();

  const submit = async () => {
    if (busy) return;
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
      setSubs((list) => mergeSubmission(list, { ...r.submission, code: r.submission.code ?? code }));
      // The result comes into view; focus stays on the Submit button.
      resultRef.current?.scrollIntoView({ block: 'nearest' });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const runCode = async () => {
    if (runner.busy) return;
    await runner.start(code, useStdin ? stdin : undefined);
  };

  const load = (s: Submission) => {
    if (s.code === undefined) return;
    if (code !== s.code && !window.confirm('Replace the code in the editor with this past version?')) return;
    setCode(s.code);
    setLoadedNote(`Loaded your submission of ${formatDate(s.createdAt)} into the editor.`);
    editorRef.current?.scrollIntoView({ block: 'nearest' });
  };

  const latest = subs[0];
  const noAttempts = left === 0;
  return (
    <>
      {notes.length > 0 && (
        <div className="notice" role="status" data-testid="regrade-notice">
          {notes.map((n) => (
            <p key={n.id}>
              Your submission of {formatDate(n.createdAt)} was regraded: score {n.before ?? '—'} →{' '}
              {n.after ?? '—'}.
            </p>
          ))}
          <button type="button" className="link-button" onClick={clearNotes}>
            Dismiss
          </button>
        </div>
      )}
      <section aria-labelledby="code-heading" className="card" ref={editorRef}>
        <h2 id="code-heading">Your code</h2>
        <CodeEditor
          label={`Code (${exercise.language === 'python' ? 'Python' : 'JavaScript'})`}
          language={exercise.language}
          value={code}
          onChange={setCode}
          minHeight="16rem"
        />
        <span className="muted" role="status">
          {loadedNote}
        </span>
        <label className="checkbox">
          <input type="checkbox" checked={useStdin} onChange={(e) => setUseStdin(e.target.checked)} /> Run the
          program on my own input instead of the tests
        </label>
        {useStdin && (
          <div className="field">
            <label htmlFor="run-stdin">Input (stdin)</label>
            <textarea
              id="run-stdin"
              className="mono"
              rows={3}
              value={stdin}
              onChange={(e) => setStdin(e.target.value)}
            />
          </div>
        )}
        <div className="button-row">
          <button
            type="button"
            onClick={runCode}
            aria-disabled={runner.busy || archived}
            disabled={archived}
            aria-busy={runner.busy}
          >
            {runner.busy && <span className="spinner" aria-hidden="true" />}
            {runner.busy ? 'Running…' : 'Run'}
          </button>
          <button
            type="button"
            className="primary"
            onClick={submit}
            // Not `disabled` while busy: a disabled button loses focus (it would jump to the page's top).
            aria-disabled={busy || noAttempts || archived}
            disabled={noAttempts || archived}
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
          {left === null
            ? 'Unlimited attempts'
            : `${left} ${left === 1 ? 'attempt' : 'attempts'} left${exercise.maxAttempts ? ` (limit ${exercise.maxAttempts})` : ''}`}
        </p>
        {noAttempts && <p className="error">You have used all your attempts.</p>}
        {error ? (
          <p className="error" role="alert">
            {describeError(error)}
          </p>
        ) : null}
        {pastDue && !archived && (
          <p className="warning">The due date has passed: new submissions are marked late.</p>
        )}
        <h3 className="console-heading" id="console-heading">
          Console
        </h3>
        <ConsolePane run={runner.run} busy={runner.busy} error={runner.error} timedOut={runner.timedOut} />
      </section>

      <section aria-labelledby="result-heading" className="card" ref={resultRef}>
        <h2 id="result-heading">Result</h2>
        <div aria-live="polite" aria-atomic="false" className="live-result">
          {latest ? (
            <SubmissionResult submission={latest} maxScore={exercise.maxScore} />
          ) : (
            <p className="empty">Submit your code to run all the tests and record a score.</p>
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
                    {formatDate(s.createdAt)} — <StatusBadge submission={s} />
                    {s.score !== null && ` ${s.score} / ${exercise.maxScore}`}
                    {s.late && ' (late)'}
                  </summary>
                  <SubmissionResult submission={s} maxScore={exercise.maxScore} />
                  {s.code !== undefined && (
                    <>
                      <CodeView
                        code={s.code}
                        language={exercise.language}
                        label={`Code submitted ${formatDate(s.createdAt)}`}
                      />
                      <button type="button" onClick={() => load(s)}>
                        Load this version into the editor
                      </button>
                    </>
                  )}
                </details>
              </li>
            ))}
          </ol>
        )}
      </section>
      {isStaffRole(course.role) && (
        <p className="muted">
          As course staff, your own submissions are checks of the exercise; Run uses every test, hidden ones
          included.
        </p>
      )}
    </>
  );
}

/** Previous / next exercise in the lesson, and back to the lesson. */
function ExerciseNav({ data }: { data: ExerciseData }) {
  const i = data.siblings.findIndex((e) => e.id === data.exercise.id);
  const prev = i > 0 ? data.siblings[i - 1] : undefined;
  const next = i >= 0 ? data.siblings[i + 1] : undefined;
  return (
    <nav className="pager" aria-label="Exercises of this lesson">
      {prev ? (
        <Link href={`/exercises/${prev.id}`} rel="prev">
          ← {prev.title}
        </Link>
      ) : (
        <span />
      )}
      <Link href={`/lessons/${data.exercise.lessonId}`}>Back to the lesson</Link>
      {next ? (
        <Link href={`/exercises/${next.id}`} rel="next">
          {next.title} →
        </Link>
      ) : (
        <span />
      )}
    </nav>
  );
}

export function LatePolicyText({ exercise }: { exercise: Exercise }) {
  if (exercise.latePolicy.length === 0 || !exercise.dueAt) return null;
  return (
    <p className="muted late-policy">
      Late submissions:{' '}
      {exercise.latePolicy
        .map((p) => `${Math.round(p.credit * 100)} % credit until ${formatDate(p.until)}`)
        .join(', ')}
      , then no credit.
    </p>
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
            <ArchivedBanner course={course} />
            <div className="title-row">
              <PageHeading>{exercise.title}</PageHeading>
              {staff && <PublishBadge publishedAt={exercise.publishedAt} />}
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
                <dt>{staff ? 'Due' : 'Your due date'}</dt>
                <dd data-testid="due">{exercise.dueAt ? formatDate(exercise.dueAt) : 'No due date'}</dd>
              </div>
            </dl>
            <LatePolicyText exercise={exercise} />
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
                      {(staff || !t.hidden) && t.kind === 'call' && 'args' in t && t.args !== undefined && (
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
            {staff && <ExceptionsPanel exercise={exercise} course={course} />}
            <Workspace data={data} initial={subs} />
            <ExerciseNav data={data} />
          </>
        );
      }}
    </Loaded>
  );
}
