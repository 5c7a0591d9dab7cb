import { startEmbeddedPostgres } from '../db/embedded.ts';

/**
 * `lab pg-host` (internal): runs the embedded Postgres for `lab up` in its own process group, so the
 * terminal's Ctrl-C reaches the API workers and graders (which drain) but not Postgres, which the
 * supervisor stops last, after every client has gone.
 */
export async function runPgHost(dataDir: string): Promise<void> {
  const handle = await startEmbeddedPostgres({ dataDir, persistent: true });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await handle.stop();
    process.exit(0);
  };
  process.on('message', (msg: { type?: string }) => {
    if (msg?.type === 'stop') void stop();
  });
  // The supervisor died without telling us: do not leave an orphan Postgres behind.
  process.on('disconnect', () => void stop());
  // A signal sent to this process alone (kill, systemd) also stops Postgres cleanly first.
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  process.send?.({ type: 'ready', url: handle.url('postgres'), port: handle.port });
}
