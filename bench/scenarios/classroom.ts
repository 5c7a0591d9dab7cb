import type { Ctx } from '../lib/context.ts';
import { clearSubmissions } from '../lib/seed.ts';
import { type ClassConfig, type ClassResult, runClass, withFleet } from '../lib/students.ts';

export const CLASS_INSTANCES = 2;
export const CLASS_GRADERS = 1;
const READ_P99_LIMIT_MS = 200;

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

async function once(ctx: Ctx, students: number): Promise<ClassResult> {
  await clearSubmissions(ctx.env.admin, ctx.course.courseId).catch(() => {});
  return withFleet(ctx, CLASS_INSTANCES, CLASS_GRADERS, (urls, procs) =>
    runClass(ctx, config(ctx, students), urls, procs),
  );
}

const holds = (r: ClassResult) => r.errors === 0 && r.read.p99 < READ_P99_LIMIT_MS;

/**
 * Scenario 3: N virtual students with think time, then a bounded search for the largest N this
 * machine holds at read p99 < 200 ms with 0 errors: the main run is the first step, then doubling
 * until a step fails (halving while it fails), then bisecting; at most 5 steps, never past --max-students.
 */
export async function classroomScenario(ctx: Ctx) {
  const main = await once(ctx, ctx.opts.students);
  if (ctx.opts.noSearch) return { main, search: null };
  const steps: {
    students: number;
    readP99: number;
    errors: number;
    holds: boolean;
    submitToResultP99: number;
    machineCoresBusy: number;
    othersCoresBusy: number;
  }[] = [];
  const record = (r: ClassResult) => {
    steps.push({
      students: r.students,
      readP99: r.read.p99,
      errors: r.errors,
      holds: holds(r),
      submitToResultP99: r.submitToResult.p99,
      machineCoresBusy: r.machineCoresBusy,
      othersCoresBusy: r.othersCoresBusy,
    });
    return holds(r);
  };
  let good = 0;
  let bad = Number.POSITIVE_INFINITY;
  let runsLeft = 5; // runs after the main one, retries included
  const timeLeft = () => Date.now() < ctx.softDeadline - 5 * 60_000;
  // A near miss is run once more before it counts as failed: one run on a shared machine can be
  // spoiled by a neighbour's burst, and the search would then stop far too low.
  const evaluate = async (n: number, first?: ClassResult): Promise<boolean> => {
    if (!first) runsLeft -= 1;
    const r = first ?? (await once(ctx, n));
    if (record(r)) return true;
    // Only a near miss is worth a second look; a clear overload is not noise.
    const nearMiss = r.read.p99 < 3 * READ_P99_LIMIT_MS && r.errors <= Math.max(2, r.students / 500);
    if (!nearMiss || runsLeft <= 0 || !timeLeft()) return false;
    ctx.log(`classroom N=${n} failed; running it once more`);
    runsLeft -= 1;
    return record(await once(ctx, n));
  };
  let n = ctx.opts.students;
  let ok = await evaluate(n, main);
  for (;;) {
    if (ok) good = Math.max(good, n);
    else bad = Math.min(bad, n);
    let next: number;
    if (bad === Number.POSITIVE_INFINITY) next = Math.min(ctx.opts.maxStudents, n * 2);
    else if (good === 0) next = Math.max(50, Math.round(n / 2 / 50) * 50);
    else next = Math.round((good + bad) / 2 / 50) * 50;
    const converged = good > 0 && bad !== Number.POSITIVE_INFINITY && bad - good <= Math.max(100, good * 0.2);
    if (next === n || next <= good || next >= bad || converged || runsLeft <= 0) break;
    // A step takes up to a minute and a half; leave the rest of the run its time.
    if (!timeLeft()) {
      ctx.log('classroom search stopped early (time budget)');
      break;
    }
    n = next;
    ok = await evaluate(n);
  }
  return {
    main,
    search: {
      criterion: `read p99 < ${READ_P99_LIMIT_MS} ms and 0 errors`,
      largestHeld: good,
      firstFailed: bad === Number.POSITIVE_INFINITY ? null : bad,
      cappedAt: ctx.opts.maxStudents,
      steps,
    },
  };
}
