import type { ErrorDetail } from './types.ts';

/** An error answer of the API (API.md's error shape), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }

  /** The message for one field of a 400 validation_failed ("tests.0.args"), or for any field under it. */
  fieldError(field: string): string | undefined {
    const d = this.details.find((x) => x.field === field || x.field.startsWith(`${field}.`));
    return d?.message;
  }
}

type Listener = () => void;
const unauthenticatedListeners = new Set<Listener>();

/** Called when any request answers 401, so the app can send the user to sign-in. */
export function onUnauthenticated(fn: Listener): () => void {
  unauthenticatedListeners.add(fn);
  return () => unauthenticatedListeners.delete(fn);
}

export interface RequestOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Don't treat a 401 as "session over" (sign-in form answers 401 for a wrong password). */
  quiet401?: boolean;
}

export async function api<T>(method: string, path: string, body?: unknown, opts: RequestOptions = {}) {
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: opts.signal,
    });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'network', 'Could not reach the server. Check your connection and try again.');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // A proxy's HTML error page, say; reported below with the status.
  }
  if (!res.ok) {
    const e = (json as { error?: { code?: string; message?: string; details?: ErrorDetail[] } } | null)
      ?.error;
    const retry = Number(res.headers.get('retry-after'));
    const err = new ApiError(
      res.status,
      e?.code ?? `http_${res.status}`,
      e?.message ?? `The server answered ${res.status}.`,
      e?.details ?? [],
      Number.isFinite(retry) && retry > 0 ? retry : null,
    );
    if (res.status === 401 && !opts.quiet401) for (const fn of unauthenticatedListeners) fn();
    throw err;
  }
  return json as T;
}

/** A human sentence for any error thrown by `api`. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 429 && err.retryAfter) return `${err.message} Try again in ${err.retryAfter} s.`;
    if (err.status === 503) return `${err.message} The server is busy; try again in a moment.`;
    return err.message;
  }
  return err instanceof Error ? err.message : String(err);
}
