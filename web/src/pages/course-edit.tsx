import { useState } from 'react';
import { api } from '../api/client.ts';
import type { Course } from '../api/types.ts';
import {
  Breadcrumb,
  ErrorMessage,
  Loaded,
  PageHeading,
  SubmitButton,
  useLoad,
  useSubmit,
} from '../components/ui.tsx';
import { Link, navigate, useTitle } from '../router.tsx';
import { loadCourse } from './course.tsx';
import { type CourseDraft, CourseFields } from './courses.tsx';

function CourseForm({ course }: { course: Course }) {
  const [fields, setFields] = useState<CourseDraft>({ title: course.title, description: course.description });
  const form = useSubmit();
  const submit = form.onSubmit(
    () => api<{ course: Course }>('PATCH', `/courses/${course.id}`, fields),
    () => navigate(`/courses/${course.id}`),
  );
  return (
    <form onSubmit={submit} className="card">
      <CourseFields value={fields} onChange={setFields} fieldError={form.fieldError} descriptionRows={5} />
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
          <Breadcrumb trail={[[`/courses/${course.id}`, course.title]]} />
          <PageHeading>Edit course</PageHeading>
          <CourseForm course={course} />
        </>
      )}
    </Loaded>
  );
}
