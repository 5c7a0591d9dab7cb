import { type Ctx, resetStatements, statementStats } from '../lib/context.ts';
import { bigCourse, clearSubmissions, seedCourse } from '../lib/seed.ts';
import { type ClassConfig, type ClassResult, runClass, withFleet } from '../lib/students.ts';

export const CLASS_INSTANCES = 2;
export const CLASS_GRADERS = 1;
const READ_P99_LIMIT_MS = 200;
const SUBMIT_TO_RESULT_P50_LIMIT_MS = 300;
/** Issue 13: the classroom N this machine must hold. */
export const CLASSROOM_TARGET_N = 5000;

function config(ctx: Ctx, students: number): ClassConfig {
  const quick = ctx.opts.quick;
  return {
    students,
    // Arrivals over a fixed window, so the arrival rate grows with N in the search.
    rampS: quick ? 10 : 20,
    thinkScale: quick ? 0.5 : 1,
    // One student in ten signs in with a password (argon2id, ~20 MB and tens of ms of CPU each).
    loginMax: Math.ceil(students / 10),
    resubmitShare: 0.3,
    instructors: 3,
    mode: 'classroom',
    resultTimeoutMs: 20_000,
    deadlineS: quick ? 45 : 70,
  };
}

const CRITERION = `read p99 < ${READ_P99_LIMIT_MS} ms, submit→result p50 < ${SUBMIT_TO_RESULT_P50_LIMIT_MS} ms and 0 errors`;

/**
 * Issue 13's target, judged on the first step: N ≥ 5,000 held (null: the step ran fewer students, so
 * it says nothing about the target).
 */
function targetOf(main: ClassResult) {
  return {
    students: CLASSROOM_TARGET_N,
    criterion: CRITERION,
    met: main.students >= CLASSROOM_TARGET_N ? holds(main) : null,
    verdict: verdict(main),
    generatorBottleneck: main.generator.bottleneck,
  };
}

/** A step's result, with where Postgres spent its time during the step (Lab's statements, by total time). */
type Step = ClassResult & { statements: Awaited<ReturnType<typeof statementStats>> };

/**
 * One step: a classroom of N is a course of N students, seeded for the step (what the instructors'
 * gradebook reads costs grows with the course's members, not with the students active: a search
 * whose every step shared an 8,000-member course measured the big course's gradebook at every N).
 */
async function once(ctx: Ctx, students: number): Promise<Step> {
  const course = await seedCourse(ctx.env.admin, {
    tag: `cls${students}x${Date.now() % 1e6}`, // no "-": seedCourse splits emails on it
    students,
    lessons: 4,
    exercisesPerLesson: 3,
  });
  await resetStatements(ctx);
  try {
    const result = await withFleet(ctx, CLASS_INSTANCES, CLASS_GRADERS, (urls, procs) =>
      runClass({ ...ctx, course }, config(ctx, students), urls, procs),
    );
    return { ...result, statements: await statementStats(ctx, ctx.env.labRole, 10) };
  } finally {
    // The next step starts from the same table sizes: no submissions, events or dead rows of this one.
    await clearSubmissions(ctx.env.admin, course.courseId).catch(() => {});
  }
}

/** Lab held this N: read p99 < 200 ms, submit→result p50 < 300 ms, 0 errors (whatever the generator did). */
const holds = (r: ClassResult) =>
  r.errors === 0 &&
  r.read.count > 0 &&
  r.read.p99 < READ_P99_LIMIT_MS &&
  r.submitToResult.count > 0 &&
  r.submitToResult.p50 < SUBMIT_TO_RESULT_P50_LIMIT_MS;

/**
 * A failed step whose generator was the bottleneck is inconclusive when the generator could explain the
 * failure: Lab answered nothing with a wrong status, and with the generator's own event-loop delay (p99)
 * taken off, read p99 and submit→result p50 would be within their limits. Otherwise it is Lab's failure.
 */
const verdict = (r: ClassResult): 'held' | 'failed' | 'inconclusive' => {
  if (holds(r)) return 'held';
  if (!r.generator.bottleneck) return 'failed';
  const lag = Math.max(0, ...r.generator.perProcess.map((p) => p.loopDelayP99));
  const couldBeGenerator =
    r.httpErrors === 0 &&
    r.read.p99 - lag < READ_P99_LIMIT_MS &&
    r.submitToResult.p50 - lag < SUBMIT_TO_RESULT_P50_LIMIT_MS;
  return couldBeGenerator ? 'inconclusive' : 'failed';
};

/**
 * Scenario 3: N virtual students with think time (the first step at N = --students, 5,000 by default:
 * issue 13's target), then a bounded search for the largest N this machine holds at read p99 < 200 ms,
 * submit→result p50 < 300 ms and 0 errors: doubling until a step fails (halving while it fails), then
 * bisecting; at most 5 steps, never past --max-students. A failed step where the load generator was
 * the bottleneck is inconclusive: it is neither Lab's limit nor a pass.
 */
export async function classroomScenario(ctx: Ctx) {
  const big = await bigCourse(ctx.env.admin, ctx.opts.quick, ctx.log);
  const platform = { students: big.students, submissions: big.submissions };
  const main = await once(ctx, ctx.opts.students);
  if (ctx.opts.noSearch)
    return { main, mainVerdict: verdict(main), target: targetOf(main), platform, search: null };
  const steps: {
    students: number;
    readP99: number;
    errors: number;
    holds: boolean;
    verdict: 'held' | 'failed' | 'inconclusive';
    submitToResultP50: number;
    submitToResultP99: number;
    machineCoresBusy: number;
    othersCoresBusy: number;
    generatorCores: number;
    generatorProcesses: number;
    generatorLoopDelayP99: number;
    generatorBottleneck: string | null;
    /** p99 by step (course, lesson, …): which part of a failed step was slow. */
    stepP99: Record<string, number>;
    /** The step's three costliest statements (pg_stat_statements). */
    statements: Step['statements'];
    /** The step's window and each process's cores over it: the report's CPU arithmetic. */
    wallS: number;
    coresBy: Record<string, number>;
  }[] = [];
  const record = (r: Step) => {
    steps.push({
      students: r.students,
      readP99: r.read.p99,
      errors: r.errors,
      holds: holds(r),
      verdict: verdict(r),
      submitToResultP50: r.submitToResult.p50,
      submitToResultP99: r.submitToResult.p99,
      machineCoresBusy: r.machineCoresBusy,
      othersCoresBusy: r.othersCoresBusy,
      generatorCores: r.generator.cores,
      generatorProcesses: r.generator.processes,
      generatorLoopDelayP99: Math.max(0, ...r.generator.perProcess.map((p) => p.loopDelayP99)),
      generatorBottleneck: r.generator.bottleneck,
      stepP99: Object.fromEntries(Object.entries(r.steps).map(([k, v]) => [k, v.p99])),
      statements: r.statements.slice(0, 3),
      wallS: r.wallS,
      coresBy: r.coresBy,
    });
    return verdict(r);
  };
  let good = 0;
  let bad = Number.POSITIVE_INFINITY;
  /** Smallest N whose step was inconclusive (the generator was the limit): the search goes no higher. */
  let generatorBound = Number.POSITIVE_INFINITY;
  let runsLeft = 4; // runs after the main one, retries included
  // A step (fleet start, ramp, flows) takes one to two minutes; leave the later scenarios their time.
  const timeLeft = () => Date.now() < ctx.softDeadline - 8 * 60_000;
  // A near miss is run once more before it counts as failed: one run on a shared machine can be
  // spoiled by a neighbour's burst, and the search would then stop far too low.
  const evaluate = async (n: number, first?: Step): Promise<'held' | 'failed' | 'inconclusive'> => {
    if (!first) runsLeft -= 1;
    const r = first ?? (await once(ctx, n));
    const v = record(r);
    if (v !== 'failed') return v;
    // Only a near miss is worth a second look; a clear overload is not noise.
    const nearMiss = r.read.p99 < 3 * READ_P99_LIMIT_MS && r.errors <= Math.max(2, r.students / 500);
    if (!nearMiss || runsLeft <= 0 || !timeLeft()) return v;
    ctx.log(`classroom N=${n} failed; running it once more`);
    runsLeft -= 1;
    return record(await once(ctx, n));
  };
  let n = ctx.opts.students;
  let v = await evaluate(n, main);
  for (;;) {
    if (v === 'held') good = Math.max(good, n);
    else if (v === 'failed') bad = Math.min(bad, n);
    else generatorBound = Math.min(generatorBound, n);
    // An inconclusive step bounds the search like a failure, without counting as Lab's limit.
    const ceiling = Math.min(bad, generatorBound);
    let next: number;
    if (ceiling === Number.POSITIVE_INFINITY) next = Math.min(ctx.opts.maxStudents, n * 2);
    else if (good === 0) next = Math.max(50, Math.round(n / 2 / 50) * 50);
    else next = Math.round((good + ceiling) / 2 / 50) * 50;
    const converged =
      good > 0 && ceiling !== Number.POSITIVE_INFINITY && ceiling - good <= Math.max(100, good * 0.2);
    if (next === n || next <= good || next >= ceiling || converged || runsLeft <= 0) break;
    // A step takes up to two minutes; leave the rest of the run its time.
    if (!timeLeft()) {
      ctx.log('classroom search stopped early (time budget)');
      break;
    }
    n = next;
    v = await evaluate(n);
  }
  return {
    main,
    mainVerdict: verdict(main),
    target: targetOf(main),
    platform,
    search: {
      criterion: CRITERION,
      largestHeld: good,
      firstFailed: bad === Number.POSITIVE_INFINITY ? null : bad,
      generatorBoundAt: generatorBound === Number.POSITIVE_INFINITY ? null : generatorBound,
      cappedAt: ctx.opts.maxStudents,
      steps,
    },
  };
}
