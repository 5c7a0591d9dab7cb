import { type FormEvent, useState } from 'react';
import { api } from '../api/client.ts';
import type { Course } from '../api/types.ts';
import {
  ErrorMessage,
  Input,
  Loaded,
  PageHeading,
  SubmitButton,
  TextArea,
  useLoad,
  useSubmit,
} from '../components/ui.tsx';
import { Link, navigate, useTitle } from '../router.tsx';
import { loadCourse } from './course.tsx';

function CourseForm({ course }: { course: Course }) {
  const [title, setTitle] = useState(course.title);
  const [description, setDescription] = useState(course.description);
  const form = useSubmit();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const r = await form.run(() =>
      api<{ course: Course }>('PATCH', `/courses/${course.id}`, { title, description }),
    );
    if (r) navigate(`/courses/${course.id}`);
  };
  return (
    <form onSubmit={submit} className="card">
      <Input
        label="Title"
        required
        maxLength={200}
        value={title}
        onChange={(e) => setTitle(e.target.value)}
        error={form.fieldError('title')}
      />
      <TextArea
        label="Description"
        rows={5}
        value={description}
        onChange={(e) => setDescription(e.target.value)}
        error={form.fieldError('description')}
      />
      <ErrorMessage error={form.error} />
      <div className="button-row">
        <SubmitButton busy={form.busy}>Save course</SubmitButton>
        <Link href={`/courses/${course.id}`}>Cancel</Link>
      </div>
    </form>
  );
}

export default function CourseEditPage({ courseId }: { courseId: string }) {
  useTitle('Edit course');
  const state = useLoad((signal) => loadCourse(courseId, signal), [courseId]);
  return (
    <Loaded state={state}>
      {({ course }) => (
        <>
          <nav aria-label="Breadcrumb" className="breadcrumb">
            <Link href="/">My courses</Link> › <Link href={`/courses/${course.id}`}>{course.title}</Link>
          </nav>
          <PageHeading>Edit course</PageHeading>
          <CourseForm course={course} />
        </>
      )}
    </Loaded>
  );
}
