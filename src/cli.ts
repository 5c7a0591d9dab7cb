import cluster from 'node:cluster';
import { type Config, ConfigError, loadConfig, maskedConfig } from './config.ts';
import {
  BudgetError,
  checkBudget,
  computeBudget,
  computeReplicaBudget,
  fleetFromConfig,
  formatBudget,
  readConnectionUsage,
  readServerLimits,
  withAdminClient,
} from './db/budget.ts';
import { runMigrations } from './db/migrate.ts';
import type { IsolationLayer } from './grading/sandbox.types.ts';

const args = process.argv.slice(2);
const command = args[0] ?? 'help';
const flags = new Set(args.filter((a) => a.startsWith('--')));
// Started by `lab up`, which already checked the budget for the whole local fleet.
const supervised = flags.has('--supervised') || cluster.isWorker;

const USAGE = `usage: lab <command>
  up [--fresh]   everything locally: Postgres (embedded unless DATABASE_URL), migrations, demo course,
                 WORKERS API workers on PORT, GRADERS graders; --fresh wipes the embedded data first
  serve          one stateless API instance against DATABASE_URL (run several behind a load balancer)
  grader         one grader process against DATABASE_URL
  migrate        apply pending migrations to DATABASE_URL
  seed           create the demo course in DATABASE_URL (once)
  doctor         configuration, Postgres limits, connections in use and the connection budget`;

function requireUrl(config: Config): string {
  if (!config.DATABASE_URL) throw new ConfigError(['DATABASE_URL: required by this command (postgres://…)']);
  return config.DATABASE_URL;
}

/**
 * Runs `stop` once on SIGTERM/SIGINT, then exits 0 (1 if stopping failed). A child of `lab up` also
 * stops when its supervisor disappears (IPC channel closed), so a killed supervisor leaves no orphans.
 */
function onSignals(stop: (signal: string) => Promise<unknown>) {
  let once = false;
  const handler = (signal: string) => {
    if (once) return;
    once = true;
    console.error(`${signal}: stopping`);
    stop(signal).then(
      () => process.exit(0),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  if (process.send) process.once('disconnect', () => handler('supervisor gone'));
}

async function main() {
  const config = loadConfig();
  switch (command) {
    case 'up': {
      const { up } = await import('./cluster/supervisor.ts');
      const fleet = await up(config, { fresh: flags.has('--fresh') });
      onSignals((signal) => fleet.shutdown(signal));
      return;
    }
    case 'pg-host': {
      const { runPgHost } = await import('./cluster/pg-host.ts');
      await runPgHost(args[1]!);
      return;
    }
    case 'serve': {
      const { serve } = await import('./server.ts');
      const { stop } = await serve(config, requireUrl(config), { skipBudgetCheck: supervised });
      onSignals(() => stop());
      return;
    }
    case 'grader': {
      const url = requireUrl(config);
      if (!supervised) await checkBudget(url, fleetFromConfig(config));
      const { startGrader } = await import('./grading/grader.ts');
      const { createSandboxes } = await import('./grading/sandboxes.ts');
      const sandboxes = createSandboxes(config);
      const grader = await startGrader(config, url, { sandboxes });
      onSignals(async () => {
        await grader.stop();
        await sandboxes.close();
      });
      return;
    }
    case 'migrate': {
      await runMigrations(requireUrl(config));
      console.log('migrations applied');
      return;
    }
    case 'seed': {
      const url = requireUrl(config);
      const { drizzle } = await import('drizzle-orm/node-postgres');
      const schema = await import('./db/schema/index.ts');
      const { DEMO, seedDemo } = await import('./db/seed.ts');
      const result = await withAdminClient(url, (client) => seedDemo(drizzle(client, { schema })));
      console.log(result.created ? 'demo course created' : 'demo course already there');
      console.log(`  instructor: ${DEMO.instructor.email} / ${DEMO.instructor.password}`);
      console.log(`  student:    ${DEMO.student.email} / ${DEMO.student.password}`);
      return;
    }
    case 'doctor': {
      const report = await doctor(config);
      // The sandbox probe leaves worker threads behind; exit once the report is written.
      process.stdout.write(`${report}\n`, () => process.exit(0));
      return;
    }
    default:
      console.log(USAGE);
      if (command !== 'help') process.exitCode = 2;
  }
}

/** The report of `lab doctor`; exported for its test. */
export async function doctor(config: Config): Promise<string> {
  const out: string[] = ['Configuration (secrets masked)'];
  for (const [k, v] of Object.entries(maskedConfig(config)))
    out.push(`  ${k.padEnd(28)} ${JSON.stringify(v)}`);
  const url = config.DATABASE_URL;
  if (!url) {
    out.push('', 'DATABASE_URL is not set: `lab up` would start an embedded Postgres; nothing to inspect.');
  } else {
    await withAdminClient(url, async (client) => {
      const limits = await readServerLimits(client);
      out.push('', `Postgres ${limits.version}`);
      out.push(`  max_connections                ${limits.maxConnections}`);
      out.push(`  superuser_reserved_connections ${limits.superuserReserved}`);
      if (limits.versionNum >= 160000) out.push(`  reserved_connections           ${limits.reserved}`);
      out.push('', 'Connections now, by application_name');
      for (const u of await readConnectionUsage(client))
        out.push(`  ${u.applicationName.padEnd(40)} ${u.state.padEnd(20)} ${u.count}`);
      out.push('', formatBudget(computeBudget(fleetFromConfig(config), limits), limits));
    });
    const nodes = await nodesReport(config, url);
    if (nodes) out.push('', nodes);
  }
  out.push('', `Sandboxes: ${await sandboxReport(config)}`);
  return out.join('\n');
}

/**
 * With replicas (DATABASE_READ_URL, or standbys seen by the primary): every node's role, replay lag and
 * connections by application_name, and the read pools' budget on each replica.
 */
async function nodesReport(config: Config, url: string): Promise<string | null> {
  const { formatNodes, inspectNode, reachReplicas, readStandbys } = await import('./db/nodes.ts');
  const { primary, standbys } = await withAdminClient(url, async (c) => ({
    primary: await inspectNode(c),
    standbys: await readStandbys(c).catch(() => []),
  }));
  if (!config.DATABASE_READ_URL && standbys.length === 0) return null;
  const out: string[] = [];
  let nodes = [primary];
  if (config.DATABASE_READ_URL) {
    // Round-robin behind the proxy: a few more connections than there are standbys reach each one.
    const reached = await reachReplicas(config.DATABASE_READ_URL, primary.lsn, 2 * standbys.length + 2);
    nodes = [primary, ...reached.nodes.filter((n) => n.server !== primary.server)];
    out.push(formatNodes(nodes, standbys));
    out.push(
      `  DATABASE_READ_URL reached ${reached.nodes.length} replica(s) of ${standbys.length} standby(s)` +
        (reached.errors.length ? `; ${reached.errors.length} attempt(s) failed: ${reached.errors[0]}` : ''),
    );
    for (const n of reached.nodes.filter((n) => n.role === 'replica'))
      out.push(
        '',
        formatBudget(
          computeReplicaBudget(fleetFromConfig(config), n.limits),
          n.limits,
          `Connection budget of replica ${n.server}`,
        ),
      );
  } else {
    out.push(formatNodes(nodes, standbys), '  (DATABASE_READ_URL unset: every read goes to the primary)');
  }
  return out.join('\n');
}

async function sandboxReport(config: Config): Promise<string> {
  const { createSandboxes, sandboxStatus } = await import('./grading/sandboxes.ts');
  const sandboxes = createSandboxes(config);
  try {
    const status = await sandboxStatus(sandboxes);
    const layer = (l: IsolationLayer) =>
      `    ${l.active ? '[x]' : '[ ]'} ${l.name.padEnd(11)} ${(l.essential ? 'essential' : 'recommended').padEnd(12)} ${l.detail}`;
    const lines = [
      `  javascript  ${status.javascript.ok ? 'ok' : 'FAILING'}: ${status.javascript.detail}`,
      `  python      ${status.python.ok ? 'ok' : 'FAILING'}: ${status.python.detail}`,
      '  JavaScript isolation layers:',
      ...status.javascriptIsolation.map(layer),
      '  Python isolation layers:',
      ...status.pythonIsolation.map(layer),
    ];
    return `\n${lines.join('\n')}`;
  } finally {
    await sandboxes.close();
  }
}

main().catch((err) => {
  if (err instanceof ConfigError || err instanceof BudgetError) console.error(err.message);
  else console.error(err);
  process.exit(1);
});
