import { buildApp } from './app.ts';
import type { Config } from './config.ts';
import { checkBudget, crowdedWarning, fleetFromConfig } from './db/budget.ts';
import { connectDatabase } from './db/client.ts';
import { drain } from './http/lifecycle.ts';

export interface ServeOptions {
  /** `up` checks the budget once for the whole local fleet; its workers skip it. */
  skipBudgetCheck?: boolean;
}

/** API role: one stateless instance listening on PORT. */
export async function serve(config: Config, databaseUrl: string, opts: ServeOptions = {}) {
  // Refuse before opening any pool: a fleet that cannot fit fails at the worst moment otherwise.
  const checked = opts.skipBudgetCheck
    ? null
    : await checkBudget(databaseUrl, fleetFromConfig(config), config.DATABASE_READ_URL);
  const database = connectDatabase(config, databaseUrl, 'api');
  const app = await buildApp(config, database);
  const crowded = checked && crowdedWarning(checked);
  if (crowded) app.log.warn(crowded);
  if (checked?.replica && 'unreachable' in checked.replica)
    app.log.warn(
      `read replica unreachable (${checked.replica.unreachable}); reads use the primary until it is back`,
    );
  await app.listen({ port: config.PORT, host: config.HOST });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await drain(app, {
        graceMs: config.SHUTDOWN_GRACE_MS,
        closeTimeoutMs: config.REQUEST_TIMEOUT_MS + 1000,
        log: (msg) => app.log.info(msg),
      });
      await database.close();
    })();
    return stopping;
  };
  return { app, database, stop };
}
