import { type FormEvent, useState } from 'react';
import { api } from '../api/client.ts';
import type { Course, Exercise, Language, Submission, TestCase } from '../api/types.ts';
import { CodeEditor } from '../components/code-editor.tsx';
import { MarkdownField } from '../components/markdown-field.tsx';
import { SubmissionResult } from '../components/submission-view.tsx';
import {
  Breadcrumb,
  ErrorMessage,
  Input,
  Loaded,
  PageHeading,
  RestoredNotice,
  Select,
  SubmitButton,
  TextArea,
  useLoad,
  useStoredDraft,
  useSubmit,
} from '../components/ui.tsx';
import { Link, navigate, useTitle } from '../router.tsx';
import { useUser } from '../session.tsx';
import { loadCourse } from './course.tsx';
import { type ExerciseData, loadExercise, mergeSubmission, useLiveSubmissions } from './exercise.tsx';
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

/** datetime-local wants local "YYYY-MM-DDTHH:mm"; the API speaks UTC ISO strings. */
const toLocalInput = (iso: string | null) => {
  if (!iso) return '';
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
};

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
});

/** Turns the form into the API body; JSON typed by hand is checked here, next to its field. */
function toBody(d: Draft): { body?: Record<string, unknown>; errors: Record<string, string> } {
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

function ExerciseForm({ lessonId, exercise }: { lessonId: string; exercise?: Exercise }) {
  const user = useUser();
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
    const { body, errors } = toBody(d);
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
    if (!exercise) navigate(`/exercises/${r.exercise.id}/edit`, { replace: true });
    else setSavedAt(new Date().toLocaleTimeString());
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
    </>
  );
}

/** Staff check an exercise by submitting a known-good solution and watching it pass. */
function ReferenceCheck({ exercise }: { exercise: Exercise }) {
  const user = useUser();
  const [code, setCode] = useState(exercise.starterCode);
  const [subs, setSubs] = useLiveSubmissions(exercise.id, [], (s) => s.userId === user.id);
  const form = useSubmit();
  const run = async () => {
    const r = await form.run(() =>
      api<{ submission: Submission }>('POST', `/exercises/${exercise.id}/submissions`, { code }),
    );
    if (r) setSubs((list) => mergeSubmission(list, r.submission));
  };
  return (
    <section className="card" aria-labelledby="check-heading">
      <h2 id="check-heading">Check with a reference solution</h2>
      <p className="muted">
        Save the exercise first; this submits the code below as you and shows every test's result.
      </p>
      <CodeEditor
        label="Reference solution"
        language={exercise.language}
        value={code}
        onChange={setCode}
        minHeight="8rem"
      />
      <div className="button-row">
        <button type="button" className="primary" onClick={run} disabled={form.busy} aria-busy={form.busy}>
          {form.busy && <span className="spinner" aria-hidden="true" />}
          Check solution
        </button>
      </div>
      <ErrorMessage error={form.error} />
      <div aria-live="polite">
        {subs[0] && <SubmissionResult submission={subs[0]} maxScore={exercise.maxScore} />}
      </div>
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
}: {
  lessonId?: string;
  exerciseId?: string;
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
          <PageHeading>{data ? `Edit: ${data.exercise.title}` : 'New exercise'}</PageHeading>
          <ExerciseForm lessonId={lid} exercise={data?.exercise} />
          {data && <ReferenceCheck exercise={data.exercise} />}
          {data && <Regrade exercise={data.exercise} />}
        </>
      )}
    </Loaded>
  );
}
