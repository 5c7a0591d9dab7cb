// `npm run bench [-- <scenario>... --quick --students N --generators G --url http://127.0.0.1:3000 --database-url postgres://…]`
// Starts an embedded Postgres, seeds it with SQL, starts Lab processes as needed, runs the scenarios,
// writes bench/results/<timestamp>.json and bench/REPORT.md with charts in bench/charts/.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { BenchOptions, Ctx } from './lib/context.ts';
import { BenchEnv, ROOT } from './lib/env.ts';
import { Progress } from './lib/progress.ts';
import { seedCourse } from './lib/seed.ts';
import { RESULTS_SCHEMA, writeReport } from './report/report.ts';
import { burstScenario } from './scenarios/burst.ts';
import { classroomScenario } from './scenarios/classroom.ts';
import { gradingScenario } from './scenarios/grading.ts';
import { isolationScenario } from './scenarios/isolation.ts';
import { readScenario } from './scenarios/read.ts';
import { replicasScenario } from './scenarios/replicas.ts';
import { sandboxLayersScenario } from './scenarios/sandbox-layers.ts';
import { scalingScenario } from './scenarios/scaling.ts';

const SCENARIOS: Record<string, (ctx: Ctx) => Promise<unknown>> = {
  read: readScenario,
  isolation: isolationScenario,
  scaling: scalingScenario,
  classroom: classroomScenario,
  burst: burstScenario,
  grading: gradingScenario,
  layers: sandboxLayersScenario,
  // Not in the default run: it needs Debian's patroni, etcd-server, haproxy and postgresql-15.
  replicas: replicasScenario,
};
export const DEFAULT_SCENARIOS = ['read', 'isolation', 'scaling', 'classroom', 'burst', 'grading', 'layers'];
const RESULTS_DIR = path.join(ROOT, 'bench/results');
// The whole run stops here whatever happens (every loop inside is bounded too): the full run must
// finish in 25 minutes on 2 cores (bench/README.md has the estimate per scenario).
// BENCH_HARD_LIMIT_S shortens both (to try the stop); the soft limit is 3 minutes (at most a quarter) before.
const HARD_LIMIT_MS = Number(process.env.BENCH_HARD_LIMIT_S ?? 25 * 60) * 1000;
// No scenario or search step starts after this; what is done is still reported.
const SOFT_LIMIT_MS = HARD_LIMIT_MS - Math.min(3 * 60_000, HARD_LIMIT_MS / 4);
/** Issue 13's classroom target: 5,000 virtual students on this 2-core machine. */
const CLASSROOM_TARGET = 5000;

function parseOptions(argv: string[]): BenchOptions {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      students: { type: 'string' },
      'burst-students': { type: 'string' },
      generators: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      url: { type: 'string' },
      'database-url': { type: 'string' },
      'max-students': { type: 'string' },
      'no-search': { type: 'boolean', default: false },
      'report-only': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      `usage: npm run bench -- [${Object.keys(SCENARIOS).join('|')}]... [--quick] [--students N] [--duration S]\n` +
        '       [--connections C] [--max-students N] [--no-search] [--burst-students N] [--generators G]\n' +
        '       [--url http://127.0.0.1:PORT --database-url postgres://...]\n' +
        '       [--report-only]  (rewrite bench/REPORT.md and the charts from bench/results/*.json)',
    );
    process.exit(0);
  }
  for (const p of positionals)
    if (!SCENARIOS[p])
      throw new Error(`unknown scenario "${p}"; one of: ${Object.keys(SCENARIOS).join(', ')}`);
  if (values.url && !/^https?:\/\/(127\.0\.0\.1|localhost)(:\d+)?\/?$/.test(values.url))
    throw new Error('--url must be a loopback address such as http://127.0.0.1:3000');
  const databaseUrl = values['database-url'] ?? (values.url ? process.env.DATABASE_URL : undefined);
  if (values.url && !databaseUrl)
    throw new Error('--url needs --database-url (or DATABASE_URL) to seed data');
  const quick = values.quick!;
  const students = Number(values.students ?? (quick ? 200 : CLASSROOM_TARGET));
  if (!Number.isInteger(students) || students < 1 || students > 20_000)
    throw new Error('--students: 1..20000');
  const burstStudents = Number(values['burst-students'] ?? (quick ? 200 : 1000));
  if (!Number.isInteger(burstStudents) || burstStudents < 1 || burstStudents > 20_000)
    throw new Error('--burst-students: 1..20000');
  const generators = values.generators === undefined ? undefined : Number(values.generators);
  if (generators !== undefined && (!Number.isInteger(generators) || generators < 1 || generators > 32))
    throw new Error('--generators: 1..32');
  return {
    reportOnly: values['report-only']!,
    scenarios: positionals.length ? positionals : DEFAULT_SCENARIOS,
    quick,
    students,
    burstStudents,
    generators,
    durationS: Number(values.duration ?? (quick ? 3 : 8)),
    connections: Number(values.connections ?? 32),
    url: values.url,
    databaseUrl,
    maxStudents: Number(values['max-students'] ?? (quick ? 400 : 8000)),
    noSearch: values['no-search']! || quick,
  };
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.reportOnly) {
    console.log(`report: ${path.relative(ROOT, await writeReport(RESULTS_DIR))}`);
    return;
  }
  const started = new Date();
  const progress = new Progress(opts.scenarios.length);
  const log = (line: string) => progress.log(line);
  let env: BenchEnv | undefined;
  let settings: Awaited<ReturnType<BenchEnv['settings']>> | undefined;
  let machine: Awaited<ReturnType<BenchEnv['machine']>> | undefined;
  let current: string | null = null;
  const results: Record<string, unknown> = {};
  const failures: Record<string, string> = {};
  const scenarioInfo: Record<string, { seconds: number; loadAverageBefore: number[] }> = {};
  /** Writes the results so far and the report (at the end, or when the hard limit stops the run). */
  const save = async () => {
    const finished = new Date();
    const record = {
      schema: RESULTS_SCHEMA,
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      durationS: Math.round((finished.getTime() - started.getTime()) / 1000),
      command:
        process.argv.length > 2 ? `npm run bench -- ${process.argv.slice(2).join(' ')}` : 'npm run bench',
      options: opts,
      machine,
      settings,
      scenarios: scenarioInfo,
      instanceStartupShedMs: env?.startupShedMs ?? [],
      results,
      failures,
    };
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    const file = path.join(RESULTS_DIR, `${started.toISOString().replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
    log(`results: ${path.relative(ROOT, file)}`);
    const report = await writeReport(RESULTS_DIR);
    log(`report: ${path.relative(ROOT, report)}`);
  };
  const hardStop = setTimeout(() => {
    log('hard time limit reached; stopping (what was measured is saved)');
    if (current)
      failures[current] = `stopped: the run reached its hard limit of ${HARD_LIMIT_MS / 60_000} min`;
    void (machine ? save() : Promise.resolve())
      .catch((err) => log(`saving failed: ${err}`))
      .finally(() => void env?.close().finally(() => process.exit(2)));
  }, HARD_LIMIT_MS);
  hardStop.unref();
  try {
    env = await BenchEnv.start({ databaseUrl: opts.databaseUrl, externalUrl: opts.url, log });
    machine = await env.machine();
    log(
      `machine: ${machine.cores} cores ${machine.cpuModel}, Node ${machine.node}, Postgres ${machine.postgres}`,
    );
    settings = await env.settings();
    log(
      `settings read from the system: DB_POOL_MAX ${settings.lab.DB_POOL_MAX}, GRADER_CONCURRENCY ${settings.lab.GRADER_CONCURRENCY}, JS_WORKERS ${settings.lab.JS_WORKERS}, max_connections ${settings.postgres.max_connections}; CPU accounting: ${settings.cpuAccounting}`,
    );
    const seedStudents = Math.max(opts.students, opts.burstStudents, opts.noSearch ? 0 : opts.maxStudents);
    log(`seeding ${seedStudents} students with SQL`);
    const t0 = Date.now();
    const course = await seedCourse(env.admin, {
      tag: `c${Date.now() % 1e6}`,
      students: seedStudents,
      lessons: 4,
      exercisesPerLesson: 3,
    });
    log(`seeded in ${Date.now() - t0} ms`);
    const ctx: Ctx = { env, progress, opts, course, log, softDeadline: started.getTime() + SOFT_LIMIT_MS };
    for (const name of opts.scenarios) {
      if (Date.now() > ctx.softDeadline) {
        failures[name] = 'skipped: the run reached its time budget';
        log(`${name} skipped (time budget)`);
        continue;
      }
      log(`── ${name}`);
      current = name;
      const s0 = Date.now();
      const loadAverageBefore = os.loadavg().map((x) => Math.round(x * 100) / 100);
      try {
        results[name] = await SCENARIOS[name]!(ctx);
      } catch (err) {
        failures[name] = (err as Error).stack ?? String(err);
        log(`${name} failed: ${(err as Error).message}`);
      } finally {
        await env.stopAll();
        scenarioInfo[name] = { seconds: Math.round((Date.now() - s0) / 1000), loadAverageBefore };
      }
      current = null;
      progress.scenarioDone(name);
    }
    await save();
  } finally {
    progress.stop();
    await env?.close();
    clearTimeout(hardStop);
  }
  if (Object.keys(failures).length) {
    for (const [k, v] of Object.entries(failures)) console.error(`${k}: ${v}`);
    process.exitCode = 1;
  }
}

await main();
