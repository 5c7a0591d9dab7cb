import os from 'node:os';
import type { WorkerProgress, WorkerReport, WorkerStart } from './class-worker.ts';
import { type ClassConfig, CORRECT } from './class-worker.ts';
import { closeAgents, request } from './client.ts';
import type { Ctx } from './context.ts';
import { cliHas, type Proc, sleep } from './env.ts';
import { machineBusyMs, rssMb, socketCount } from './procstat.ts';
import { PASSWORD } from './seed.ts';
import { type Latency, Recorder, round } from './stats.ts';

// Virtual students and instructors against a set of Lab instances (client-side round robin, as a
// load balancer would spread them), with graders running: used by the classroom and burst scenarios.
// The students are driven by several generator processes (class-worker.ts), each measured on its own,
// so a step where the generator rather than Lab was the limit can be told apart.

export { type ClassConfig, CORRECT };

/** A generator process using this much of a core, or lagging this much, makes its step inconclusive. */
export const GENERATOR_CPU_LIMIT = 0.85;
export const GENERATOR_LOOP_DELAY_LIMIT_MS = 50;

export interface ProcSample {
  name: string;
  pid: number;
  rssMbPeak: number;
  socketsPeak: number;
}

export interface GeneratorStats {
  /** Processes that drove the students. */
  processes: number;
  /** Per process: students, cores used (CPU ÷ wall), event-loop delay p99 and max. */
  perProcess: { students: number; cores: number; loopDelayP99: number; loopDelayMax: number }[];
  /** All generator processes together (their cgroups, or their own cpuUsage without). */
  cores: number;
  /** Why this step's figures may be the generator's limit rather than Lab's; null when none. */
  bottleneck: string | null;
}

export interface ClassResult {
  students: number;
  instances: number;
  graders: number;
  loggedInWithPassword: number;
  usedSqlTokens: number;
  steps: Record<string, Latency & { errors: number }>;
  read: Latency;
  submitToResult: Latency;
  results: { passed: number; failed: number; error: number; timedOut: number };
  errors: number;
  /** Errors that were Lab's answers with a wrong status (not time-outs or connection errors). */
  httpErrors: number;
  errorSamples: string[];
  processes: ProcSample[];
  pgConnectionsPeak: number;
  queuePeak: number;
  drainS: number | null;
  wallS: number;
  unfinished: number;
  /** Average busy cores of the whole machine during the run (ours and anyone else's). */
  machineCoresBusy: number;
  /** Of those, cores busy with processes that are not part of this run (neighbours on a shared host). */
  othersCoresBusy: number;
  /** Cores busy per Lab process of the run (API instances, graders with their sandboxes) and Postgres. */
  coresBy: Record<string, number>;
  generator: GeneratorStats;
  loadAverage: number[];
}

/** How many generator processes drive N students unless --generators says. */
export function defaultGenerators(students: number): number {
  return Math.min(8, Math.max(2, Math.ceil(students / 1500)));
}

export async function runClass(
  ctx: Ctx,
  cfg: ClassConfig,
  urls: string[],
  procs: Proc[],
): Promise<ClassResult> {
  const course = ctx.course;
  if (cfg.students > course.students.length)
    throw new Error(`only ${course.students.length} students are seeded; raise --max-students`);
  const workers = ctx.opts.generators ?? defaultGenerators(cfg.students);

  // Sampling: memory and sockets per process, Postgres connections, grading queue depth.
  const samples = new Map<number, ProcSample>(
    procs.map((p) => [p.pid, { name: p.name, pid: p.pid, rssMbPeak: 0, socketsPeak: 0 }]),
  );
  let pgConnectionsPeak = 0;
  let queuePeak = 0;
  let lastQueueNonZero = 0;
  const sampler = setInterval(async () => {
    for (const p of procs) {
      const s = samples.get(p.pid)!;
      s.rssMbPeak = Math.max(s.rssMbPeak, rssMb(p.pid));
      s.socketsPeak = Math.max(s.socketsPeak, socketCount(p.pid));
    }
    try {
      const { rows } = await ctx.env.admin.query<{ conns: number; queue: number }>(
        `select (select count(*)::int from pg_stat_activity where datname = current_database()) as conns,
                (select count(*)::int from submissions where course_id = $1 and status in ('queued', 'running')) as queue`,
        [course.courseId],
      );
      pgConnectionsPeak = Math.max(pgConnectionsPeak, rows[0]!.conns);
      queuePeak = Math.max(queuePeak, rows[0]!.queue);
      if (rows[0]!.queue > 0) lastQueueNonZero = Date.now();
    } catch {
      // the sampler must never fail the run
    }
  }, 250);

  // The generator processes, each in its own CPU account.
  const gens: Proc[] = [];
  const reports: WorkerReport[] = [];
  const progress = new Map<number, WorkerProgress>();
  try {
    for (let w = 0; w < workers; w++)
      gens.push(
        await ctx.env.spawnNode(
          `loadgen-${w + 1}`,
          ['--import', 'tsx', 'bench/lib/class-worker.ts'],
          {},
          undefined,
          {
            ipc: true,
          },
        ),
      );
    await Promise.all(
      gens.map(
        (g) =>
          new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`${g.name} not ready within 20 s:\n${g.stderrTail()}`)),
              20_000,
            );
            g.child.once('message', () => {
              clearTimeout(timer);
              resolve();
            });
            g.child.once('exit', (code) =>
              reject(new Error(`${g.name} exited with ${code}:\n${g.stderrTail()}`)),
            );
          }),
      ),
    );
  } catch (err) {
    clearInterval(sampler);
    await Promise.all(gens.map((g) => g.stop()));
    throw err;
  }

  const loginCount = Math.min(cfg.students, cfg.loginMax);
  const machine0 = machineBusyMs();
  const cpuOf = (list: Proc[]) => list.reduce((sum, p) => sum + p.cpuMs(), 0);
  const lab0 = new Map(procs.map((p) => [p.name, p.cpuMs()]));
  const pg0 = ctx.env.pgCpuMs() ?? 0;
  const bench0 = ctx.env.benchCpuMs();
  const gen0 = cpuOf(gens);
  const bar = ctx.progress.phase(
    `${cfg.mode} N=${cfg.students} (${workers} generator processes)`,
    cfg.students,
    'students',
  );
  const started = Date.now() + 300;
  const start: Omit<WorkerStart, 'worker'> = {
    kind: 'start',
    workers,
    cfg,
    urls,
    startAt: started,
    course: {
      courseId: course.courseId,
      lessonId: course.lessonIds[0]!,
      jsExerciseIds: course.jsExerciseIds,
      instructorToken: course.instructor.token,
      password: PASSWORD,
      students: course.students.slice(0, cfg.students).map((x) => ({ email: x.email, token: x.token })),
    },
  };
  const finished = gens.map(
    (g, w) =>
      new Promise<void>((resolve) => {
        g.child.on('message', (m: WorkerProgress | WorkerReport) => {
          if (m.kind === 'progress') {
            progress.set(w, m);
            const done = [...progress.values()].reduce((s, p) => s + p.done, 0);
            const errs = [...progress.values()].reduce((s, p) => s + p.errors, 0);
            bar.update(done, `${errs} errors`);
          } else if (m.kind === 'report') {
            reports[w] = m;
            resolve();
          }
        });
        g.child.once('exit', () => resolve());
        g.child.send({ ...start, worker: w } satisfies WorkerStart);
      }),
  );
  // Each worker stops itself at the deadline; the extra minute covers its wind-down and report.
  await Promise.race([Promise.all(finished), sleep(cfg.deadlineS * 1000 + 60_000)]);
  const lastResultAt = Date.now();
  const wallMs = lastResultAt - started;
  const machineCoresBusy = round((machineBusyMs() - machine0) / wallMs, 2);
  const genMs = cpuOf(gens) - gen0;
  const coresBy: Record<string, number> = {};
  let labMs = 0;
  for (const p of procs) {
    const used = p.cpuMs() - (lab0.get(p.name) ?? 0);
    labMs += used;
    coresBy[p.name] = round(used / wallMs, 2);
  }
  const pgMs = (ctx.env.pgCpuMs() ?? 0) - pg0;
  coresBy.postgres = round(pgMs / wallMs, 2);
  const benchMs = ctx.env.benchCpuMs() - bench0;
  coresBy['bench (sampler)'] = round(benchMs / wallMs, 2);
  coresBy.generators = round(genMs / wallMs, 2);
  const othersCoresBusy = round(Math.max(0, machineCoresBusy - (labMs + pgMs + benchMs + genMs) / wallMs), 2);
  clearInterval(sampler);
  await Promise.all(gens.map((g) => g.stop()));
  bar.done();

  // Merge the workers' samples.
  const steps = new Map<string, Recorder>();
  const stepErrors = new Map<string, number>();
  const read = new Recorder();
  const s2r = new Recorder();
  const outcome = { passed: 0, failed: 0, error: 0, timedOut: 0 };
  const errorSamples: string[] = [];
  let errors = 0;
  let httpErrors = 0;
  let done = 0;
  let firstSubmitAt = 0;
  const missingReports = gens.length - reports.filter(Boolean).length;
  for (const r of reports.filter(Boolean)) {
    for (const [name, xs] of Object.entries(r.steps)) {
      const rec = steps.get(name) ?? new Recorder();
      steps.set(name, rec);
      for (const x of xs) rec.record(x);
      if (name === 'course' || name === 'lesson' || name === 'exercise') for (const x of xs) read.record(x);
    }
    for (const [name, n] of Object.entries(r.stepErrors))
      stepErrors.set(name, (stepErrors.get(name) ?? 0) + n);
    for (const x of r.submitToResult) s2r.record(x);
    for (const k of Object.keys(outcome) as (keyof typeof outcome)[]) outcome[k] += r.outcome[k];
    errors += r.errors;
    httpErrors += r.httpErrors;
    done += r.done;
    for (const e of r.errorSamples) if (errorSamples.length < 8) errorSamples.push(e);
    if (r.firstSubmitAt && (!firstSubmitAt || r.firstSubmitAt < firstSubmitAt))
      firstSubmitAt = r.firstSubmitAt;
  }
  // A generator that never reported: all its students count as failed.
  const lost = cfg.students - reports.filter(Boolean).reduce((s, r) => s + r.students, 0);
  if (missingReports > 0) {
    errors += lost;
    errorSamples.unshift(
      `${missingReports} generator process(es) did not report: ${lost} students counted as failed`,
    );
  }
  const perProcess = reports.filter(Boolean).map((r) => ({
    students: r.students,
    cores: round(r.cpuMs / Math.max(1, r.wallMs), 2),
    loopDelayP99: r.loopDelay.p99,
    loopDelayMax: r.loopDelay.max,
  }));
  const reasons: string[] = [];
  const busiest = Math.max(0, ...perProcess.map((p) => p.cores));
  const laggiest = Math.max(0, ...perProcess.map((p) => p.loopDelayP99));
  if (busiest >= GENERATOR_CPU_LIMIT)
    reasons.push(`a generator process used ${busiest} of a core (limit ${GENERATOR_CPU_LIMIT})`);
  if (laggiest >= GENERATOR_LOOP_DELAY_LIMIT_MS)
    reasons.push(
      `a generator process's event-loop delay p99 was ${laggiest} ms (limit ${GENERATOR_LOOP_DELAY_LIMIT_MS} ms)`,
    );
  if (missingReports > 0) reasons.push(`${missingReports} generator process(es) did not report`);
  const generator: GeneratorStats = {
    processes: workers,
    perProcess,
    cores: coresBy.generators!,
    bottleneck: reasons.length ? reasons.join('; ') : null,
  };

  const stepOut: ClassResult['steps'] = {};
  for (const [name, rec] of steps) stepOut[name] = { ...rec.summary(), errors: stepErrors.get(name) ?? 0 };
  const result: ClassResult = {
    students: cfg.students,
    instances: urls.length,
    graders: procs.filter((p) => p.name.includes('grader')).length,
    loggedInWithPassword: loginCount,
    usedSqlTokens: cfg.students - loginCount,
    steps: stepOut,
    read: read.summary(),
    submitToResult: s2r.summary(),
    results: outcome,
    errors,
    httpErrors,
    errorSamples,
    processes: [...samples.values()],
    pgConnectionsPeak,
    queuePeak,
    drainS: firstSubmitAt
      ? round((Math.max(lastQueueNonZero, firstSubmitAt) - firstSubmitAt) / 1000, 1)
      : null,
    wallS: round(wallMs / 1000, 1),
    unfinished: cfg.students - done,
    machineCoresBusy,
    othersCoresBusy,
    coresBy,
    generator,
    loadAverage: os.loadavg().map((x) => round(x, 1)),
  };
  ctx.log(
    `${cfg.mode} N=${cfg.students}: read p99 ${result.read.p99} ms, submit→result p50 ${result.submitToResult.p50} / p99 ${result.submitToResult.p99} ms, errors ${errors}, queue peak ${queuePeak}; ` +
      `cores: ${Object.entries(coresBy)
        .map(([k, v]) => `${k} ${v}`)
        .join(
          ', ',
        )}, machine ${machineCoresBusy}, others ${othersCoresBusy}; generator ${generator.bottleneck ?? 'not the bottleneck'}`,
  );
  return result;
}

/**
 * Fresh processes are cold (JIT, lazily started sandboxes): a few reads per instance and a few graded
 * submissions (as the instructor, who is not a measured student) before anything is measured.
 */
async function warmUp(ctx: Ctx, urls: string[]) {
  const c = ctx.course;
  const auth = { token: c.instructor.token };
  for (const base of urls)
    for (let i = 0; i < 20; i++)
      await Promise.all([
        request(base, 'GET', `/api/v1/courses/${c.courseId}`, auth).catch(() => null),
        request(base, 'GET', `/api/v1/lessons/${c.lessonIds[0]}`, auth).catch(() => null),
        request(base, 'GET', `/api/v1/exercises/${c.jsExerciseIds[0]}`, auth).catch(() => null),
      ]);
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await request(
      urls[i % urls.length]!,
      'POST',
      `/api/v1/exercises/${c.jsExerciseIds[0]}/submissions`,
      auth,
      {
        code: CORRECT,
      },
    ).catch(() => null);
    if (r?.status === 202) ids.push((r.body as { submission: { id: string } }).submission.id);
  }
  const until = Date.now() + 20_000;
  let left = ids.length;
  while (left > 0 && Date.now() < until) {
    const { rows } = await ctx.env.admin.query<{ n: number }>(
      `select count(*)::int as n from submissions where id = any($1::uuid[]) and status in ('queued', 'running')`,
      [ids],
    );
    left = rows[0]!.n;
    if (left > 0) await sleep(100);
  }
  closeAgents();
  // Measuring a fleet that cannot grade would report its time-outs as Lab's latency.
  if (ids.length < 4 || left > 0)
    throw new Error(`warm-up: ${ids.length} of 4 submissions accepted, ${left} not graded within 20 s`);
}

/** Lab instances plus graders for a classroom-like run. */
export async function withFleet<T>(
  ctx: Ctx,
  instances: number,
  graders: number,
  fn: (urls: string[], procs: Proc[]) => Promise<T>,
): Promise<T> {
  if (ctx.opts.url) return fn([ctx.opts.url.replace(/\/$/, '')], []);
  if (!cliHas('grader')) throw new Error('`lab grader` does not exist yet (src/cli.ts)');
  const procs: Proc[] = [];
  try {
    for (let i = 0; i < instances; i++)
      procs.push(
        await ctx.env.startLab(i + 1, instances, { SHUTDOWN_GRACE_MS: '0', GRADERS: String(graders) }),
      );
    for (let g = 0; g < graders; g++) procs.push(await ctx.env.startGrader(g + 1));
    await warmUp(
      ctx,
      procs.filter((p) => p.url).map((p) => p.url!),
    );
    return await fn(
      procs.filter((p) => p.url).map((p) => p.url!),
      procs,
    );
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}
