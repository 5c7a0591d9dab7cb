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

export interface Listener {
  /** The backend pid of the current connection, null while disconnected. */
  backendPid(): number | null;
  stop(): Promise<void>;
}

/**
 * One dedicated LISTEN connection, outside every pool (a pooled client would be handed to queries
 * and LISTEN is per session). It reconnects with capped exponential backoff after Postgres restarts
 * or the connection drops, and never throws into the caller.
 */
export function startListener(opts: ListenerOptions): Listener {
  let client: pg.Client | null = null;
  let pid: number | null = null;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let backoff = 100;
  // Capped at 1 s: after a failover the LISTEN connection (and with it SSE relays and the grader's
  // wake-ups) comes back within a second of the new primary.
  const maxBackoff = opts.maxBackoffMs ?? 1000;

  const scheduleReconnect = () => {
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = null;
      void connect();
    }, backoff);
    backoff = Math.min(backoff * 2, maxBackoff);
  };

  async function connect() {
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
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      if (client === c) {
        client = null;
        pid = null;
      }
      if (!stopped) opts.onError?.(err);
      c.end().catch(() => {});
      scheduleReconnect();
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
      if (stopped) return void c.end().catch(() => {});
      const rows = r.rows;
      pid = rows[0]!.pid;
      backoff = 100;
      opts.onConnect?.(pid);
    } catch (err) {
      fail(err);
    }
  }

  void connect();

  return {
    backendPid: () => pid,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      const c = client;
      client = null;
      pid = null;
      if (c) await c.end().catch(() => {});
    },
  };
}
