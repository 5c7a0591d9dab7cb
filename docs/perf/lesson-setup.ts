// What the lesson-read scripts of docs/perf share: a bench environment (embedded Postgres, migrated), a
// small seeded course, the bench context its measuring functions expect, and the lesson read's path
// and a student's bearer header.
import type { Ctx } from '../../bench/lib/context.ts';
import { BenchEnv } from '../../bench/lib/env.ts';
import { Progress } from '../../bench/lib/progress.ts';
import { seedCourse } from '../../bench/lib/seed.ts';

export async function lessonReadSetup(opts: { tag: string; segmentS: number; connections: number }) {
  const progress = new Progress(1);
  const log = (s: string) => progress.log(s);
  const env = await BenchEnv.start({ log });
  try {
    const course = await seedCourse(env.admin, {
      tag: `${opts.tag}${Date.now() % 1e6}`,
      students: 50,
      lessons: 4,
      exercisesPerLesson: 3,
    });
    const ctx = {
      env,
      progress,
      opts: { durationS: opts.segmentS, connections: opts.connections, quick: false },
      course,
      log,
      softDeadline: Date.now() + 3_600_000,
    } as unknown as Ctx;
    const lessonPath = `/api/v1/lessons/${course.lessonIds[0]}`;
    const headers = { authorization: `Bearer ${course.students[0]!.token}` };
    const close = async () => {
      progress.stop();
      await env.close();
    };
    return { env, ctx, progress, log, lessonPath, headers, close };
  } catch (err) {
    progress.stop();
    await env.close();
    throw err;
  }
}
