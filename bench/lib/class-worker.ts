import { monitorEventLoopDelay } from 'node:perf_hooks';
import { type Auth, closeAgents, openEvents, type Reply, request } from './client.ts';

/*
 * One process of the classroom load generator (started by students.ts, several per run): drives the
 * virtual students whose index i has i % workers === worker, on the run's common arrival schedule, and
 * reports every latency sample, its errors, its own CPU and its event-loop delay to the parent over IPC.
 */

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

export interface WorkerCourse {
  courseId: string;
  lessonId: string;
  jsExerciseIds: string[];
  instructorToken: string;
  password: string;
  /** Every student of the run by index (the worker takes its share). */
  students: { email: string; token: string }[];
}

export interface WorkerStart {
  kind: 'start';
  worker: number;
  workers: number;
  cfg: ClassConfig;
  course: WorkerCourse;
  urls: string[];
  /** Epoch ms of the first arrival (the same for every worker). */
  startAt: number;
}

export interface WorkerReport {
  kind: 'report';
  worker: number;
  students: number;
  done: number;
  errors: number;
  /** Of the errors, answers from Lab with a wrong status (503 and the like): Lab's, whatever the generator did. */
  httpErrors: number;
  errorSamples: string[];
  /** Latency samples (ms) by step; reads are the course, lesson and exercise steps. */
  steps: Record<string, number[]>;
  stepErrors: Record<string, number>;
  submitToResult: number[];
  outcome: { passed: number; failed: number; error: number; timedOut: number };
  firstSubmitAt: number;
  /** This process's CPU (user + system) and wall time over the run, ms. */
  cpuMs: number;
  wallMs: number;
  /** Event-loop delay of this process over the run, ms. */
  loopDelay: { p50: number; p99: number; max: number };
}

export type WorkerProgress = { kind: 'progress'; worker: number; done: number; errors: number };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const think = (scale: number, minS: number, maxS: number) =>
  sleep((minS + Math.random() * (maxS - minS)) * 1000 * scale);

export async function drive(
  msg: WorkerStart,
  onProgress: (p: WorkerProgress) => void,
): Promise<WorkerReport> {
  const { cfg, course, urls, worker, workers } = msg;
  const steps = new Map<string, number[]>();
  const stepErrors: Record<string, number> = {};
  const errorSamples: string[] = [];
  const s2r: number[] = [];
  const outcome = { passed: 0, failed: 0, error: 0, timedOut: 0 };
  let errors = 0;
  let httpErrors = 0;
  let done = 0;
  let firstSubmitAt = 0;
  const rec = (name: string) => {
    let r = steps.get(name);
    if (!r) {
      r = [];
      steps.set(name, r);
      stepErrors[name] ??= 0;
    }
    return r;
  };
  const fail = (step: string, message: string) => {
    errors += 1;
    rec(step);
    stepErrors[step] = (stepErrors[step] ?? 0) + 1;
    if (errorSamples.length < 8) errorSamples.push(`${step}: ${message}`);
  };
  const stopAt = msg.startAt + cfg.deadlineS * 1000;
  let stopping = false;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();

  async function call(
    step: string,
    base: string,
    method: string,
    path: string,
    auth: Auth,
    body?: unknown,
    ok = [200],
    parse = true,
  ) {
    if (stopping) return null;
    try {
      const r: Reply = await request(base, method, path, auth, body, {}, undefined, parse);
      if (!ok.includes(r.status)) {
        httpErrors += 1;
        fail(step, `${r.status} ${JSON.stringify(r.body).slice(0, 160)}`);
        return null;
      }
      rec(step).push(r.ms);
      return r;
    } catch (err) {
      fail(step, (err as Error).message);
      return null;
    }
  }

  const loginCount = Math.min(cfg.students, cfg.loginMax);
  const loginEvery = loginCount ? Math.max(1, Math.floor(cfg.students / loginCount)) : 0;
  const closers: (() => void)[] = [];

  async function student(i: number) {
    const who = course.students[i]!;
    // Round-robin as a load balancer would, shifted every loginEvery students: with i % urls.length alone,
    // every student who signs in with a password (i % loginEvery === 0, an even i) went to one instance.
    const base = urls[(i + (loginEvery ? Math.floor(i / loginEvery) : 0)) % urls.length]!;
    const exerciseId = course.jsExerciseIds[i % course.jsExerciseIds.length]!;
    let auth: Auth = { token: who.token };
    if (loginEvery && i % loginEvery === 0 && i / loginEvery < loginCount) {
      const r = await call(
        'login',
        base,
        'POST',
        '/api/v1/auth/login',
        {},
        { email: who.email, password: course.password },
      );
      const setCookie = r?.headers['set-cookie']?.[0];
      if (!setCookie) return;
      auth = { cookie: setCookie.split(';')[0]! };
    }
    if (cfg.mode === 'classroom') {
      if (!(await call('course', base, 'GET', `/api/v1/courses/${course.courseId}`, auth))) return;
      await think(cfg.thinkScale, 0.5, 2);
      if (!(await call('lesson', base, 'GET', `/api/v1/lessons/${course.lessonId}`, auth))) return;
      await think(cfg.thinkScale, 1, 4);
      if (!(await call('exercise', base, 'GET', `/api/v1/exercises/${exerciseId}`, auth))) return;
    }
    // Results come over SSE; events may arrive before the POST's own response does.
    const finished = new Map<string, { status: string; at: number }>();
    const waiters = new Map<string, (r: { status: string; at: number }) => void>();
    let events: Awaited<ReturnType<typeof openEvents>>;
    const eventsStarted = performance.now();
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
      httpErrors += 1;
      fail('events', `${events.status}`);
      return;
    }
    rec('events').push(performance.now() - eventsStarted);

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
      s2r.push(result.at - t0);
      rec('result').push(result.at - t0);
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
      const windowStart = msg.startAt + cfg.rampS * 1000;
      await sleep(Math.max(0, windowStart - Date.now()) + Math.random() * (cfg.burstS ?? 10) * 1000);
      await submitOnce('submit', Math.random() < 0.2 ? WRONG : CORRECT);
    }
  }

  const mine = Array.from({ length: cfg.students }, (_, i) => i).filter((i) => i % workers === worker);
  async function instructor(k: number) {
    const base = urls[k % urls.length]!;
    const auth = { token: course.instructorToken };
    while (!stopping && done < mine.length) {
      const t0 = performance.now();
      // The rows are not parsed here: an instructor's browser parses them in its own process.
      await call(
        'gradebook',
        base,
        'GET',
        `/api/v1/courses/${course.courseId}/gradebook`,
        auth,
        undefined,
        [200],
        false,
      );
      // As the web app's live gradebook reloads: 3–5 s apart, or ten times the last load when longer.
      await sleep(Math.max(3000 + Math.random() * 2000, 10 * (performance.now() - t0)));
    }
  }
  const ticker = setInterval(() => onProgress({ kind: 'progress', worker, done, errors }), 1000);
  const inst = worker === 0 ? Array.from({ length: cfg.instructors }, (_, k) => instructor(k)) : [];
  const flows: Promise<void>[] = [];
  let unstarted = 0;
  for (const i of mine) {
    const at = msg.startAt + (i * cfg.rampS * 1000) / cfg.students;
    const wait = at - Date.now();
    if (wait > 0) await sleep(wait);
    if (Date.now() > stopAt) {
      unstarted += 1;
      continue;
    }
    flows.push(
      student(i)
        .catch((err) => fail('student', (err as Error).message))
        .finally(() => {
          done += 1;
        }),
    );
  }
  await Promise.race([Promise.all(flows), sleep(Math.max(0, stopAt - Date.now()))]);
  stopping = true;
  const unfinished = mine.length - done;
  if (unfinished > 0) {
    errors += unfinished;
    if (errorSamples.length < 8)
      errorSamples.push(`${unfinished} students had not finished at the deadline (${unstarted} not started)`);
  }
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - wall0;
  loop.disable();
  clearInterval(ticker);
  for (const close of closers) close();
  await Promise.race([Promise.all(inst), sleep(6000)]);
  closeAgents();
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  return {
    kind: 'report',
    worker,
    students: mine.length,
    done,
    errors,
    httpErrors,
    errorSamples,
    steps: Object.fromEntries(steps),
    stepErrors,
    submitToResult: s2r,
    outcome,
    firstSubmitAt,
    cpuMs: (cpu.user + cpu.system) / 1000,
    wallMs,
    loopDelay: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) },
  };
}

// Run as a child process: wait for the start message, drive, report, exit.
if (process.send && process.argv[1]?.endsWith('class-worker.ts')) {
  process.once('message', (msg: WorkerStart) => {
    void drive(msg, (p) => process.send?.(p)).then(
      (report) => process.send!(report, () => process.exit(0)),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  });
  process.send({ kind: 'ready' });
}
