import { useState } from 'react';
import { api } from '../api/client.ts';
import type { Lesson } from '../api/types.ts';
import { MarkdownField } from '../components/markdown-field.tsx';
import {
  Breadcrumb,
  ErrorMessage,
  fromLocalInput,
  Input,
  Loaded,
  PageHeading,
  type PublishState,
  publishState,
  RestoredNotice,
  Select,
  SubmitButton,
  toLocalInput,
  useLoad,
  useStoredDraft,
  useSubmit,
} from '../components/ui.tsx';
import { Link, navigate, useTitle } from '../router.tsx';
import { useUser } from '../session.tsx';
import { loadCourse } from './course.tsx';
import { loadLesson } from './lesson.tsx';

function LessonForm({
  courseId,
  lesson,
  courseTitle,
}: {
  courseId: string;
  lesson?: Lesson;
  courseTitle: string;
}) {
  const user = useUser();
  const saved = () => ({
    title: lesson?.title ?? '',
    body: lesson?.body ?? '',
    position: lesson ? String(lesson.position) : '',
    visibility: lesson ? publishState(lesson.publishedAt) : ('published' as PublishState),
    publishAt: toLocalInput(lesson?.publishedAt ?? null),
  });
  const draft = useStoredDraft(`lab:edit:${user.id}:lesson:${lesson?.id ?? `new:${courseId}`}`, saved);
  const { title, body, position } = draft.value;
  // Drafts stored before v1.1 have no visibility.
  const visibility = draft.value.visibility ?? 'published';
  const publishAt = draft.value.publishAt ?? '';
  const [localError, setLocalError] = useState<string | undefined>();
  const setTitle = (v: string) => draft.update((d) => ({ ...d, title: v }));
  const setBody = (v: string) => draft.update((d) => ({ ...d, body: v }));
  const setPosition = (v: string) => draft.update((d) => ({ ...d, position: v }));
  const form = useSubmit();
  const remove = useSubmit();

  const submit = form.onSubmit(
    () => {
      const payload: Record<string, unknown> = { title, body };
      if (position.trim() !== '') payload.position = Number(position);
      setLocalError(undefined);
      if (visibility === 'draft') payload.publishedAt = null;
      else if (visibility === 'scheduled') {
        if (!publishAt) {
          setLocalError('needs a date and time');
          return Promise.reject(new Error('Choose when the lesson is published, or publish it now.'));
        }
        payload.publishedAt = fromLocalInput(publishAt);
      } else if (lesson && publishState(lesson.publishedAt) !== 'published')
        payload.publishedAt = new Date().toISOString();
      return lesson
        ? api<{ lesson: Lesson }>('PATCH', `/lessons/${lesson.id}`, payload)
        : api<{ lesson: Lesson }>('POST', `/courses/${courseId}/lessons`, payload);
    },
    (r) => {
      draft.clear();
      navigate(`/lessons/${r.lesson.id}`);
    },
  );

  const del = async () => {
    if (!lesson || !window.confirm(`Delete the lesson "${lesson.title}" and its exercises?`)) return;
    const ok = await remove.run(async () => {
      await api('DELETE', `/lessons/${lesson.id}`);
      return true;
    });
    if (ok) navigate(`/courses/${courseId}`);
  };

  return (
    <>
      <Breadcrumb
        trail={[[`/courses/${courseId}`, courseTitle], lesson && [`/lessons/${lesson.id}`, lesson.title]]}
      />
      <PageHeading>{lesson ? 'Edit lesson' : 'New lesson'}</PageHeading>
      {draft.restored && <RestoredNotice onDiscard={() => draft.clear(saved())} />}
      <form onSubmit={submit} className="card" noValidate>
        <Input
          label="Title"
          required
          maxLength={200}
          value={title}
          onChange={(e) => setTitle(e.target.value)}
          error={form.fieldError('title')}
        />
        <Input
          label="Position"
          type="number"
          min={0}
          step={1}
          inputMode="numeric"
          hint="Lessons are listed by position; leave empty to put it last."
          value={position}
          onChange={(e) => setPosition(e.target.value)}
          error={form.fieldError('position')}
        />
        <div className="row">
          <Select
            label="Students see this lesson"
            value={visibility}
            onChange={(e) => draft.update((d) => ({ ...d, visibility: e.target.value as PublishState }))}
          >
            <option value="published">Now (published)</option>
            <option value="scheduled">From a date (scheduled)</option>
            <option value="draft">Not yet (draft)</option>
          </Select>
          {visibility === 'scheduled' && (
            <Input
              label="Publish at (your local time)"
              type="datetime-local"
              value={publishAt}
              onChange={(e) => draft.update((d) => ({ ...d, publishAt: e.target.value }))}
              error={localError ?? form.fieldError('publishedAt')}
            />
          )}
        </div>
        <MarkdownField
          label="Body (Markdown)"
          tabsLabel="Lesson body"
          idPrefix=""
          rows={18}
          value={body}
          onChange={setBody}
          error={form.fieldError('body')}
          hint="Markdown: # headings, **bold**, `code`, ```python fenced blocks```, ![image description](url). Scripts and styles are removed."
        />
        <ErrorMessage error={form.error} />
        <div className="button-row">
          <SubmitButton busy={form.busy}>{lesson ? 'Save lesson' : 'Create lesson'}</SubmitButton>
          <Link href={lesson ? `/lessons/${lesson.id}` : `/courses/${courseId}`}>Cancel</Link>
          {lesson && (
            <button type="button" className="danger" onClick={del} disabled={remove.busy}>
              Delete lesson
            </button>
          )}
        </div>
        <ErrorMessage error={remove.error} />
      </form>
    </>
  );
}

export default function LessonEditPage({ courseId, lessonId }: { courseId?: string; lessonId?: string }) {
  useTitle(lessonId ? 'Edit lesson' : 'New lesson');
  const state = useLoad(
    async (signal) => {
      const l = lessonId ? await loadLesson(lessonId, signal) : undefined;
      const c = await loadCourse(l?.lesson.courseId ?? courseId!, signal);
      return { lesson: l?.lesson, course: c.course };
    },
    [courseId, lessonId],
  );
  return (
    <Loaded state={state}>
      {({ lesson, course }) => <LessonForm courseId={course.id} lesson={lesson} courseTitle={course.title} />}
    </Loaded>
  );
}
