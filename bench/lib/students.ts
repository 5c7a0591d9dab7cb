import os from 'node:os';
import { type Auth, closeAgents, openEvents, type Reply, request } from './client.ts';
import type { Ctx } from './context.ts';
import { cliHas, type Proc, sleep } from './env.ts';
import { cpuMs, machineBusyMs, rssMb, selfCpuMs, socketCount } from './procstat.ts';
import { PASSWORD } from './seed.ts';
import { type Latency, Recorder, round } from './stats.ts';

// Virtual students and instructors against a set of Lab instances (client-side round robin, as a
// load balancer would spread them), with graders running: used by the classroom and burst scenarios.

export const CORRECT = 'function add(a, b) {\n  return a + b;\n}\n';
const WRONG = 'function add(a, b) {\n  return a - b;\n}\n';
const FINAL = new Set(['passed', 'failed', 'error']);

export interface ClassConfig {
  students: number;
  /** Students arrive spread over this many seconds. */
  rampS: number;
  /** Multiplies every think time (1 = a few seconds between steps). */
  thinkScale: number;
  /** At most this many students sign in with email + password (argon2), spread over the arrivals; the others use SQL-made tokens. */
  loginMax: number;
  resubmitShare: number;
  instructors: number;
  /** 'classroom': the whole flow with think times; 'burst': connect, then all submit within burstS. */
  mode: 'classroom' | 'burst';
  burstS?: number;
  /** Longest wait for one result over SSE. */
  resultTimeoutMs: number;
  /** Whole run bound. */
  deadlineS: number;
}

export interface ProcSample {
  name: string;
  pid: number;
  rssMbPeak: number;
  socketsPeak: number;
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
  loadAverage: number[];
}

const think = (scale: number, minS: number, maxS: number) =>
  sleep((minS + Math.random() * (maxS - minS)) * 1000 * scale);

export async function runClass(
  ctx: Ctx,
  cfg: ClassConfig,
  urls: string[],
  procs: Proc[],
): Promise<ClassResult> {
  const course = ctx.course;
  if (cfg.students > course.students.length)
    throw new Error(`only ${course.students.length} students are seeded; raise --max-students`);
  const steps = new Map<string, Recorder>();
  const stepErrors = new Map<string, number>();
  const errorSamples: string[] = [];
  const read = new Recorder();
  const s2r = new Recorder();
  const outcome = { passed: 0, failed: 0, error: 0, timedOut: 0 };
  let errors = 0;
  const stepRec = (name: string) => {
    let r = steps.get(name);
    if (!r) {
      r = new Recorder();
      steps.set(name, r);
      stepErrors.set(name, stepErrors.get(name) ?? 0);
    }
    return r;
  };
  const fail = (step: string, msg: string) => {
    errors += 1;
    stepRec(step);
    stepErrors.set(step, (stepErrors.get(step) ?? 0) + 1);
    if (errorSamples.length < 8) errorSamples.push(`${step}: ${msg}`);
  };
  const stopAt = Date.now() + cfg.deadlineS * 1000;
  let stopping = false;

  /** One timed call; null on error (counted). */
  async function call(
    step: string,
    base: string,
    method: string,
    path: string,
    auth: Auth,
    body?: unknown,
    ok = [200],
  ) {
    if (stopping) return null;
    try {
      const r: Reply = await request(base, method, path, auth, body);
      if (!ok.includes(r.status)) {
        fail(step, `${r.status} ${JSON.stringify(r.body).slice(0, 160)}`);
        return null;
      }
      stepRec(step).record(r.ms);
      if (step === 'course' || step === 'lesson' || step === 'exercise') read.record(r.ms);
      return r;
    } catch (err) {
      fail(step, (err as Error).message);
      return null;
    }
  }

  // Sampling: memory and sockets per process, Postgres connections, grading queue depth.
  const samples = new Map<number, ProcSample>(
    procs.map((p) => [p.pid, { name: p.name, pid: p.pid, rssMbPeak: 0, socketsPeak: 0 }]),
  );
  let pgConnectionsPeak = 0;
  let queuePeak = 0;
  let lastQueueNonZero = 0;
  let firstSubmitAt = 0;
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

  const loginCount = Math.min(cfg.students, cfg.loginMax);
  // Password sign-ins are spread evenly over the arrivals, not bunched at the start.
  const loginEvery = loginCount ? Math.max(1, Math.floor(cfg.students / loginCount)) : 0;
  const machine0 = machineBusyMs();
  // CPU of everything this run consists of, so the rest of the machine's CPU is other people's work.
  const oursMs = () =>
    procs.reduce((sum, p) => sum + cpuMs(p.pid, true), 0) + (ctx.env.pgCpuMs() ?? 0) + selfCpuMs();
  const ours0 = oursMs();
  const closers: (() => void)[] = [];
  const bar = ctx.progress.phase(`${cfg.mode} N=${cfg.students}`, cfg.students, 'students');
  let done = 0;
  const started = Date.now();

  async function student(i: number) {
    const who = course.students[i]!;
    const base = urls[i % urls.length]!;
    const exerciseId = course.jsExerciseIds[i % course.jsExerciseIds.length]!;
    const lessonId = course.lessonIds[0]!;
    let auth: Auth = { token: who.token };
    if (loginEvery && i % loginEvery === 0 && i / loginEvery < loginCount) {
      const r = await call(
        'login',
        base,
        'POST',
        '/api/v1/auth/login',
        {},
        { email: who.email, password: PASSWORD },
      );
      const setCookie = r?.headers['set-cookie']?.[0];
      if (!setCookie) return;
      auth = { cookie: setCookie.split(';')[0]! };
    }
    if (cfg.mode === 'classroom') {
      if (!(await call('course', base, 'GET', `/api/v1/courses/${course.courseId}`, auth))) return;
      await think(cfg.thinkScale, 0.5, 2);
      if (!(await call('lesson', base, 'GET', `/api/v1/lessons/${lessonId}`, auth))) return;
      await think(cfg.thinkScale, 1, 4);
      if (!(await call('exercise', base, 'GET', `/api/v1/exercises/${exerciseId}`, auth))) return;
    }
    // Results come over SSE; events may arrive before the POST's own response does.
    const finished = new Map<string, { status: string; at: number }>();
    const waiters = new Map<string, (r: { status: string; at: number }) => void>();
    let events: Awaited<ReturnType<typeof openEvents>>;
    try {
      events = await openEvents(
        base,
        auth,
        (e) => {
          if (e.event !== 'submission.updated') return;
          const sub = (JSON.parse(e.data) as { submission: { id: string; status: string } }).submission;
          if (!FINAL.has(sub.status)) return;
          const r = { status: sub.status, at: performance.now() };
          const w = waiters.get(sub.id);
          if (w) w(r);
          else finished.set(sub.id, r);
        },
        (err) => {
          if (err && !stopping) fail('events', `stream closed: ${err.message}`);
        },
      );
    } catch (err) {
      fail('events', (err as Error).message);
      return;
    }
    closers.push(events.close);
    if (events.status !== 200) {
      fail('events', `${events.status}`);
      return;
    }
    stepRec('events').record(events.ms);

    const submitOnce = async (step: string, code: string) => {
      const t0 = performance.now();
      if (!firstSubmitAt) firstSubmitAt = Date.now();
      const r = await call(
        step,
        base,
        'POST',
        `/api/v1/exercises/${exerciseId}/submissions`,
        auth,
        { code },
        [202],
      );
      if (!r) return;
      const id = (r.body as { submission: { id: string } }).submission.id;
      const result =
        finished.get(id) ??
        (await new Promise<{ status: string; at: number } | null>((resolve) => {
          const timer = setTimeout(() => {
            waiters.delete(id);
            resolve(null);
          }, cfg.resultTimeoutMs);
          waiters.set(id, (x) => {
            clearTimeout(timer);
            waiters.delete(id);
            resolve(x);
          });
        }));
      if (!result) {
        outcome.timedOut += 1;
        fail('result', `no result over SSE within ${cfg.resultTimeoutMs} ms`);
        return;
      }
      outcome[result.status as 'passed' | 'failed' | 'error'] += 1;
      s2r.record(result.at - t0);
      stepRec('result').record(result.at - t0);
    };

    if (cfg.mode === 'classroom') {
      await think(cfg.thinkScale, 2, 6);
      await submitOnce('submit', Math.random() < 0.3 ? WRONG : CORRECT);
      if (Math.random() < cfg.resubmitShare) {
        await think(cfg.thinkScale, 1, 3);
        await submitOnce('resubmit', CORRECT);
      }
    } else {
      // Burst: wait for the common window, then submit at a random moment inside it.
      const windowStart = started + cfg.rampS * 1000;
      await sleep(Math.max(0, windowStart - Date.now()) + Math.random() * (cfg.burstS ?? 10) * 1000);
      await submitOnce('submit', Math.random() < 0.2 ? WRONG : CORRECT);
    }
  }

  async function instructor(k: number) {
    const base = urls[k % urls.length]!;
    const auth = { token: course.instructor.token };
    while (!stopping && done < cfg.students) {
      await call('gradebook', base, 'GET', `/api/v1/courses/${course.courseId}/gradebook`, auth);
      await sleep(3000 + Math.random() * 2000);
    }
  }

  const flows: Promise<void>[] = [];
  const inst = Array.from({ length: cfg.instructors }, (_, k) => instructor(k));
  for (let i = 0; i < cfg.students; i++) {
    const at = started + (i * cfg.rampS * 1000) / cfg.students;
    const wait = at - Date.now();
    if (wait > 0) await sleep(wait);
    if (Date.now() > stopAt) break;
    flows.push(
      student(i)
        .catch((err) => fail('student', (err as Error).message))
        .finally(() => {
          done += 1;
          bar.update(done, `${errors} errors`);
        }),
    );
  }
  await Promise.race([Promise.all(flows), sleep(Math.max(0, stopAt - Date.now()))]);
  const lastResultAt = Date.now();
  const machineCoresBusy = round((machineBusyMs() - machine0) / (lastResultAt - started), 2);
  const othersCoresBusy = round(
    Math.max(0, machineCoresBusy - (oursMs() - ours0) / (lastResultAt - started)),
    2,
  );
  stopping = true;
  const unfinished = cfg.students - done;
  if (unfinished > 0) {
    errors += unfinished;
    if (errorSamples.length < 8) errorSamples.push(`${unfinished} students had not finished at the deadline`);
  }
  clearInterval(sampler);
  for (const close of closers) close();
  await Promise.race([Promise.all(inst), sleep(6000)]);
  closeAgents();
  bar.done();

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
    errorSamples,
    processes: [...samples.values()],
    pgConnectionsPeak,
    queuePeak,
    drainS: firstSubmitAt
      ? round((Math.max(lastQueueNonZero, firstSubmitAt) - firstSubmitAt) / 1000, 1)
      : null,
    wallS: round((lastResultAt - started) / 1000, 1),
    unfinished,
    machineCoresBusy,
    othersCoresBusy,
    loadAverage: os.loadavg().map((x) => round(x, 1)),
  };
  ctx.log(
    `${cfg.mode} N=${cfg.students}: read p99 ${result.read.p99} ms, submit→result p50 ${result.submitToResult.p50} / p99 ${result.submitToResult.p99} ms, errors ${errors}, queue peak ${queuePeak}`,
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
  while (ids.length && Date.now() < until) {
    const { rows } = await ctx.env.admin.query<{ n: number }>(
      `select count(*)::int as n from submissions where id = any($1::uuid[]) and status in ('queued', 'running')`,
      [ids],
    );
    if (rows[0]!.n === 0) break;
    await sleep(100);
  }
  closeAgents();
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
