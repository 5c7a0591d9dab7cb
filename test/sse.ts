import http from 'node:http';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** A minimal EventSource for tests: records events, comments and retry hints of one stream. */
export interface TestStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body of a non-200 answer. */
  body: string;
  events: EventSourceMessage[];
  comments: string[];
  retries: number[];
  ended: Promise<void>;
  waitFor(pred: (s: TestStream) => boolean, timeoutMs?: number): Promise<void>;
  /**
   * Resolves once `n` more heartbeat comments have arrived. Writes on one stream arrive in order, so
   * anything the server wrote to it before those heartbeats has arrived too: the barrier for "this
   * stream received nothing" checks.
   */
  heartbeats(n: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

export function openStream(baseUrl: string, headers: Record<string, string> = {}): Promise<TestStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${baseUrl}/api/v1/events`, {
      headers: { accept: 'text/event-stream', ...headers },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let endedResolve: () => void = () => {};
      const stream: TestStream = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: '',
        events: [],
        comments: [],
        retries: [],
        ended: new Promise<void>((r) => {
          endedResolve = r;
        }),
        async waitFor(pred, timeoutMs = 10_000) {
          const deadline = Date.now() + timeoutMs;
          while (!pred(stream)) {
            if (Date.now() > deadline)
              throw new Error(`timed out; events so far: ${JSON.stringify(stream.events)}`);
            await new Promise((r) => setTimeout(r, 10));
          }
        },
        heartbeats(n, timeoutMs) {
          const seen = stream.comments.filter((c) => c.trim() === 'heartbeat').length;
          return stream.waitFor(
            (st) => st.comments.filter((c) => c.trim() === 'heartbeat').length >= seen + n,
            timeoutMs,
          );
        },
        close: () => req.destroy(),
      };
      const parser = createParser({
        onEvent: (e) => stream.events.push(e),
        onComment: (c) => stream.comments.push(c),
        onRetry: (ms) => stream.retries.push(ms),
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (stream.status === 200) parser.feed(chunk);
        else stream.body += chunk;
      });
      res.on('end', endedResolve);
      res.on('close', endedResolve);
      if (stream.status === 200) resolve(stream);
      else res.on('end', () => resolve(stream));
    });
  });
}
