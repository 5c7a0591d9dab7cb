import { type ReactNode, useState } from 'react';
import { api } from '../api/client.ts';
import type { User } from '../api/types.ts';
import { ErrorMessage, Input, PageHeading, SubmitButton, useSubmit } from '../components/ui.tsx';
import { Link, navigate, useTitle } from '../router.tsx';
import { useSession } from '../session.tsx';

/** Only same-app paths are followed after sign-in (no open redirect through ?next=). */
const safeNext = (next: string | null) => (next?.startsWith('/') && !next.startsWith('//') ? next : '/');

/** `path`, carrying ?next= along when there is one. */
const withNext = (path: string, next: string | null) =>
  next ? `${path}?next=${encodeURIComponent(next)}` : path;

type FieldError = (field: string) => string | undefined;

/**
 * What signing in and signing up share: email and password, the error, the button and the link to the
 * other page. `request` gets the credentials; on success the session starts and ?next= is followed.
 * A new account gets the browser's "new password" treatment and the length rule.
 */
function AuthForm({
  title,
  submitLabel,
  next,
  newAccount,
  request,
  extraFields,
  footer,
}: {
  title: string;
  submitLabel: string;
  next: string | null;
  newAccount: boolean;
  request: (credentials: { email: string; password: string }) => Promise<{ user: User }>;
  /** Fields shown before email and password. */
  extraFields?: (fieldError: FieldError) => ReactNode;
  footer: ReactNode;
}) {
  useTitle(title);
  const { signedIn } = useSession();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const form = useSubmit();
  const submit = form.onSubmit(
    () => request({ email, password }),
    (r) => {
      signedIn(r.user);
      navigate(safeNext(next), { replace: true });
    },
  );
  return (
    <div className="panel narrow">
      <PageHeading>{title}</PageHeading>
      <form onSubmit={submit} noValidate>
        {extraFields?.(form.fieldError)}
        <Input
          label="Email"
          type="email"
          name="email"
          autoComplete={newAccount ? 'email' : 'username'}
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          error={form.fieldError('email')}
        />
        <Input
          label="Password"
          type="password"
          name="password"
          autoComplete={newAccount ? 'new-password' : 'current-password'}
          required
          minLength={newAccount ? 10 : undefined}
          hint={newAccount ? 'At least 10 characters.' : undefined}
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={form.fieldError('password')}
        />
        <ErrorMessage error={form.error} />
        <SubmitButton busy={form.busy}>{submitLabel}</SubmitButton>
      </form>
      <p>{footer}</p>
    </div>
  );
}

export function SignInPage({ next }: { next: string | null }) {
  return (
    <AuthForm
      title="Sign in"
      submitLabel="Sign in"
      next={next}
      newAccount={false}
      request={(credentials) => api<{ user: User }>('POST', '/auth/login', credentials, { quiet401: true })}
      footer={
        <>
          New here? <Link href={withNext('/signup', next)}>Create an account</Link>
        </>
      }
    />
  );
}

export function SignUpPage({ next }: { next: string | null }) {
  const [name, setName] = useState('');
  return (
    <AuthForm
      title="Create an account"
      submitLabel="Create account"
      next={next}
      newAccount
      request={(credentials) => api<{ user: User }>('POST', '/auth/register', { name, ...credentials })}
      extraFields={(fieldError) => (
        <Input
          label="Name"
          name="name"
          autoComplete="name"
          required
          maxLength={100}
          value={name}
          onChange={(e) => setName(e.target.value)}
          error={fieldError('name')}
        />
      )}
      footer={
        <>
          Already have an account? <Link href={withNext('/signin', next)}>Sign in</Link>
        </>
      }
    />
  );
}
