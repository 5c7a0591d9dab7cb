import { type FormEvent, useEffect, useState } from 'react';
import { ApiError, api } from '../api/client.ts';
import type { Course, Exercise, Language, TestCase } from '../api/types.ts';
import { CodeEditor } from '../components/code-editor.tsx';
import { MarkdownField } from '../components/markdown-field.tsx';
import {
  ArchivedBanner,
  Breadcrumb,
  ErrorMessage,
  fromLocalInput,
  Input,
  Loaded,
  PageHeading,
  PublishBadge,
  publishState,
  RestoredNotice,
  Select,
  SubmitButton,
  TextArea,
  toLocalInput,
  useLoad,
  useStoredDraft,
  useSubmit,
} from '../components/ui.tsx';
import { Link, navigate, useTitle } from '../router.tsx';
import { useUser } from '../session.tsx';
import { loadCourse } from './course.tsx';
import { ConsolePane, type ExerciseData, loadExercise, useRun } from './exercise.tsx';
import { loadLesson } from './lesson.tsx';

interface TestDraft {
  key: string;
  name: string;
  kind: 'call' | 'io';
  args: string;
  expected: string;
  stdin: string;
  stdout: string;
  hidden: boolean;
}

// Random, not a counter: drafts restored from storage keep their keys, and new ones must not collide.
const newKey = () => `t${Math.random().toString(36).slice(2)}`;

const toDraft = (t: TestCase): TestDraft => ({
  key: newKey(),
  name: t.name,
  kind: t.kind,
  args: t.kind === 'call' ? JSON.stringify(t.args ?? []) : '[]',
  expected: t.kind === 'call' && t.expected !== undefined ? JSON.stringify(t.expected) : '',
  stdin: t.kind === 'io' ? (t.stdin ?? '') : '',
  stdout: t.kind === 'io' ? (t.stdout ?? '') : '',
  hidden: t.hidden,
});

const blankTest = (n: number): TestDraft => ({
  key: newKey(),
  name: `test ${n}`,
  kind: 'call',
  args: '[]',
  expected: '',
  stdin: '',
  stdout: '',
  hidden: false,
});

interface Draft {
  title: string;
  prompt: string;
  language: Language;
  entrypoint: string;
  starterCode: string;
  tests: TestDraft[];
  maxScore: string;
  dueAt: string;
  maxAttempts: string;
  timeMs: string;
  memoryMb: string;
  referenceSolution: string;
  visibility: 'published' | 'draft' | 'scheduled';
  publishAt: string;
  latePolicy: { key: string; until: string; credit: string }[];
}

const fromExercise = (e?: Exercise): Draft => ({
  title: e?.title ?? '',
  prompt: e?.prompt ?? '',
  language: e?.language ?? 'javascript',
  entrypoint: e?.entrypoint ?? '',
  starterCode: e?.starterCode ?? '',
  tests: e ? e.tests.map(toDraft) : [blankTest(1)],
  maxScore: String(e?.maxScore ?? 10),
  dueAt: toLocalInput(e?.dueAt ?? null),
  maxAttempts: e?.maxAttempts ? String(e.maxAttempts) : '',
  timeMs: String(e?.limits.timeMs ?? 2000),
  memoryMb: String(e?.limits.memoryMb ?? 64),
  referenceSolution: e?.referenceSolution ?? '',
  visibility: e ? publishState(e.publishedAt) : 'published',
  publishAt: toLocalInput(e?.publishedAt ?? null),
  latePolicy: (e?.latePolicy ?? []).map((p) => ({
    key: newKey(),
    until: toLocalInput(p.until),
    credit: String(Math.round(p.credit * 1000) / 10),
  })),
});

/** Turns the form into the API body; JSON typed by hand is checked here, next to its field. */
function toBody(
  d: Draft,
  saved?: Exercise,
): { body?: Record<string, unknown>; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const tests = d.tests.map((t, i) => {
    if (t.kind === 'io')
      return { name: t.name, kind: 'io', stdin: t.stdin, stdout: t.stdout, hidden: t.hidden };
    let args: unknown = [];
    let expected: unknown = null;
    try {
      args = JSON.parse(t.args || '[]');
      if (!Array.isArray(args)) errors[`tests.${i}.args`] = 'must be a JSON array, like [1, 2]';
    } catch {
      errors[`tests.${i}.args`] = 'is not valid JSON';
    }
    try {
      expected = JSON.parse(t.expected);
    } catch {
      errors[`tests.${i}.expected`] = 'is not valid JSON (strings need "quotes")';
    }
    return { name: t.name, kind: 'call', args, expected, hidden: t.hidden };
  });
  const num = (s: string) => (s.trim() === '' ? Number.NaN : Number(s));
  const body: Record<string, unknown> = {
    title: d.title,
    prompt: d.prompt,
    language: d.language,
    starterCode: d.starterCode,
    tests,
    maxScore: num(d.maxScore),
    dueAt: d.dueAt ? new Date(d.dueAt).toISOString() : null,
    maxAttempts: d.maxAttempts.trim() === '' ? null : num(d.maxAttempts),
    limits: { timeMs: num(d.timeMs), memoryMb: num(d.memoryMb) },
  };
  if (d.entrypoint.trim()) body.entrypoint = d.entrypoint.trim();
  if (Number.isNaN(body.maxScore)) errors.maxScore = 'must be a number';
  body.referenceSolution = d.referenceSolution.trim() ? d.referenceSolution : null;
  // Published: keep the date it was published; newly published = now (a new exercise: the server's now).
  if (d.visibility === 'draft') body.publishedAt = null;
  else if (d.visibility === 'scheduled') {
    if (!d.publishAt) errors.publishedAt = 'needs a date and time';
    else body.publishedAt = fromLocalInput(d.publishAt);
  } else if (saved && publishState(saved.publishedAt) === 'published') body.publishedAt = saved.publishedAt;
  else if (saved) body.publishedAt = new Date().toISOString();
  const policy = d.latePolicy.map((p, i) => {
    const credit = Number(p.credit);
    if (!p.until) errors[`latePolicy.${i}.until`] = 'needs a date and time';
    if (p.credit.trim() === '' || !(credit >= 0 && credit <= 100))
      errors[`latePolicy.${i}.credit`] = 'must be a percentage from 0 to 100';
    return { until: fromLocalInput(p.until) ?? '', credit: credit / 100 };
  });
  for (let i = 1; i < policy.length; i++)
    if (policy[i]!.until && policy[i - 1]!.until && policy[i]!.until <= policy[i - 1]!.until)
      errors[`latePolicy.${i}.until`] = 'must be later than the line above';
  body.latePolicy = policy;
  return Object.keys(errors).length ? { errors } : { body, errors };
}

function TestEditor({
  test,
  index,
  update,
  remove,
  fieldError,
}: {
  test: TestDraft;
  index: number;
  update: (t: Partial<TestDraft>) => void;
  remove?: () => void;
  fieldError: (f: string) => string | undefined;
}) {
  const f = (name: string) => fieldError(`tests.${index}.${name}`);
  return (
    <fieldset className="test-editor">
      <legend>Test {index + 1}</legend>
      <div className="row">
        <Input
          label="Name"
          value={test.name}
          onChange={(e) => update({ name: e.target.value })}
          error={f('name')}
        />
        <Select
          label="Kind"
          value={test.kind}
          onChange={(e) => update({ kind: e.target.value as 'call' | 'io' })}
          error={f('kind')}
        >
          <option value="call">call: entrypoint(args) returns expected</option>
          <option value="io">io: stdin → stdout</option>
        </Select>
      </div>
      {test.kind === 'call' ? (
        <div className="row">
          <Input
            label="Arguments (JSON array)"
            className="mono"
            value={test.args}
            onChange={(e) => update({ args: e.target.value })}
            error={f('args')}
          />
          <Input
            label="Expected return value (JSON)"
            className="mono"
            value={test.expected}
            onChange={(e) => update({ expected: e.target.value })}
            error={f('expected')}
          />
        </div>
      ) : (
        <div className="row">
          <TextArea
            label="Standard input"
            className="mono"
            rows={3}
            value={test.stdin}
            onChange={(e) => update({ stdin: e.target.value })}
            error={f('stdin')}
          />
          <TextArea
            label="Expected standard output"
            className="mono"
            rows={3}
            value={test.stdout}
            onChange={(e) => update({ stdout: e.target.value })}
            error={f('stdout')}
          />
        </div>
      )}
      <div className="row">
        <label className="checkbox">
          <input
            type="checkbox"
            checked={test.hidden}
            onChange={(e) => update({ hidden: e.target.checked })}
          />{' '}
          Hidden from students
        </label>
        {remove && (
          <button type="button" className="link-button danger" onClick={remove}>
            Remove test {index + 1}
          </button>
        )}
      </div>
    </fieldset>
  );
}

function ExerciseForm({
  lessonId,
  exercise: loaded,
  checkOnLoad,
}: {
  lessonId: string;
  exercise?: Exercise;
  checkOnLoad?: boolean;
}) {
  const user = useUser();
  const [exercise, setExercise] = useState(loaded);
  const check = useRun(exercise);
  const [checkedAt, setCheckedAt] = useState(false);
  // Just created with a reference solution: check it now, as a save of an existing exercise does.
  // biome-ignore lint/correctness/useExhaustiveDependencies: once, on the first render after creation
  useEffect(() => {
    if (checkOnLoad && loaded?.referenceSolution) {
      setCheckedAt(true);
      void check.start(loaded.referenceSolution, undefined, loaded);
    }
  }, []);
  const draft = useStoredDraft(`lab:edit:${user.id}:exercise:${exercise?.id ?? `new:${lessonId}`}`, () =>
    fromExercise(exercise),
  );
  const d = draft.value;
  const setD = draft.update;
  const [localErrors, setLocalErrors] = useState<Record<string, string>>({});
  const [savedAt, setSavedAt] = useState<string | null>(null);
  const form = useSubmit();
  const set = (patch: Partial<Draft>) => setD((x) => ({ ...x, ...patch }));
  const fieldError = (f: string) => localErrors[f] ?? form.fieldError(f);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setSavedAt(null);
    const { body, errors } = toBody(d, exercise);
    setLocalErrors(errors);
    if (!body) {
      form.setError(new Error('Some fields need fixing before saving; see the messages next to them.'));
      return;
    }
    const r = await form.run(() =>
      exercise
        ? api<{ exercise: Exercise }>('PATCH', `/exercises/${exercise.id}`, body)
        : api<{ exercise: Exercise }>('POST', `/lessons/${lessonId}/exercises`, body),
    );
    if (!r) return;
    draft.clear(exercise ? fromExercise(r.exercise) : undefined);
    if (!exercise) {
      const q = r.exercise.referenceSolution ? '?check=1' : '';
      navigate(`/exercises/${r.exercise.id}/edit${q}`, { replace: true });
      return;
    }
    setExercise(r.exercise);
    setSavedAt(new Date().toLocaleTimeString());
    // Staff runs use every test, hidden ones included, and no attempt.
    if (r.exercise.referenceSolution) {
      setCheckedAt(true);
      await check.start(r.exercise.referenceSolution, undefined, r.exercise);
    } else setCheckedAt(false);
  };

  return (
    <>
      {draft.restored && <RestoredNotice onDiscard={() => draft.clear(fromExercise(exercise))} />}
      <form onSubmit={submit} className="card exercise-form" noValidate>
        <Input
          label="Title"
          required
          value={d.title}
          onChange={(e) => set({ title: e.target.value })}
          error={fieldError('title')}
        />
        <MarkdownField
          label="Prompt (Markdown)"
          tabsLabel="Prompt"
          idPrefix="p"
          rows={8}
          value={d.prompt}
          onChange={(v) => set({ prompt: v })}
          error={fieldError('prompt')}
        />
        <div className="row">
          <Select
            label="Language"
            value={d.language}
            onChange={(e) => set({ language: e.target.value as Language })}
            error={fieldError('language')}
          >
            <option value="javascript">JavaScript</option>
            <option value="python">Python</option>
          </Select>
          <Input
            label="Entrypoint"
            className="mono"
            hint="The function that call tests call; needed when there is a call test."
            value={d.entrypoint}
            onChange={(e) => set({ entrypoint: e.target.value })}
            error={fieldError('entrypoint')}
          />
        </div>
        <CodeEditor
          label="Starter code"
          language={d.language}
          value={d.starterCode}
          onChange={(v) => set({ starterCode: v })}
          minHeight="8rem"
        />
        {fieldError('starterCode') && <small className="field-error">{fieldError('starterCode')}</small>}
        <h2>Tests</h2>
        {fieldError('tests') && !Object.keys(localErrors).length && (
          <p className="field-error" role="alert">
            {form.fieldError('tests')}
          </p>
        )}
        {d.tests.map((t, i) => (
          <TestEditor
            key={t.key}
            test={t}
            index={i}
            fieldError={fieldError}
            update={(patch) => set({ tests: d.tests.map((x) => (x.key === t.key ? { ...x, ...patch } : x)) })}
            remove={
              d.tests.length > 1 ? () => set({ tests: d.tests.filter((x) => x.key !== t.key) }) : undefined
            }
          />
        ))}
        <button type="button" onClick={() => set({ tests: [...d.tests, blankTest(d.tests.length + 1)] })}>
          Add a test
        </button>
        <h2>Scoring and limits</h2>
        <div className="row">
          <Input
            label="Points"
            type="number"
            min={0}
            step="any"
            value={d.maxScore}
            onChange={(e) => set({ maxScore: e.target.value })}
            error={fieldError('maxScore')}
          />
          <Input
            label="Attempt limit"
            type="number"
            min={1}
            max={1000}
            hint="Empty: unlimited."
            value={d.maxAttempts}
            onChange={(e) => set({ maxAttempts: e.target.value })}
            error={fieldError('maxAttempts')}
          />
          <Input
            label="Due (your local time)"
            type="datetime-local"
            hint="Empty: no due date. Later submissions are marked late."
            value={d.dueAt}
            onChange={(e) => set({ dueAt: e.target.value })}
            error={fieldError('dueAt')}
          />
        </div>
        <div className="row">
          <Input
            label="Time limit per test (ms)"
            type="number"
            min={50}
            max={10000}
            value={d.timeMs}
            onChange={(e) => set({ timeMs: e.target.value })}
            error={fieldError('limits.timeMs')}
          />
          <Input
            label="Memory limit (MB)"
            type="number"
            min={16}
            max={512}
            value={d.memoryMb}
            onChange={(e) => set({ memoryMb: e.target.value })}
            error={fieldError('limits.memoryMb')}
          />
        </div>
        <h2>Late submissions</h2>
        <p className="muted" id="late-policy-hint">
          After the due date (a student's own, with an extension), a submission gets the credit of the first
          line whose date has not passed, and none after the last. No lines: full credit, marked late.
        </p>
        {d.latePolicy.map((p, i) => (
          <fieldset key={p.key} className="late-line" aria-describedby="late-policy-hint">
            <legend>Late credit {i + 1}</legend>
            <div className="row">
              <Input
                label="Until (your local time)"
                type="datetime-local"
                value={p.until}
                onChange={(e) =>
                  set({
                    latePolicy: d.latePolicy.map((x) =>
                      x.key === p.key ? { ...x, until: e.target.value } : x,
                    ),
                  })
                }
                error={fieldError(`latePolicy.${i}.until`)}
              />
              <Input
                label="Credit (%)"
                type="number"
                min={0}
                max={100}
                value={p.credit}
                onChange={(e) =>
                  set({
                    latePolicy: d.latePolicy.map((x) =>
                      x.key === p.key ? { ...x, credit: e.target.value } : x,
                    ),
                  })
                }
                error={fieldError(`latePolicy.${i}.credit`)}
              />
            </div>
            <button
              type="button"
              className="link-button danger"
              onClick={() => set({ latePolicy: d.latePolicy.filter((x) => x.key !== p.key) })}
            >
              Remove late credit {i + 1}
            </button>
          </fieldset>
        ))}
        {fieldError('latePolicy') && !d.latePolicy.length && (
          <small className="field-error">{fieldError('latePolicy')}</small>
        )}
        <button
          type="button"
          onClick={() =>
            set({
              latePolicy: [
                ...d.latePolicy,
                { key: newKey(), until: '', credit: d.latePolicy.length ? '25' : '50' },
              ],
            })
          }
        >
          Add a late credit line
        </button>
        <h2>Reference solution</h2>
        <p className="muted" id="reference-hint">
          Only staff see it. On save it runs against every test, hidden ones included; no attempt is used.
        </p>
        <CodeEditor
          label="Reference solution"
          language={d.language}
          value={d.referenceSolution}
          onChange={(v) => set({ referenceSolution: v })}
          minHeight="8rem"
          describedBy="reference-hint"
        />
        {fieldError('referenceSolution') && (
          <small className="field-error">{fieldError('referenceSolution')}</small>
        )}
        <h2>Visibility {exercise && <PublishBadge publishedAt={exercise.publishedAt} />}</h2>
        <div className="row">
          <Select
            label="Students see this exercise"
            value={d.visibility}
            onChange={(e) => set({ visibility: e.target.value as Draft['visibility'] })}
            error={d.visibility !== 'scheduled' ? fieldError('publishedAt') : undefined}
          >
            <option value="published">Now (published)</option>
            <option value="scheduled">From a date (scheduled)</option>
            <option value="draft">Not yet (draft)</option>
          </Select>
          {d.visibility === 'scheduled' && (
            <Input
              label="Publish at (your local time)"
              type="datetime-local"
              value={d.publishAt}
              onChange={(e) => set({ publishAt: e.target.value })}
              error={fieldError('publishedAt')}
            />
          )}
        </div>
        <ErrorMessage error={form.error} />
        <div className="button-row">
          <SubmitButton busy={form.busy}>{exercise ? 'Save exercise' : 'Create exercise'}</SubmitButton>
          <Link href={exercise ? `/exercises/${exercise.id}` : `/lessons/${lessonId}`}>
            {exercise ? 'View as student' : 'Cancel'}
          </Link>
          <span role="status" className="muted">
            {savedAt && `Saved at ${savedAt}`}
          </span>
        </div>
      </form>
      {checkedAt && (
        <section className="card" aria-labelledby="check-heading">
          <h2 id="check-heading">Reference solution check</h2>
          <ConsolePane run={check.run} busy={check.busy} error={check.error} timedOut={check.timedOut} />
          {check.run?.status === 'passed' && (
            <p className="ok-text">The reference solution passes every test.</p>
          )}
          {check.run && (check.run.status === 'failed' || check.run.status === 'error') && (
            <p className="warning">
              The reference solution does not pass every test: check the tests before students submit.
            </p>
          )}
        </section>
      )}
      {exercise && <DeleteExercise exercise={exercise} />}
    </>
  );
}

/** Delete (v1.1): with submissions, the server answers 409 has_submissions; a second confirmation forces it. */
function DeleteExercise({ exercise }: { exercise: Exercise }) {
  const del = useSubmit();
  const run = async () => {
    if (!window.confirm(`Delete the exercise "${exercise.title}"?`)) return;
    const ok = await del.run(async () => {
      try {
        await api('DELETE', `/exercises/${exercise.id}`);
      } catch (err) {
        if (!(err instanceof ApiError && err.code === 'has_submissions')) throw err;
        if (
          !window.confirm(
            'Students have submitted to this exercise. Delete it with all its submissions and their scores? This cannot be undone.',
          )
        )
          return false;
        await api('DELETE', `/exercises/${exercise.id}?force=true`);
      }
      return true;
    });
    if (ok) navigate(`/lessons/${exercise.lessonId}`);
  };
  return (
    <section className="card danger-zone" aria-labelledby="delete-heading">
      <h2 id="delete-heading">Delete</h2>
      <button type="button" className="danger" onClick={run} disabled={del.busy} aria-busy={del.busy}>
        Delete exercise
      </button>
      <ErrorMessage error={del.error} />
    </section>
  );
}

function Regrade({ exercise }: { exercise: Exercise }) {
  const form = useSubmit();
  const [queued, setQueued] = useState<number | null>(null);
  const run = async () => {
    if (!window.confirm('Grade every submission of this exercise again with the current tests?')) return;
    const r = await form.run(() => api<{ queued: number }>('POST', `/exercises/${exercise.id}/regrade`));
    if (r) setQueued(r.queued);
  };
  return (
    <section className="card" aria-labelledby="regrade-heading">
      <h2 id="regrade-heading">Regrade</h2>
      <p className="muted">
        After changing the tests, grade all submissions again; scores and the gradebook follow.
      </p>
      <button type="button" onClick={run} disabled={form.busy} aria-busy={form.busy}>
        {form.busy && <span className="spinner" aria-hidden="true" />}
        Regrade all submissions
      </button>
      <span role="status" className="muted">
        {queued !== null && ` ${queued} ${queued === 1 ? 'submission' : 'submissions'} queued for regrading.`}
      </span>
      <ErrorMessage error={form.error} />
    </section>
  );
}

export default function ExerciseEditPage({
  lessonId,
  exerciseId,
  check,
}: {
  lessonId?: string;
  exerciseId?: string;
  check?: boolean;
}) {
  useTitle(exerciseId ? 'Edit exercise' : 'New exercise');
  const state = useLoad(
    async (
      signal,
    ): Promise<{ data?: ExerciseData; lessonId: string; lessonTitle: string; course: Course }> => {
      if (exerciseId) {
        const data = await loadExercise(exerciseId, signal);
        return {
          data,
          lessonId: data.exercise.lessonId,
          lessonTitle: data.lessonTitle ?? 'Lesson',
          course: data.course,
        };
      }
      const l = await loadLesson(lessonId!, signal);
      const c = await loadCourse(l.lesson.courseId, signal);
      return { lessonId: l.lesson.id, lessonTitle: l.lesson.title, course: c.course };
    },
    [lessonId, exerciseId],
  );
  return (
    <Loaded state={state}>
      {({ data, lessonId: lid, lessonTitle, course }) => (
        <>
          <Breadcrumb
            trail={[
              [`/courses/${course.id}`, course.title],
              [`/lessons/${lid}`, lessonTitle],
            ]}
          />
          <ArchivedBanner course={course} />
          <PageHeading>{data ? `Edit: ${data.exercise.title}` : 'New exercise'}</PageHeading>
          <ExerciseForm lessonId={lid} exercise={data?.exercise} checkOnLoad={check} />
          {data && <Regrade exercise={data.exercise} />}
        </>
      )}
    </Loaded>
  );
}
