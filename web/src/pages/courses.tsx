import { useState } from 'react';
import { ApiError, api, fieldLabel, humanMessage } from '../api/client.ts';
import type { Course, Page, Progress } from '../api/types.ts';
import {
  ErrorMessage,
  formatDate,
  Input,
  Loaded,
  PageHeading,
  RoleBadge,
  SubmitButton,
  TextArea,
  useLoad,
  useSubmit,
} from '../components/ui.tsx';
import { Link, navigate, useTitle } from '../router.tsx';
import { loadProgress } from './course-data.ts';

/** All of the caller's courses: follows nextCursor (a person is in a handful of courses). */
async function loadCourses(signal: AbortSignal): Promise<Course[]> {
  const all: Course[] = [];
  let cursor: string | null = null;
  do {
    const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const page: Page<Course> = await api<Page<Course>>('GET', `/courses?limit=100${q}`, undefined, {
      signal,
    });
    all.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return all;
}

function JoinForm() {
  const [code, setCode] = useState('');
  const form = useSubmit();
  const submit = form.onSubmit(
    () => api<{ course: Course }>('POST', '/courses/join', { joinCode: code.trim() }),
    (r) => navigate(`/courses/${r.course.id}`),
  );
  return (
    <form onSubmit={submit} className="card" aria-labelledby="join-heading">
      <h2 id="join-heading">Join a course</h2>
      <Input
        label="Join code"
        name="joinCode"
        required
        autoComplete="off"
        value={code}
        onChange={(e) => setCode(e.target.value)}
        error={form.fieldError('joinCode')}
        hint="Your instructor gives you this code."
      />
      <ErrorMessage error={form.error} />
      <SubmitButton busy={form.busy}>Join</SubmitButton>
    </form>
  );
}

export interface CourseDraft {
  title: string;
  description: string;
}

/** A course's own fields, the same when it is created and when it is edited. */
export function CourseFields({
  value,
  onChange,
  fieldError,
  descriptionRows,
}: {
  value: CourseDraft;
  onChange: (value: CourseDraft) => void;
  fieldError: (field: string) => string | undefined;
  descriptionRows: number;
}) {
  return (
    <>
      <Input
        label="Title"
        name="title"
        required
        maxLength={200}
        value={value.title}
        onChange={(e) => onChange({ ...value, title: e.target.value })}
        error={fieldError('title')}
      />
      <TextArea
        label="Description"
        name="description"
        rows={descriptionRows}
        value={value.description}
        onChange={(e) => onChange({ ...value, description: e.target.value })}
        error={fieldError('description')}
      />
    </>
  );
}

function CreateForm() {
  const [fields, setFields] = useState<CourseDraft>({ title: '', description: '' });
  const form = useSubmit();
  const submit = form.onSubmit(
    () => api<{ course: Course }>('POST', '/courses', fields),
    (r) => navigate(`/courses/${r.course.id}`),
  );
  return (
    <form onSubmit={submit} className="card" aria-labelledby="create-heading">
      <h2 id="create-heading">Create a course</h2>
      <CourseFields value={fields} onChange={setFields} fieldError={form.fieldError} descriptionRows={3} />
      <ErrorMessage error={form.error} />
      <SubmitButton busy={form.busy}>Create course</SubmitButton>
    </form>
  );
}

/** Import (v1.1): a course document from a file; a 400 lists what is wrong, and nothing was created. */
function ImportForm() {
  const [file, setFile] = useState<File | null>(null);
  const form = useSubmit();
  const submit = form.onSubmit(
    async () => {
      if (!file) throw new Error('Choose a course file (.json) exported from Lab.');
      let doc: unknown;
      try {
        doc = JSON.parse(await file.text());
      } catch {
        throw new Error(`${file.name} is not a JSON file; export a course from its page to get one.`);
      }
      return api<{ course: Course }>('POST', '/courses/import', doc);
    },
    (r) => navigate(`/courses/${r.course.id}`),
  );
  const details = form.error instanceof ApiError ? form.error.details : [];
  return (
    <form onSubmit={submit} className="card" aria-labelledby="import-heading" noValidate>
      <h2 id="import-heading">Import a course</h2>
      <div className="field">
        <label htmlFor="import-file">Course file (JSON, from “Export”)</label>
        <input
          id="import-file"
          type="file"
          accept="application/json,.json"
          onChange={(e) => setFile(e.target.files?.[0] ?? null)}
        />
      </div>
      {details.length > 0 ? (
        <div className="error" role="alert">
          <p>The file was not imported (nothing was created). Fix these and try again:</p>
          <ul data-testid="import-errors">
            {details.slice(0, 20).map((d) => (
              <li key={`${d.field}:${d.message}`}>
                <code>{d.field}</code> ({fieldLabel(d.field)}) {humanMessage(d.message)}
              </li>
            ))}
            {details.length > 20 && <li>… and {details.length - 20} more.</li>}
          </ul>
        </div>
      ) : (
        <ErrorMessage error={form.error} />
      )}
      <SubmitButton busy={form.busy}>Import course</SubmitButton>
    </form>
  );
}

interface DueItem {
  courseId: string;
  courseTitle: string;
  exercise: Progress['exercises'][number];
}

/** A student's exercises due in the next two weeks across their courses, not yet fully done. */
function DueSoon({ courses }: { courses: Course[] }) {
  const students = courses.filter((c) => c.role === 'student' && !c.archived);
  const ids = students.map((c) => c.id).join(',');
  const state = useLoad(
    async (signal) => {
      const now = Date.now();
      const horizon = now + 14 * 24 * 3600 * 1000;
      const lists = await Promise.all(
        students.map(async (c) => {
          const p = await loadProgress(c.id, signal).catch(() => null);
          return (p?.exercises ?? []).map((exercise) => ({ courseId: c.id, courseTitle: c.title, exercise }));
        }),
      );
      return lists
        .flat()
        .filter(
          ({ exercise: e }) =>
            e.dueAt !== null &&
            Date.parse(e.dueAt) > now &&
            Date.parse(e.dueAt) < horizon &&
            (e.bestScore === null || e.bestScore < e.maxScore) &&
            e.attemptsLeft !== 0,
        )
        .sort((a, b) => a.exercise.dueAt!.localeCompare(b.exercise.dueAt!))
        .slice(0, 10) as DueItem[];
    },
    [ids],
  );
  if (students.length === 0 || !state.data || state.data.length === 0) return null;
  return (
    <section className="card due-soon" aria-labelledby="due-heading">
      <h2 id="due-heading">Due soon</h2>
      <ul className="plain">
        {state.data.map(({ courseTitle, exercise: e }) => (
          <li key={e.id}>
            <Link href={`/exercises/${e.id}`}>{e.title}</Link>{' '}
            <span className="muted">
              · {courseTitle} · due {formatDate(e.dueAt)}
              {e.bestScore !== null ? ` · best ${e.bestScore} / ${e.maxScore}` : ' · not started'}
              {e.attemptsLeft !== null && ` · ${e.attemptsLeft} attempts left`}
            </span>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function CoursesPage() {
  useTitle('My courses');
  const courses = useLoad((signal) => loadCourses(signal), []);
  return (
    <>
      <PageHeading>My courses</PageHeading>
      <Loaded state={courses}>
        {(list) =>
          list.length === 0 ? (
            <p className="empty">You are not in any course yet. Join one with a code, or create one.</p>
          ) : (
            <>
              <DueSoon courses={list} />
              <ul className="course-list">
                {list.map((c) => (
                  <li key={c.id} className="card">
                    <h2>
                      <Link href={`/courses/${c.id}`}>{c.title}</Link>
                    </h2>
                    <RoleBadge role={c.role} />
                    {c.archived && <span className="badge archived">Archived</span>}
                    {c.description && <p className="muted clamp">{c.description}</p>}
                  </li>
                ))}
              </ul>
            </>
          )
        }
      </Loaded>
      <div className="two-col">
        <JoinForm />
        <CreateForm />
      </div>
      <ImportForm />
    </>
  );
}
