import { buildApp } from './app.ts';
import type { Config } from './config.ts';
import { connectDatabase } from './db/client.ts';

/** API role: one stateless instance listening on PORT. */
export async function serve(config: Config, databaseUrl: string) {
  const database = connectDatabase(config, databaseUrl, 'api');
  const app = await buildApp(config, database);
  await app.listen({ port: config.PORT, host: config.HOST });
  const stop = async () => {
    app.deps.lifecycle.draining = true;
    await app.close();
    await database.close();
  };
  return { app, stop };
}
