import { ConfigError, loadConfig } from './config.ts';
import { runMigrations } from './db/migrate.ts';
import { serve } from './server.ts';

const [command = 'help'] = process.argv.slice(2);

async function main() {
  const config = loadConfig();
  switch (command) {
    case 'migrate': {
      if (!config.DATABASE_URL) throw new Error('Set DATABASE_URL');
      await runMigrations(config.DATABASE_URL);
      console.log('migrations applied');
      return;
    }
    case 'serve': {
      if (!config.DATABASE_URL) throw new Error('Set DATABASE_URL');
      const { stop } = await serve(config, config.DATABASE_URL);
      process.once('SIGTERM', () => void stop().then(() => process.exit(0)));
      process.once('SIGINT', () => void stop().then(() => process.exit(0)));
      return;
    }
    default:
      console.log('usage: lab up | serve | grader | migrate | seed | doctor');
  }
}

main().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
