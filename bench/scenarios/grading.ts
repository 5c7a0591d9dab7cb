import { closeAgents, openEvents, request } from '../lib/client.ts';
import type { Ctx } from '../lib/context.ts';
import { type Proc, sleep } from '../lib/env.ts';
import { machineBusyMs } from '../lib/procstat.ts';
import { clearSubmissions } from '../lib/seed.ts';
import { Recorder, round } from '../lib/stats.ts';
import { CORRECT, withFleet } from '../lib/students.ts';

const PY_CORRECT = 'def add(a, b):\n    return a + b\n';
// 1 % of submissions misbehave: an endless loop in the graded function, so its first test runs into the
// time limit (API v1.1: the remaining tests are then not run).
const BAD = {
  javascript: 'function add(a, b) { while (true) {} }\n',
  python: 'def add(a, b):\n    while True:\n        pass\n',
};
const NOT_RUN = /^Not run: an earlier test exceeded the time limit/;

interface SubmissionEvent {
  id: string;
  status: string;
  results?: { name: string; passed: boolean; message: string | null; durationMs: number }[];
}

type Language = 'javascript' | 'python';

interface Backlog {
  submissions: number;
  wallS: number;
  perS: number;
  graderCpuS: number;
  /** Submissions graded per second of grader CPU: the per-core throughput. */
  perCoreS: number;
  /** Submissions per second of CPU of the whole machine (API + Postgres + grader + load generator + neighbours). */
  perMachineCoreS: number;
  /** Seconds until every submission of the backlog had been posted (202). */
  postedS: number;
  statuses: Record<string, number>;
  /** Posts not answered 202, and accepted submissions with no result within the wait: failures. */
  postFailures: number;
  notGraded: number;
  waitedS: number;
}

interface LanguageResult {
  language: Language;
  /** Well-behaved submissions only. */
  clean: Backlog;
  /** With 1 % misbehaving submissions (the figure the target is about). */
  backlog: Backlog;
  /** Grader CPU seconds one misbehaving submission costs beyond a well-behaved one (estimate). */
  cpuPerMisbehavingS: number | null;
  steady: {
    ratePerS: number;
    durationS: number;
    submitted: number;
    /** From each submission's scheduled time to its result over SSE (an open model: no coordinated omission). */
    submitToResult: ReturnType<Recorder['summary']>;
    misbehaving: ReturnType<Recorder['summary']>;
    postFailures: number;
    missing: number;
  };
  /** The exercise's time limit per test, read back from the API. */
  timeLimitMs: number;
  testsPerSubmission: number;
  /** What the misbehaving submissions' results show (API v1.1: one time-out, the rest not run). */
  misbehavingResults: {
    seen: number;
    /** Tests per submission that ran into the time limit (max over the misbehaving ones). */
    timedOutTestsMax: number;
    notRunTests: number;
    /** Every misbehaving submission had exactly one timed-out test and the rest not run. */
    oneTimeLimitEach: boolean;
  };
  /** Grader CPU one misbehaving submission costs beyond a well-behaved one, in time limits. */
  cpuPerMisbehavingInLimits: number | null;
  /** Submit→result of a misbehaving submission, in time limits (max). */
  misbehavingWallInLimits: number | null;
  /** Bounded by one time limit: one timed-out test each, and CPU and wall below two time limits. */
  boundedByOneLimit: boolean;
  target: { perCoreS: number; p50Ms: number | null; met: boolean };
}

/**
 * Scenario 6 (`npm run bench:grading`): one grader process behind one API instance. Throughput from a
 * backlog posted at once (submissions per second of wall time and per second of grader CPU), then
 * submit→result latency over SSE at a steady, moderate rate; 1 % of submissions misbehave.
 */
export async function gradingScenario(ctx: Ctx) {
  const out: LanguageResult[] = [];
  await withFleet(ctx, 1, 1, async ([url], procs) => {
    const grader = procs.find((p) => p.name.includes('grader')) ?? null;
    for (const language of ['javascript', 'python'] as Language[]) {
      await clearSubmissions(ctx.env.admin, ctx.course.courseId).catch(() => {});
      out.push(await gradeLanguage(ctx, url!, grader, language));
    }
  });
  return { graders: 1, languages: out };
}

async function gradeLanguage(
  ctx: Ctx,
  url: string,
  grader: Proc | null,
  language: Language,
): Promise<LanguageResult> {
  const quick = ctx.opts.quick;
  const course = ctx.course;
  const exerciseId = (language === 'javascript' ? course.jsExerciseIds : course.pyExerciseIds)[0]!;
  const good = language === 'javascript' ? CORRECT : PY_CORRECT;
  const backlogN = language === 'javascript' ? (quick ? 200 : 1000) : quick ? 100 : 200;
  const maxRate = language === 'javascript' ? (quick ? 20 : 50) : quick ? 2 : 5;
  const steadyS = quick ? 5 : 12;
  let seq = 0;
  const codeFor = () => {
    seq += 1;
    return seq % 100 === 37 ? BAD[language] : good;
  };
  const students = course.students.slice(0, Math.min(course.students.length, 200));

  // The time limit as the running system has it (the seed sets it; the API is what grading uses).
  const ex = await request(url, 'GET', `/api/v1/exercises/${exerciseId}`, { token: course.instructor.token });
  const exercise = (ex.body as { exercise?: { limits?: { timeMs?: number }; tests?: unknown[] } }).exercise;
  const timeLimitMs = exercise?.limits?.timeMs;
  if (ex.status !== 200 || !timeLimitMs)
    throw new Error(`GET /exercises/:id answered ${ex.status} without limits.timeMs`);
  const testsPerSubmission = exercise?.tests?.length ?? 0;

  // Staff receive every submission's events: one stream sees them all.
  const results = new Map<string, { status: string; at: number; event: SubmissionEvent }>();
  let streamError: string | null = null;
  const events = await openEvents(
    url,
    { token: course.instructor.token },
    (e) => {
      if (e.event !== 'submission.updated') return;
      const s = (JSON.parse(e.data) as { submission: SubmissionEvent }).submission;
      if (['passed', 'failed', 'error'].includes(s.status) && !results.has(s.id))
        results.set(s.id, { status: s.status, at: performance.now(), event: s });
    },
    (err) => {
      if (err) streamError = err.message;
    },
  );
  if (events.status !== 200) throw new Error(`GET /events answered ${events.status}`);
  let postFailures = 0;
  const postSamples: string[] = [];
  /** The submission's id, or null when it was not accepted (counted as a failure). */
  const post = async (i: number, code: string): Promise<string | null> => {
    try {
      const r = await request(
        url,
        'POST',
        `/api/v1/exercises/${exerciseId}/submissions`,
        { token: students[i % students.length]!.token },
        { code },
      );
      if (r.status === 202) return (r.body as { submission: { id: string } }).submission.id;
      if (postSamples.length < 4) postSamples.push(`${r.status} ${JSON.stringify(r.body).slice(0, 160)}`);
    } catch (err) {
      if (postSamples.length < 4) postSamples.push((err as Error).message);
    }
    postFailures += 1;
    return null;
  };

  // Warm-up: the sandboxes start lazily.
  const warm = (await Promise.all(Array.from({ length: 4 }, (_, i) => post(i, good)))).filter(
    (id): id is string => id !== null,
  );
  if (warm.length < 4 || !(await waitFor(() => warm.every((id) => results.has(id)), 30_000)))
    throw new Error(
      `grading ${language}: the warm-up was not graded within 30 s (${warm.length} of 4 accepted${postSamples.length ? `; ${postSamples[0]}` : ''})`,
    );
  postFailures = 0;

  // Backlog: post everything (8 at a time), measure until the last result. Once with well-behaved
  // code only, once with 1 % misbehaving: an infinite loop burns CPU until its time limit.
  const runBacklog = async (label: string, n: number, code: () => string) => {
    const bar = ctx.progress.phase(`grading ${language} backlog (${label})`, n, 'graded');
    const failures0 = postFailures;
    const cpu0 = grader ? grader.cpuMs() : 0;
    const machine0 = machineBusyMs();
    const t0 = performance.now();
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < n) {
          const i = next++;
          const id = await post(i, code());
          if (id) ids.push(id);
        }
      }),
    );
    const postedMs = performance.now() - t0;
    const limitMs = language === 'javascript' ? 120_000 : 180_000;
    const complete = await waitFor(() => {
      const done = ids.filter((id) => results.has(id)).length;
      bar.update(done);
      return done === ids.length;
    }, limitMs);
    const wallMs = performance.now() - t0;
    const graderCpuMs = grader ? grader.cpuMs() - cpu0 : 0;
    const machineMs = machineBusyMs() - machine0;
    bar.done();
    const graded = ids.filter((id) => results.has(id));
    const statuses: Record<string, number> = {};
    for (const id of graded) statuses[results.get(id)!.status] = (statuses[results.get(id)!.status] ?? 0) + 1;
    const b = {
      submissions: graded.length,
      wallS: round(wallMs / 1000, 2),
      perS: round(graded.length / (wallMs / 1000), 1),
      graderCpuS: round(graderCpuMs / 1000, 2),
      perCoreS: graderCpuMs ? round(graded.length / (graderCpuMs / 1000), 1) : 0,
      perMachineCoreS: machineMs ? round(graded.length / (machineMs / 1000), 1) : 0,
      postedS: round(postedMs / 1000, 2),
      statuses,
      postFailures: postFailures - failures0,
      notGraded: ids.length - graded.length,
      waitedS: round(wallMs / 1000, 1),
    };
    if (!complete)
      ctx.log(
        `grading ${language} backlog (${label}): ${b.notGraded} of ${ids.length} not graded within ${limitMs / 1000} s`,
      );
    ctx.log(
      `grading ${language} backlog (${label}): ${b.submissions}/${n} in ${b.wallS} s = ${b.perS}/s (posted in ${b.postedS} s), ` +
        `${b.perCoreS}/s per grader CPU-second, ${b.perMachineCoreS}/s per machine CPU-second`,
    );
    return b;
  };
  const clean = await runBacklog('well-behaved', backlogN, () => good);
  const backlog = await runBacklog('1 % endless loops', backlogN, codeFor);
  const bad = backlogN / 100;
  // Extra grader CPU the misbehaving ones cost, each (beyond what a well-behaved submission costs).
  const cpuPerBadS =
    clean.perCoreS && backlog.graderCpuS
      ? round((backlog.graderCpuS - (backlogN - bad) / clean.perCoreS) / bad, 2)
      : null;

  // Steady: a fixed arrival rate at about half of the measured throughput ("moderate load"), so the
  // latency is grading time rather than queueing; latency from just before the POST to the SSE result.
  const rate = Math.max(1, Math.min(maxRate, Math.floor(backlog.perS / 2)));
  const steadyBar = ctx.progress.phase(`grading ${language} steady ${rate}/s`, steadyS, 's');
  const normal = new Recorder();
  const misbehaving = new Recorder();
  const sent: { id: string; t0: number; bad: boolean }[] = [];
  const total = rate * steadyS;
  const steadyFailures0 = postFailures;
  const start = performance.now();
  const posts: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    if (i % rate === 0) steadyBar.update(i / rate);
    // The middle submission always loops endlessly, so its submit→result is measured in every run.
    const code = i === Math.floor(total / 2) ? BAD[language] : codeFor();
    const isBad = code !== good;
    // Latency counts from the scheduled time: a late loop or a slow POST does not shorten it.
    posts.push(
      post(i, code).then((id) => {
        if (id) sent.push({ id, t0: due, bad: isBad });
      }),
    );
  }
  await Promise.all(posts);
  const steadyWaitMs = 60_000;
  const allSteady = await waitFor(() => sent.every((s) => results.has(s.id)), steadyWaitMs);
  steadyBar.done();
  events.close();
  closeAgents();
  let missing = 0;
  for (const s of sent) {
    const r = results.get(s.id);
    if (!r) missing += 1;
    else (s.bad ? misbehaving : normal).record(r.at - s.t0);
  }
  if (!allSteady)
    ctx.log(`grading ${language} steady: ${missing} results missing after ${steadyWaitMs / 1000} s`);
  if (streamError) ctx.log(`grading ${language}: the SSE stream closed: ${streamError}`);
  const steady = {
    ratePerS: rate,
    durationS: steadyS,
    submitted: sent.length,
    submitToResult: normal.summary(),
    misbehaving: misbehaving.summary(),
    postFailures: postFailures - steadyFailures0,
    missing,
  };
  ctx.log(
    `grading ${language} steady ${rate}/s: submit→result p50 ${steady.submitToResult.p50} ms, p99 ${steady.submitToResult.p99} ms, ${missing} missing, ${steady.postFailures} not accepted`,
  );

  // The misbehaving submissions' own results (backlog and steady): how many tests hit the time limit.
  let seen = 0;
  let timedOutTestsMax = 0;
  let notRunTests = 0;
  let oneTimeLimitEach = true;
  for (const r of results.values()) {
    const tests = r.event.results ?? [];
    const notRun = tests.filter((t) => t.message && NOT_RUN.test(t.message)).length;
    const timedOut = tests.filter(
      (t) => !t.passed && !(t.message && NOT_RUN.test(t.message)) && t.durationMs >= timeLimitMs * 0.9,
    ).length;
    if (timedOut === 0 && notRun === 0) continue;
    seen += 1;
    timedOutTestsMax = Math.max(timedOutTestsMax, timedOut);
    notRunTests += notRun;
    if (timedOut !== 1 || notRun !== tests.length - 1) oneTimeLimitEach = false;
  }
  const cpuPerMisbehavingInLimits = cpuPerBadS == null ? null : round((cpuPerBadS * 1000) / timeLimitMs, 2);
  const misbehavingWallInLimits = misbehaving.count
    ? round(misbehaving.summary().max / timeLimitMs, 2)
    : null;
  const boundedByOneLimit =
    seen > 0 &&
    oneTimeLimitEach &&
    cpuPerMisbehavingInLimits != null &&
    cpuPerMisbehavingInLimits < 2 &&
    misbehavingWallInLimits != null &&
    misbehavingWallInLimits < 2;
  // Issue 9: JavaScript ≥ 400 well-behaved submissions/s per grader core; Python ≥ 20/s per core,
  // sandbox processes' CPU counted. Issue 13: also per core with 1 % endless loops (reported, with the
  // cost of one bounded by one time limit), and every failure counts against the target.
  const targetPerCore = language === 'javascript' ? 400 : 20;
  const targetP50 = language === 'javascript' ? 300 : null;
  const failures =
    clean.postFailures +
    clean.notGraded +
    backlog.postFailures +
    backlog.notGraded +
    steady.postFailures +
    missing;
  return {
    language,
    clean,
    backlog,
    cpuPerMisbehavingS: cpuPerBadS,
    steady,
    timeLimitMs,
    testsPerSubmission,
    misbehavingResults: {
      seen,
      timedOutTestsMax,
      notRunTests,
      oneTimeLimitEach: seen > 0 && oneTimeLimitEach,
    },
    cpuPerMisbehavingInLimits,
    misbehavingWallInLimits,
    boundedByOneLimit,
    target: {
      perCoreS: targetPerCore,
      p50Ms: targetP50,
      met:
        clean.perCoreS >= targetPerCore &&
        (targetP50 == null || steady.submitToResult.p50 < targetP50) &&
        failures === 0,
    },
  };
}

/** Polls `cond` until it holds (true) or the time is up (false: the caller reports it as a failure). */
async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (cond()) return true;
    await sleep(100);
  }
  return cond();
}
