import { useState } from 'react';
import { api } from '../api/client.ts';
import type { Course, Page } from '../api/types.ts';
import {
  ErrorMessage,
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
            <ul className="course-list">
              {list.map((c) => (
                <li key={c.id} className="card">
                  <h2>
                    <Link href={`/courses/${c.id}`}>{c.title}</Link>
                  </h2>
                  <RoleBadge role={c.role} />
                  {c.description && <p className="muted clamp">{c.description}</p>}
                </li>
              ))}
            </ul>
          )
        }
      </Loaded>
      <div className="two-col">
        <JoinForm />
        <CreateForm />
      </div>
    </>
  );
}
