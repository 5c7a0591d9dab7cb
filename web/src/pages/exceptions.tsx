import { useState } from 'react';
import { api } from '../api/client.ts';
import type { Course, Exercise, Member, StudentException } from '../api/types.ts';
import {
  ErrorMessage,
  formatDate,
  fromLocalInput,
  Input,
  Loading,
  Select,
  SubmitButton,
  toLocalInput,
  useLoad,
  useSubmit,
} from '../components/ui.tsx';
import { loadMembers } from './members.tsx';

/**
 * Staff, on the exercise page: per-student extensions and extra attempts (v1.1 exceptions). One form
 * sets a student's own due date and extra attempts (again for the same student = change it); the table
 * lists who has one, with a button to remove it.
 */
export function ExceptionsPanel({ exercise, course }: { exercise: Exercise; course: Course }) {
  const state = useLoad(
    async (signal) => {
      const [list, members] = await Promise.all([
        api<{ items: StudentException[] }>('GET', `/exercises/${exercise.id}/exceptions`, undefined, {
          signal,
        }),
        loadMembers(course.id, signal),
      ]);
      return { items: list.items, students: members.filter((m) => m.role === 'student') };
    },
    [exercise.id, course.id],
  );
  const [userId, setUserId] = useState('');
  const [dueAt, setDueAt] = useState('');
  const [extra, setExtra] = useState('0');
  const [status, setStatus] = useState('');
  const form = useSubmit();
  const remove = useSubmit();
  const names = new Map((state.data?.students ?? []).map((m: Member) => [m.user.id, m.user.name]));

  const submit = form.onSubmit(
    () => {
      if (!userId) return Promise.reject(new Error('Choose a student first.'));
      return api<{ exception: StudentException }>('PUT', `/exercises/${exercise.id}/exceptions/${userId}`, {
        dueAt: fromLocalInput(dueAt),
        extraAttempts: extra.trim() === '' ? 0 : Number(extra),
      });
    },
    (r) => {
      const name = names.get(r.exception.userId) ?? 'the student';
      setStatus(
        `Saved for ${name}: due ${r.exception.dueAt ? formatDate(r.exception.dueAt) : 'as the exercise'}, ${r.exception.extraAttempts} extra attempts.`,
      );
      state.reload();
    },
  );

  const del = async (x: StudentException) => {
    const name = x.user?.name ?? names.get(x.userId) ?? 'this student';
    if (!window.confirm(`Remove the exception of ${name}?`)) return;
    const ok = await remove.run(async () => {
      await api('DELETE', `/exercises/${exercise.id}/exceptions/${x.userId}`);
      return true;
    });
    if (ok) {
      setStatus(`Removed the exception of ${name}.`);
      state.reload();
    }
  };

  return (
    <section className="card exceptions" aria-labelledby="exceptions-heading">
      <h2 id="exceptions-heading">Extensions and extra attempts</h2>
      <p className="muted">
        A student's own due date (their submissions before it are on time) and attempts on top of the limit
        {exercise.maxAttempts ? ` of ${exercise.maxAttempts}` : ''}.
      </p>
      {state.error ? <ErrorMessage error={state.error} /> : null}
      {!state.data && !state.error && <Loading />}
      {state.data && (
        <>
          {state.data.items.length === 0 ? (
            <p className="empty">No exceptions.</p>
          ) : (
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Exceptions for {exercise.title}</caption>
                <thead>
                  <tr>
                    <th scope="col">Student</th>
                    <th scope="col">Own due date</th>
                    <th scope="col" className="num">
                      Extra attempts
                    </th>
                    <th scope="col">
                      <span className="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {state.data.items.map((x) => {
                    const name = x.user?.name ?? names.get(x.userId) ?? x.userId;
                    return (
                      <tr key={x.userId}>
                        <th scope="row">{name}</th>
                        <td>{x.dueAt ? formatDate(x.dueAt) : 'the exercise’s'}</td>
                        <td className="num">{x.extraAttempts}</td>
                        <td>
                          <button
                            type="button"
                            className="link-button danger"
                            onClick={() => del(x)}
                            disabled={remove.busy || course.archived}
                          >
                            Remove <span className="visually-hidden">the exception of {name}</span>
                          </button>
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
          <ErrorMessage error={remove.error} />
          <form onSubmit={submit} className="exception-form" noValidate>
            <div className="row">
              <Select
                label="Student"
                value={userId}
                required
                onChange={(e) => {
                  setUserId(e.target.value);
                  const x = state.data?.items.find((i) => i.userId === e.target.value);
                  setDueAt(toLocalInput(x?.dueAt ?? null));
                  setExtra(String(x?.extraAttempts ?? 0));
                }}
              >
                <option value="">Choose a student…</option>
                {state.data.students.map((m) => (
                  <option key={m.user.id} value={m.user.id}>
                    {m.user.name} ({m.user.email})
                  </option>
                ))}
              </Select>
              <Input
                label="Own due date (your local time)"
                type="datetime-local"
                hint="Empty: the exercise's due date."
                value={dueAt}
                onChange={(e) => setDueAt(e.target.value)}
                error={form.fieldError('dueAt')}
              />
              <Input
                label="Extra attempts"
                type="number"
                min={0}
                max={1000}
                value={extra}
                onChange={(e) => setExtra(e.target.value)}
                error={form.fieldError('extraAttempts')}
              />
            </div>
            <ErrorMessage error={form.error} />
            <div className="button-row">
              <SubmitButton busy={form.busy}>Save exception</SubmitButton>
              <span role="status" className="muted">
                {status}
              </span>
            </div>
          </form>
        </>
      )}
    </section>
  );
}
