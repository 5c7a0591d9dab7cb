import { useState } from 'react';
import { api, describeError } from '../api/client.ts';
import type { Member, Page, Role } from '../api/types.ts';
import { ArchivedBanner, Breadcrumb, Loaded, PageHeading, RoleBadge, useLoad } from '../components/ui.tsx';
import { useTitle } from '../router.tsx';
import { loadCourse } from './course.tsx';

/** Every member of a course: follows nextCursor a page of 100 at a time. */
export async function loadMembers(courseId: string, signal: AbortSignal): Promise<Member[]> {
  const all: Member[] = [];
  let cursor: string | null = null;
  do {
    const q = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const page: Page<Member> = await api<Page<Member>>(
      'GET',
      `/courses/${encodeURIComponent(courseId)}/members?limit=100${q}`,
      undefined,
      { signal },
    );
    all.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return all;
}

function RoleCell({
  courseId,
  member,
  onChanged,
}: {
  courseId: string;
  member: Member;
  onChanged: (m: Member) => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [status, setStatus] = useState('');
  const change = async (role: Role) => {
    const label = { instructor: 'an instructor', ta: 'a TA', student: 'a student' }[role];
    // A student's row leaves the gradebook when they become staff: ask first.
    if (
      member.role === 'student' &&
      role !== 'student' &&
      !window.confirm(
        `Make ${member.user.name} ${label}? Their row leaves the gradebook (their submissions are kept, and come back if they become a student again).`,
      )
    )
      return;
    setBusy(true);
    setError(null);
    setStatus('');
    try {
      const r = await api<{ member: Member }>('PUT', `/courses/${courseId}/members/${member.user.id}`, {
        role,
      });
      onChanged(r.member);
      setStatus('Saved');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const errId = `role-err-${member.user.id}`;
  return (
    <>
      <select
        aria-label={`Role of ${member.user.name}`}
        value={member.role}
        disabled={busy}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? errId : undefined}
        onChange={(e) => change(e.target.value as Role)}
      >
        <option value="student">Student</option>
        <option value="ta">TA</option>
        <option value="instructor">Instructor</option>
      </select>
      {busy && <span className="spinner" aria-hidden="true" />}
      <span role="status" className="muted">
        {status}
      </span>
      {error ? (
        <small className="field-error" id={errId} role="alert">
          {describeError(error)}
        </small>
      ) : null}
    </>
  );
}

function RemoveButton({
  courseId,
  member,
  onRemoved,
}: {
  courseId: string;
  member: Member;
  onRemoved: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const remove = async () => {
    if (
      !window.confirm(
        `Remove ${member.user.name} from the course? They lose access at once; their submissions are kept.`,
      )
    )
      return;
    setBusy(true);
    setError(null);
    try {
      await api('DELETE', `/courses/${courseId}/members/${member.user.id}`);
      onRemoved();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" className="link-button danger" onClick={remove} disabled={busy}>
        Remove <span className="visually-hidden">{member.user.name}</span>
      </button>
      {error ? (
        <small className="field-error" role="alert">
          {describeError(error)}
        </small>
      ) : null}
    </>
  );
}

export default function MembersPage({ courseId }: { courseId: string }) {
  useTitle('Members');
  const state = useLoad(
    async (signal) => {
      const [c, members] = await Promise.all([loadCourse(courseId, signal), loadMembers(courseId, signal)]);
      return { ...c, members };
    },
    [courseId],
  );
  return (
    <Loaded state={state}>
      {({ course, members }) => {
        const canEdit = course.role === 'instructor';
        const update = (m: Member) =>
          state.set({ ...state.data!, members: members.map((x) => (x.user.id === m.user.id ? m : x)) });
        const removed = (m: Member) =>
          state.set({ ...state.data!, members: members.filter((x) => x.user.id !== m.user.id) });
        return (
          <>
            <Breadcrumb trail={[[`/courses/${course.id}`, course.title]]} />
            <ArchivedBanner course={course} />
            <PageHeading>Members &amp; roles</PageHeading>
            <p className="muted">
              {members.length} {members.length === 1 ? 'member' : 'members'}.
              {course.joinCode && (
                <>
                  {' '}
                  Join code: <code className="join-code">{course.joinCode}</code>
                </>
              )}
            </p>
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Members of {course.title}</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Email</th>
                    <th scope="col">Role</th>
                    <th scope="col">Joined</th>
                    {canEdit && (
                      <th scope="col">
                        <span className="visually-hidden">Actions</span>
                      </th>
                    )}
                  </tr>
                </thead>
                <tbody>
                  {members.map((m) => (
                    <tr key={m.user.id}>
                      <td>{m.user.name}</td>
                      <td>{m.user.email}</td>
                      <td>
                        {canEdit ? (
                          <RoleCell courseId={course.id} member={m} onChanged={update} />
                        ) : (
                          <RoleBadge role={m.role} />
                        )}
                      </td>
                      <td>{new Date(m.joinedAt).toLocaleDateString()}</td>
                      {canEdit && (
                        <td>
                          <RemoveButton courseId={course.id} member={m} onRemoved={() => removed(m)} />
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </>
        );
      }}
    </Loaded>
  );
}
