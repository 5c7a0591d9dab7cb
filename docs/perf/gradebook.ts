// `npx tsx docs/perf/gradebook.ts [commit] [rounds]`: the gradebook of a 5,000-student × 20-exercise
// course (2 submissions per cell, the isolation scenario's course) as Lab builds it now and as `commit`
// built it (default 4aae228: every cell rendered by Postgres), CSV and JSON: wall time, Postgres CPU (all
// backends, /proc) and this process's CPU per document, and whether both give the same bytes. Some
// names, titles and scores are made awkward first (quotes, commas, formulas, control characters, emoji,
// 1/3, no score, late, no row). Runs on its own embedded Postgres; writes nothing in the repo but a
// temporary copy of the old module, removed on exit (its relative imports must resolve).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BenchEnv, ROOT } from '../../bench/lib/env.ts';
import { seedCourse } from '../../bench/lib/seed.ts';
import { gradebookCsvChunks, gradebookJsonChunks } from '../../src/modules/gradebook/gradebook.queries.ts';
import { GRADEBOOK_JSON_END } from '../../src/modules/gradebook/gradebook.render.ts';

const commit = process.argv[2] ?? '4aae228';
const rounds = Number(process.argv[3] ?? 5);
const oldFile = path.join(ROOT, 'src/modules/gradebook/.old-gradebook.queries.tmp.ts');
fs.writeFileSync(
  oldFile,
  execFileSync('git', ['show', `${commit}:src/modules/gradebook/gradebook.queries.ts`], { cwd: ROOT, encoding: 'utf8' }),
);
const env = await BenchEnv.start({ log: (s: string) => console.log(s) });
try {
  const old: { GRADEBOOK_CSV: string; GRADEBOOK_JSON: string } = await import(oldFile);
  const course = await seedCourse(env.admin, {
    tag: `gb${Date.now() % 1e6}`,
    students: 5000,
    lessons: 4,
    exercisesPerLesson: 5,
    submissionsPerStudent: 2,
  });
  const id = course.courseId;
  const names = ['=cmd|x', 'a,b', 'q"uote', 'line\nbreak', 'tab\there', '\u0001ctl\u001f', 'émoji 😀', '+1', '@x', 'back\\slash'];
  const { rows: students } = await env.admin.query<{ user_id: string }>(
    "select user_id from course_members where course_id = $1 and role = 'student' order by user_id limit 10",
    [id],
  );
  for (const [i, s] of students.entries())
    await env.admin.query('update users set name = $1, email = $2 where id = $3', [names[i], `${names[i]}-${i}@x.org`, s.user_id]);
  await env.admin.query(
    `update exercises set title = 'T,"=x"' where id = (select id from exercises where course_id = $1 limit 1)`,
    [id],
  );
  // Awkward figures written straight into the summary (its triggers are on submissions, not on it).
  for (const change of ['best = null', 'late = true', 'best = 1.0 / 3'])
    await env.admin.query(`update exercise_scores set ${change} where course_id = $1 and random() < 0.1`, [id]);
  await env.admin.query('delete from exercise_scores where course_id = $1 and random() < 0.1', [id]);
  await env.admin.query('analyze');

  const connect = () => env.admin.connect();
  const collect = async (chunks: AsyncGenerator<Buffer>) => {
    const parts: Buffer[] = [];
    for await (const chunk of chunks) parts.push(chunk);
    return Buffer.concat(parts).toString('utf8');
  };
  const rendered = async (query: string, separator: string) => {
    const client = await env.admin.connect();
    try {
      await client.query(
        "begin read only; set local cursor_tuple_fraction = 1; set local extra_float_digits = 1; set local work_mem = '32MB'",
      );
      const { rows } = await client.query<{ line: string }>(query, [id]);
      await client.query('commit');
      return rows.map((r) => r.line + separator).join('');
    } finally {
      client.release();
    }
  };
  const measure = async (build: () => Promise<string>) => {
    const pg0 = env.pgCpuMs() ?? 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const text = await build();
    const cpu = process.cpuUsage(cpu0);
    return { text, wall: performance.now() - t0, pg: (env.pgCpuMs() ?? 0) - pg0, node: (cpu.user + cpu.system) / 1000 };
  };
  const builds = {
    'CSV, old': () => rendered(old.GRADEBOOK_CSV, '\n'),
    'CSV, now': () => collect(gradebookCsvChunks(connect, id)),
    'JSON, old': async () => `${await rendered(old.GRADEBOOK_JSON, '')}]}`,
    'JSON, now': async () => (await collect(gradebookJsonChunks(connect, id))) + GRADEBOOK_JSON_END,
  };
  // Warm-up: the server's renderers run optimised after a few requests.
  for (let i = 0; i < 3; i++) for (const build of Object.values(builds)) await build();
  for (let round = 1; round <= rounds; round++) {
    const m: Record<string, Awaited<ReturnType<typeof measure>>> = {};
    for (const [name, build] of Object.entries(builds)) m[name] = await measure(build);
    console.log(
      `round ${round}: ${Object.entries(m)
        .map(([k, v]) => `${k} ${v.wall.toFixed(0)} ms wall, Postgres ${v.pg} ms, Node ${v.node.toFixed(0)} ms CPU`)
        .join('; ')}; same bytes: CSV ${m['CSV, old']?.text === m['CSV, now']?.text}, JSON ${
        m['JSON, old']?.text === m['JSON, now']?.text
      }`,
    );
  }
} finally {
  fs.rmSync(oldFile, { force: true });
  await env.close();
}
