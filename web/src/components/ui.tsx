import {
  type DependencyList,
  type FormEvent,
  Fragment,
  type InputHTMLAttributes,
  type ReactNode,
  type SelectHTMLAttributes,
  type TextareaHTMLAttributes,
  useCallback,
  useEffect,
  useId,
  useRef,
  useState,
} from 'react';
import { ApiError, describeError } from '../api/client.ts';
import type { Course, Role } from '../api/types.ts';
import { Link, navigated } from '../router.tsx';

/** Loads data for a page; `reload` runs it again. Aborts when the component unmounts. */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: DependencyList) {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  // biome-ignore lint/correctness/useExhaustiveDependencies: the caller lists load's inputs in deps
  useEffect(() => {
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true, error: undefined }));
    load(ctl.signal).then(
      (data) => !ctl.signal.aborted && setState({ data, loading: false }),
      (error) => !ctl.signal.aborted && setState({ error, loading: false }),
    );
    return () => ctl.abort();
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const set = useCallback((data: T) => setState({ data, loading: false }), []);
  return { ...state, reload, set };
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p className="loading" role="status">
      <span className="spinner" aria-hidden="true" /> {label}
    </p>
  );
}

/** Shows an API error where it happened; announced to screen readers. */
export function ErrorMessage({ error, id }: { error: unknown; id?: string }) {
  if (!error) return null;
  return (
    <p className="error" role="alert" id={id}>
      {describeError(error)}
    </p>
  );
}

/** Page-level wrapper for the loading / error / data states of useLoad. */
export function Loaded<T>({
  state,
  children,
}: {
  state: { data?: T; error?: unknown; loading: boolean; reload: () => void };
  children: (data: T) => ReactNode;
}) {
  if (state.error) {
    const notFound = state.error instanceof ApiError && state.error.status === 404;
    return (
      <div className="panel">
        <PageHeading>{notFound ? 'Not found' : 'Something went wrong'}</PageHeading>
        <ErrorMessage error={state.error} />
        {!notFound && (
          <button type="button" onClick={state.reload}>
            Try again
          </button>
        )}
      </div>
    );
  }
  if (state.data === undefined) return <Loading />;
  return <>{children(state.data)}</>;
}

type FieldProps = { label: string; error?: string; hint?: ReactNode };

function useFieldIds(error?: string, hint?: ReactNode) {
  const id = useId();
  const describedBy = [error ? `${id}-err` : '', hint ? `${id}-hint` : ''].filter(Boolean).join(' ');
  return { id, describedBy: describedBy || undefined };
}

function FieldFrame({ id, label, error, hint, children }: FieldProps & { id: string; children: ReactNode }) {
  return (
    <div className={`field${error ? ' has-error' : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children}
      {hint && (
        <small className="hint" id={`${id}-hint`}>
          {hint}
        </small>
      )}
      {error && (
        <small className="field-error" id={`${id}-err`}>
          {error}
        </small>
      )}
    </div>
  );
}

export function Input({ label, error, hint, ...rest }: FieldProps & InputHTMLAttributes<HTMLInputElement>) {
  const { id, describedBy } = useFieldIds(error, hint);
  return (
    <FieldFrame id={id} label={label} error={error} hint={hint}>
      <input id={id} aria-invalid={error ? true : undefined} aria-describedby={describedBy} {...rest} />
    </FieldFrame>
  );
}

export function TextArea({
  label,
  error,
  hint,
  ...rest
}: FieldProps & TextareaHTMLAttributes<HTMLTextAreaElement>) {
  const { id, describedBy } = useFieldIds(error, hint);
  return (
    <FieldFrame id={id} label={label} error={error} hint={hint}>
      <textarea id={id} aria-invalid={error ? true : undefined} aria-describedby={describedBy} {...rest} />
    </FieldFrame>
  );
}

export function Select({
  label,
  error,
  hint,
  children,
  ...rest
}: FieldProps & SelectHTMLAttributes<HTMLSelectElement>) {
  const { id, describedBy } = useFieldIds(error, hint);
  return (
    <FieldFrame id={id} label={label} error={error} hint={hint}>
      <select id={id} aria-invalid={error ? true : undefined} aria-describedby={describedBy} {...rest}>
        {children}
      </select>
    </FieldFrame>
  );
}

export function SubmitButton({ busy, children }: { busy: boolean; children: ReactNode }) {
  return (
    <button type="submit" className="primary" disabled={busy} aria-busy={busy}>
      {busy && <span className="spinner" aria-hidden="true" />}
      {children}
    </button>
  );
}

const ROLE_LABEL: Record<Role, string> = { instructor: 'Instructor', ta: 'TA', student: 'Student' };

export function RoleBadge({ role }: { role: Role }) {
  return <span className={`badge role-${role}`}>{ROLE_LABEL[role]}</span>;
}

export const isStaffRole = (role: Role | undefined) => role === 'instructor' || role === 'ta';

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
export const formatDate = (iso: string | null | undefined) => (iso ? dateFmt.format(new Date(iso)) : '—');

/** A form's submit state: busy flag plus the last error, kept until the next attempt. */
export function useSubmit() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = useCallback(async <T,>(fn: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (err) {
      setError(err);
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  const fieldError = (field: string) => (error instanceof ApiError ? error.fieldError(field) : undefined);
  /** A form's onSubmit: runs `request`, then `done` with its result if it succeeded. */
  const onSubmit =
    <T,>(request: () => Promise<T>, done: (result: T) => void) =>
    async (e: FormEvent) => {
      e.preventDefault();
      const result = await run(request);
      if (result) done(result);
    };
  return { busy, error, run, fieldError, setError, onSubmit };
}

type Crumb = [href: string, label: ReactNode];

/** The links above a page's heading, from "My courses" down to the page's parent (empty entries skipped). */
export function Breadcrumb({ trail }: { trail: (Crumb | undefined)[] }) {
  const crumbs: Crumb[] = [['/', 'My courses'], ...trail.filter((c) => c !== undefined)];
  return (
    <nav aria-label="Breadcrumb" className="breadcrumb">
      {crumbs.map(([href, label], i) => (
        <Fragment key={href}>
          {i > 0 && ' › '}
          <Link href={href}>{label}</Link>
        </Fragment>
      ))}
    </nav>
  );
}

/** The page's h1; after an in-app navigation it takes focus so screen readers announce the new page. */
export function PageHeading({ children, className }: { children: ReactNode; className?: string }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    if (navigated) ref.current?.focus();
  }, []);
  return (
    <h1 ref={ref} tabIndex={-1} className={className}>
      {children}
    </h1>
  );
}

/**
 * Form state mirrored to localStorage until it is saved, so a failed save, an expired session (which
 * sends the user to sign-in) or a closed tab loses nothing. `restored` says the draft came from storage.
 */
export function useStoredDraft<T>(key: string, initial: () => T) {
  const [init] = useState(() => {
    try {
      const raw = window.localStorage.getItem(key);
      if (raw !== null) return { value: JSON.parse(raw) as T, restored: true };
    } catch {
      // Unreadable or unavailable storage: start from the saved version.
    }
    return { value: initial(), restored: false };
  });
  const [value, setValue] = useState<T>(init.value);
  const [restored, setRestored] = useState(init.restored);
  const dirty = useRef(false);
  const pending = useRef<string | null>(null);
  // Written 300 ms after the last change, and at once when the page goes away (reload, tab closed).
  useEffect(() => {
    const flush = () => {
      if (pending.current === null) return;
      try {
        window.localStorage.setItem(key, pending.current);
      } catch {
        // Storage full or disabled: the form still works.
      }
      pending.current = null;
    };
    window.addEventListener('pagehide', flush);
    return () => {
      flush();
      window.removeEventListener('pagehide', flush);
    };
  }, [key]);
  useEffect(() => {
    if (!dirty.current) return;
    pending.current = JSON.stringify(value);
    const t = setTimeout(() => {
      if (pending.current === null) return;
      try {
        window.localStorage.setItem(key, pending.current);
      } catch {
        // As above.
      }
      pending.current = null;
    }, 300);
    return () => clearTimeout(t);
  }, [key, value]);
  const update = useCallback((next: T | ((old: T) => T)) => {
    dirty.current = true;
    setValue(next);
  }, []);
  /** After a successful save (or to throw the local changes away). */
  const clear = useCallback(
    (reset?: T) => {
      dirty.current = false;
      pending.current = null;
      setRestored(false);
      try {
        window.localStorage.removeItem(key);
      } catch {
        // Nothing to remove.
      }
      if (reset !== undefined) setValue(reset);
    },
    [key],
  );
  return { value, update, clear, restored };
}

export function RestoredNotice({ onDiscard }: { onDiscard: () => void }) {
  return (
    <p className="warning" role="status">
      Your unsaved changes on this device were restored.{' '}
      <button type="button" className="link-button" onClick={onDiscard}>
        Discard them
      </button>
    </p>
  );
}

export type PublishState = 'draft' | 'scheduled' | 'published';

/** v1.1: null = draft; in the future = scheduled; otherwise published. */
export function publishState(publishedAt: string | null, now = Date.now()): PublishState {
  if (publishedAt === null) return 'draft';
  return Date.parse(publishedAt) > now ? 'scheduled' : 'published';
}

/** Staff see whether students can see a lesson or exercise yet. */
export function PublishBadge({ publishedAt }: { publishedAt: string | null }) {
  const state = publishState(publishedAt);
  const label =
    state === 'draft'
      ? 'Draft'
      : state === 'scheduled'
        ? `Scheduled: ${formatDate(publishedAt)}`
        : 'Published';
  return (
    <span className={`badge publish-${state}`} data-publish={state}>
      {label}
    </span>
  );
}

/** Shown on every page of an archived course: nothing can be changed or submitted. */
export function ArchivedBanner({ course }: { course: Course }) {
  if (!course.archived) return null;
  return (
    <p className="warning archived-banner" role="note">
      This course is archived: it is read-only. Nothing can be submitted or changed
      {course.role === 'instructor' ? ' until you unarchive it on the course page.' : '.'}
    </p>
  );
}

/** datetime-local wants local "YYYY-MM-DDTHH:mm"; the API speaks UTC ISO strings. */
export const toLocalInput = (iso: string | null) => {
  if (!iso) return '';
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
};

/** A datetime-local value as an ISO string (null when empty). */
export const fromLocalInput = (v: string) => (v ? new Date(v).toISOString() : null);
