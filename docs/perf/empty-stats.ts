// `npx tsx docs/perf/empty-stats.ts [submissions]`: what a pooled connection's cached plans do when the
// tables were ANALYZEd empty and then grow (a classroom step run alone, before the bench seeded the
// platform's other course: bench/lib/seed.ts, bigCourse). One connection inserts and grades submissions
// as the grader does (the update fires the exercise_scores trigger), then auto_explain prints the plans
// it is still using. Writes nothing in the repo.
import pg from 'pg';
import { BenchEnv } from '../../bench/lib/env.ts';
import { seedCourse } from '../../bench/lib/seed.ts';

const n = Number(process.argv[2] ?? 3000);
const env = await BenchEnv.start({ log: () => {} });
try {
  // seedCourse ends with ANALYZE while submissions is empty, as each classroom step began.
  const course = await seedCourse(env.admin, { tag: `es${Date.now() % 1e6}`, students: 2500, lessons: 4, exercisesPerLesson: 3 });
  const c = new pg.Client({ connectionString: env.databaseUrl });
  await c.connect();
  const insert = `insert into submissions (course_id, exercise_id, user_id, code, status, body_hash)
                  values ($1, $2, $3, 'function add(a, b) { return a + b; }', 'queued', md5(random()::text)) returning id`;
  const grade = `update submissions set status = 'passed', score = 10, raw_score = 10, graded_at = now() where id = $1`;
  const ms: number[] = [];
  const submit = async (i: number) => {
    const student = course.students[i % course.students.length]!;
    const exercise = course.jsExerciseIds[i % course.jsExerciseIds.length]!;
    const { rows } = await c.query({ name: 'insert', text: insert, values: [course.courseId, exercise, student.id] });
    const t0 = performance.now();
    await c.query({ name: 'grade', text: grade, values: [rows[0].id] });
    ms.push(performance.now() - t0);
  };
  for (let i = 0; i < n; i++) await submit(i);
  const mean = (a: number[]) => (a.reduce((x, y) => x + y, 0) / a.length).toFixed(3);
  console.log(`grading update, ms: first 200 ${mean(ms.slice(0, 200))}, last 500 ${mean(ms.slice(-500))}`);
  await c.query(`load 'auto_explain'`);
  await c.query(`set auto_explain.log_min_duration = 0; set auto_explain.log_nested_statements = on;
                 set auto_explain.log_level = notice; set auto_explain.log_analyze = on`);
  c.on('notice', (m) => console.log(String(m.message)));
  await submit(7);
  await c.end();
} finally {
  await env.close();
}
