import { type FormEvent, useState } from 'react';
import { api } from '../api/client.ts';
import type { User } from '../api/types.ts';
import { ErrorMessage, Input, PageHeading, SubmitButton, useSubmit } from '../components/ui.tsx';
import { Link, navigate, useTitle } from '../router.tsx';
import { useSession } from '../session.tsx';

/** Only same-app paths are followed after sign-in (no open redirect through ?next=). */
const safeNext = (next: string | null) => (next?.startsWith('/') && !next.startsWith('//') ? next : '/');

export function SignInPage({ next }: { next: string | null }) {
  useTitle('Sign in');
  const { signedIn } = useSession();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const form = useSubmit();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const r = await form.run(() =>
      api<{ user: User }>('POST', '/auth/login', { email, password }, { quiet401: true }),
    );
    if (r) {
      signedIn(r.user);
      navigate(safeNext(next), { replace: true });
    }
  };

  return (
    <div className="panel narrow">
      <PageHeading>Sign in</PageHeading>
      <form onSubmit={submit} noValidate>
        <Input
          label="Email"
          type="email"
          name="email"
          autoComplete="username"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          error={form.fieldError('email')}
        />
        <Input
          label="Password"
          type="password"
          name="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={form.fieldError('password')}
        />
        <ErrorMessage error={form.error} />
        <SubmitButton busy={form.busy}>Sign in</SubmitButton>
      </form>
      <p>
        New here?{' '}
        <Link href={next ? `/signup?next=${encodeURIComponent(next)}` : '/signup'}>Create an account</Link>
      </p>
    </div>
  );
}

export function SignUpPage({ next }: { next: string | null }) {
  useTitle('Create an account');
  const { signedIn } = useSession();
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const form = useSubmit();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const r = await form.run(() => api<{ user: User }>('POST', '/auth/register', { name, email, password }));
    if (r) {
      signedIn(r.user);
      navigate(safeNext(next), { replace: true });
    }
  };

  return (
    <div className="panel narrow">
      <PageHeading>Create an account</PageHeading>
      <form onSubmit={submit} noValidate>
        <Input
          label="Name"
          name="name"
          autoComplete="name"
          required
          maxLength={100}
          value={name}
          onChange={(e) => setName(e.target.value)}
          error={form.fieldError('name')}
        />
        <Input
          label="Email"
          type="email"
          name="email"
          autoComplete="email"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          error={form.fieldError('email')}
        />
        <Input
          label="Password"
          type="password"
          name="password"
          autoComplete="new-password"
          required
          minLength={10}
          hint="At least 10 characters."
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={form.fieldError('password')}
        />
        <ErrorMessage error={form.error} />
        <SubmitButton busy={form.busy}>Create account</SubmitButton>
      </form>
      <p>
        Already have an account?{' '}
        <Link href={next ? `/signin?next=${encodeURIComponent(next)}` : '/signin'}>Sign in</Link>
      </p>
    </div>
  );
}
