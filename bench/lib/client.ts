import http from 'node:http';
import { createParser } from 'eventsource-parser';

// A small HTTP client for virtual users: keep-alive connections per target, JSON in and out, and an SSE
// reader for GET /events. node:http rather than fetch, so a few thousand open streams stay cheap.
// No cap on sockets: every student has a browser with its own connections, so a request never waits in
// the generator for another student's (a cap of 64 per process did that: its queueing was measured as
// Lab's latency, and it held back load that Lab then never had to refuse).

const agents = new Map<string, http.Agent>();
function agentFor(base: string) {
  let a = agents.get(base);
  if (!a) {
    a = new http.Agent({ keepAlive: true });
    agents.set(base, a);
  }
  return a;
}

export function closeAgents() {
  for (const a of agents.values()) a.destroy();
  agents.clear();
}

export interface Auth {
  token?: string;
  cookie?: string;
}

export interface Reply {
  status: number;
  body: unknown;
  headers: http.IncomingHttpHeaders;
  ms: number;
}

function authHeaders(base: string, auth: Auth): Record<string, string> {
  if (auth.token) return { authorization: `Bearer ${auth.token}` };
  // Cookie sessions need a same-origin Origin on writes (CSRF rule in API.md).
  if (auth.cookie) return { cookie: auth.cookie, origin: base };
  return {};
}

export function request(
  base: string,
  method: string,
  path: string,
  auth: Auth,
  body?: unknown,
  extra: Record<string, string> = {},
  timeoutMs = 15_000,
  /** false: a successful body is read and dropped (body: null), e.g. a big gradebook: keeping and parsing
   * 14 MB would stall this generator process and delay the students it drives. */
  parse = true,
): Promise<Reply> {
  const started = performance.now();
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      base + path,
      {
        method,
        agent: agentFor(base),
        headers: {
          ...authHeaders(base, auth),
          ...(payload
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
            : {}),
          ...extra,
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        const keep = parse || (res.statusCode ?? 0) >= 300;
        res.on('data', (c: Buffer) => {
          if (keep) chunks.push(c);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          if (!keep) parsed = null;
          else if ((res.headers['content-type'] ?? '').includes('json')) {
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = text;
            }
          }
          resolve({
            status: res.statusCode ?? 0,
            body: parsed,
            headers: res.headers,
            ms: performance.now() - started,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/** An open GET /events stream; resolves once the response headers arrive (connect time = ms). */
export function openEvents(
  base: string,
  auth: Auth,
  onEvent: (e: SseEvent) => void,
  onClose: (err?: Error) => void,
): Promise<{ status: number; ms: number; close: () => void }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    // A dedicated socket per stream, as a browser's EventSource holds one.
    const req = http.request(`${base}/api/v1/events`, {
      method: 'GET',
      agent: false,
      headers: { accept: 'text/event-stream', ...authHeaders(base, auth) },
    });
    let closedByUs = false;
    req.on('response', (res) => {
      const ms = performance.now() - started;
      if (res.statusCode !== 200) {
        res.resume();
        resolve({ status: res.statusCode ?? 0, ms, close: () => {} });
        return;
      }
      const parser = createParser({
        onEvent: (e) => onEvent({ id: e.id, event: e.event, data: e.data }),
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => parser.feed(chunk));
      res.on('end', () => onClose(closedByUs ? undefined : new Error('stream ended by server')));
      res.on('error', (err) => onClose(closedByUs ? undefined : err));
      resolve({
        status: 200,
        ms,
        close: () => {
          closedByUs = true;
          req.destroy();
        },
      });
    });
    req.on('error', (err) => {
      if (!closedByUs) reject(err);
    });
    req.end();
  });
}
