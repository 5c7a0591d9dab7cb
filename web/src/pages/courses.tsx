import { type FormEvent, useState } from 'react';
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
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const r = await form.run(() =>
      api<{ course: Course }>('POST', '/courses/join', { joinCode: code.trim() }),
    );
    if (r) navigate(`/courses/${r.course.id}`);
  };
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

function CreateForm() {
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const form = useSubmit();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const r = await form.run(() => api<{ course: Course }>('POST', '/courses', { title, description }));
    if (r) navigate(`/courses/${r.course.id}`);
  };
  return (
    <form onSubmit={submit} className="card" aria-labelledby="create-heading">
      <h2 id="create-heading">Create a course</h2>
      <Input
        label="Title"
        name="title"
        required
        maxLength={200}
        value={title}
        onChange={(e) => setTitle(e.target.value)}
        error={form.fieldError('title')}
      />
      <TextArea
        label="Description"
        name="description"
        rows={3}
        value={description}
        onChange={(e) => setDescription(e.target.value)}
        error={form.fieldError('description')}
      />
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
