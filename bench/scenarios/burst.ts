import type { Ctx } from '../lib/context.ts';
import { clearSubmissions } from '../lib/seed.ts';
import { runClass, withFleet } from '../lib/students.ts';
import { CLASS_GRADERS, CLASS_INSTANCES } from './classroom.ts';

/** Scenario 4: every student submits within the same 10 seconds (a deadline). */
export async function burstScenario(ctx: Ctx) {
  await clearSubmissions(ctx.env.admin, ctx.course.courseId).catch(() => {});
  const result = await withFleet(ctx, CLASS_INSTANCES, CLASS_GRADERS, (urls, procs) =>
    runClass(
      ctx,
      {
        students: ctx.opts.burstStudents,
        rampS: ctx.opts.quick ? 3 : 8, // connect (SSE) first
        thinkScale: 0,
        loginMax: 0,
        resubmitShare: 0,
        instructors: 0,
        mode: 'burst',
        burstS: 10,
        resultTimeoutMs: 60_000,
        deadlineS: 90,
      },
      urls,
      procs,
    ),
  );
  return { burstWindowS: 10, ...result };
}
