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
    return d ? humanMessage(d.message) : undefined;
  }
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * A validation message of the API ("must NOT have fewer than 1 characters", Ajv's wording) as a
 * sentence a person reads next to the field ("is required"). Unknown wordings pass through.
 */
export function humanMessage(message: string): string {
  const rules: [RegExp, (m: RegExpMatchArray) => string][] = [
    [/^must NOT have fewer than 1 characters?$/, () => 'is required'],
    [
      /^must NOT have fewer than (\d+) characters?$/,
      (m) => `needs at least ${plural(Number(m[1]), 'character')}`,
    ],
    [
      /^must NOT have more than (\d+) characters?$/,
      (m) => `is too long (at most ${plural(Number(m[1]), 'character')})`,
    ],
    [
      /^must NOT have fewer than (\d+) items?$/,
      (m) => `needs at least ${plural(Number(m[1]), 'entry', 'entries')}`,
    ],
    [/^must NOT have more than (\d+) items?$/, (m) => `has too many entries (at most ${m[1]})`],
    [/^must be >= (-?[\d.]+)$/, (m) => `must be ${m[1]} or more`],
    [/^must be <= (-?[\d.]+)$/, (m) => `must be ${m[1]} or less`],
    [/^must be > (-?[\d.]+)$/, (m) => `must be more than ${m[1]}`],
    [/^must be < (-?[\d.]+)$/, (m) => `must be less than ${m[1]}`],
    [/^must be integer$/, () => 'must be a whole number'],
    [/^must be number$/, () => 'must be a number'],
    [/^must be string$/, () => 'must be text'],
    [/^must be boolean$/, () => 'must be yes or no'],
    [/^must be array$/, () => 'must be a list'],
    [/^must be object$/, () => 'must be an object'],
    [/^must be null$/, () => 'must be empty'],
    [/^must match format "date-time"$/, () => 'must be a date and time'],
    [/^must match format "email"$/, () => 'must be an email address'],
    [/^must match pattern .*/, () => 'contains characters that are not allowed here'],
    [/^must have required property '(.+)'$/, (m) => `needs ${fieldLabel(m[1]!)}`],
    [/^must NOT have additional properties$/, () => 'has a field that is not allowed'],
    [/^must be equal to one of the allowed values$/, () => 'is not one of the allowed values'],
    [/^must match a schema in anyOf$/, () => 'has a value of the wrong kind'],
  ];
  for (const [re, say] of rules) {
    const m = message.match(re);
    if (m) return say(m);
  }
  return message;
}

const FIELD_LABELS: Record<string, string> = {
  title: 'the title',
  body: 'the body',
  prompt: 'the prompt',
  name: 'the name',
  email: 'the email',
  password: 'the password',
  joinCode: 'the join code',
  maxScore: 'points',
  maxAttempts: 'the attempt limit',
  dueAt: 'the due date',
  publishedAt: 'the publish date',
  entrypoint: 'the entrypoint',
  starterCode: 'the starter code',
  referenceSolution: 'the reference solution',
  latePolicy: 'the late policy',
  'limits.timeMs': 'the time limit',
  'limits.memoryMb': 'the memory limit',
  extraAttempts: 'extra attempts',
  code: 'the code',
  stdin: 'the input',
  tests: 'the tests',
  position: 'the position',
  description: 'the description',
};

/** "tests.2.args" → "test 3 args"; "course.title" → "the title" (of the document). */
export function fieldLabel(field: string): string {
  if (FIELD_LABELS[field]) return FIELD_LABELS[field]!;
  const parts = field.split('.');
  const words: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const next = parts[i + 1];
    if (next !== undefined && /^\d+$/.test(next)) {
      words.push(`${p.replace(/s$/, '')} ${Number(next) + 1}`);
      i++;
    } else words.push(FIELD_LABELS[p]?.replace(/^the /, '') ?? p.replace(/([A-Z])/g, ' $1').toLowerCase());
  }
  return words.join(' ');
}

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** 400 details as sentences: "The title is required. Test 2, expected is not valid JSON." */
export function describeDetails(details: ErrorDetail[]): string {
  return details
    .slice(0, 5)
    .map((d) => `${capital(fieldLabel(d.field))} ${humanMessage(d.message)}.`)
    .join(' ')
    .concat(details.length > 5 ? ` And ${details.length - 5} more.` : '');
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
    if (err.status === 400 && err.details.length > 0) return describeDetails(err.details);
    if (err.status === 429)
      return err.retryAfter
        ? `Too many tries in a short time. Try again in ${plural(err.retryAfter, 'second')}.`
        : 'Too many tries in a short time. Wait a moment and try again.';
    if (err.status === 503) return `${err.message} The server is busy; try again in a moment.`;
    return err.message;
  }
  return err instanceof Error ? err.message : String(err);
}
