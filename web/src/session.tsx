import { createContext, type ReactNode, useCallback, useContext, useEffect, useState } from 'react';
import { api, onUnauthenticated } from './api/client.ts';
import { submissionEvents } from './api/events.ts';
import type { User } from './api/types.ts';
import { navigate } from './router.tsx';

interface Session {
  user: User | null;
  /** null while GET /me is in flight. */
  ready: boolean;
  signedIn(user: User): void;
  signOut(): Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside SessionProvider');
  return s;
}

/** The signed-in user. The session itself is the HttpOnly cookie; this only mirrors GET /me. */
export function useUser(): User {
  const { user } = useSession();
  if (!user) throw new Error('useUser needs a signed-in user');
  return user;
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(null);
  const [ready, setReady] = useState(false);

  useEffect(() => {
    api<{ user: User }>('GET', '/me', undefined, { quiet401: true }).then(
      (r) => {
        setUser(r.user);
        setReady(true);
      },
      () => setReady(true),
    );
  }, []);

  // Any 401 (session revoked or expired elsewhere) brings the user to sign-in, then back here.
  useEffect(
    () =>
      onUnauthenticated(() => {
        submissionEvents.close();
        setUser(null);
        const here = window.location.pathname + window.location.search;
        if (!here.startsWith('/signin'))
          navigate(`/signin?next=${encodeURIComponent(here)}`, { replace: true });
      }),
    [],
  );

  const signedIn = useCallback((u: User) => setUser(u), []);
  const signOut = useCallback(async () => {
    await api('POST', '/auth/logout');
    submissionEvents.close();
    setUser(null);
    navigate('/signin');
  }, []);

  return (
    <SessionContext.Provider value={{ user, ready, signedIn, signOut }}>{children}</SessionContext.Provider>
  );
}
