import pRetry from 'p-retry';
import pg from 'pg';
import { sslFor } from './pool.ts';

export interface ListenerOptions {
  url: string;
  /** What to do with a notification, by channel. */
  channels: Record<string, (payload: string) => void>;
  applicationName: string;
  /** Called after every (re)connection with the backend pid; notifications sent while down were lost. */
  onConnect?(backendPid: number): void;
  onError?(err: unknown): void;
  maxBackoffMs?: number;
}

/**
 * What a cache of callers needs from the instance's LISTEN connection (this file): its
 * channels, and to be told when that connection comes and goes. `notify` runs `pg_notify` on that very
 * connection.
 */
export interface ListenerTap {
  channels: Record<string, (payload: string) => void>;
  /** The LISTEN connection is (re)connected; notifications sent while it was down were lost. */
  connected(notify: (channel: string, payload: string) => Promise<void>): void;
  disconnected(): void;
  stop(): void;
}

export interface Listener {
  /** The backend pid of the current connection, null while disconnected. */
  backendPid(): number | null;
  /** `pg_notify` on this very connection (the caller cache's pings); rejects while disconnected. */
  notify(channel: string, payload: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * One dedicated LISTEN connection, outside every pool (a pooled client would be handed to queries
 * and LISTEN is per session). It reconnects with capped exponential backoff (p-retry: 100 ms doubling
 * to `maxBackoffMs`) after Postgres restarts or the connection drops, and never throws into the caller.
 */
export function startListener(opts: ListenerOptions): Listener {
  let client: pg.Client | null = null;
  let pid: number | null = null;
  const stopping = new AbortController();
  // Capped at 1 s: after a failover the LISTEN connection (and with it SSE relays and the grader's
  // wake-ups) comes back within a second of the new primary.
  const maxBackoff = opts.maxBackoffMs ?? 1000;

  /** Connects and listens; resolves with a promise of the connection's end, rejects if it fails first. */
  async function connect(): Promise<{ ended: Promise<void> }> {
    const c = new pg.Client({
      connectionString: opts.url,
      application_name: opts.applicationName,
      // A LISTEN connection is silent by nature: TCP keepalive is what notices a vanished server.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      connectionTimeoutMillis: 5000,
      ...sslFor(opts.url),
    });
    client = c;
    let lost: () => void = () => {};
    const ended = new Promise<void>((r) => {
      lost = r;
    });
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      if (client === c) {
        client = null;
        pid = null;
      }
      if (!stopping.signal.aborted) opts.onError?.(err);
      c.end().catch(() => {});
      lost();
    };
    c.on('error', fail);
    c.on('end', () => fail(new Error('listen connection ended')));
    c.on('notification', (msg) => {
      if (Object.hasOwn(opts.channels, msg.channel)) opts.channels[msg.channel]!(msg.payload ?? '');
    });
    try {
      await c.connect();
      for (const channel of Object.keys(opts.channels))
        await c.query(`listen ${pg.escapeIdentifier(channel)}`);
      const r = await c.query<{ pid: number }>('select pg_backend_pid() as pid');
      if (stopping.signal.aborted) {
        await c.end().catch(() => {});
        return { ended };
      }
      pid = r.rows[0]!.pid;
      opts.onConnect?.(pid);
      // Wrapped: an async function returning a promise would wait for it.
      return { ended };
    } catch (err) {
      fail(err);
      // Always an Error of its own: p-retry gives up at once on a TypeError, and this must keep trying.
      throw new Error(`listen connection failed: ${(err as Error)?.message ?? err}`, { cause: err });
    }
  }

  async function run() {
    while (!stopping.signal.aborted) {
      const connection = await pRetry(connect, {
        forever: true,
        factor: 2,
        minTimeout: 100,
        maxTimeout: maxBackoff,
        signal: stopping.signal,
      }).catch(() => null);
      if (!connection) return;
      await connection.ended;
    }
  }

  void run();

  return {
    backendPid: () => pid,
    async notify(channel, payload) {
      if (!client || pid === null) throw new Error('listen connection is down');
      await client.query('select pg_notify($1, $2)', [channel, payload]);
    },
    async stop() {
      stopping.abort();
      const c = client;
      client = null;
      pid = null;
      if (c) await c.end().catch(() => {});
    },
  };
}
