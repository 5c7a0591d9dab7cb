// `npx tsx docs/perf/lesson-sql.ts [seconds]`: Postgres alone, one client (pgbench -c 1 -M prepared), each
// way of reading the lesson page in turn, several rounds: what each costs the database per request.
//  - detail+caller: before issue 13 (caller_by_token, then lesson_detail returning rows Node maps);
//  - detail: lesson_detail alone (a cached caller, rows mapped and serialised in Node);
//  - page: lesson_page (a cached caller, the response body built by Postgres; what Lab runs now);
//  - page-no-to_char: lesson_page with timestamps left to json (not the API's format; for the cost only);
//  - columns+exercises-json: the lesson's columns as they are, the exercise list as JSON text (Lab now).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchEnv } from '../../bench/lib/env.ts';
import { seedCourse } from '../../bench/lib/seed.ts';
import { LESSON_PAGE, LESSON_PAGE_HYBRID } from './sql.ts';

const seconds = Number(process.argv[2] ?? 3);
const CALLER = `select users.id, users.email, users.name, users.created_at, api_tokens.id
from api_tokens inner join users on users.id = api_tokens.user_id where api_tokens.token_hash = :hash`;
// Lab's lesson_detail before this change (src/modules/lessons/lesson.queries.ts at 3332482).
const DETAIL = `select lessons.id, lessons.course_id, lessons.title, lessons.body, lessons.position, lessons.published_at,
  course_members.role,
  (select coalesce(json_agg(json_build_object('id', e.id, 'title', e.title, 'language', e.language,
     'maxScore', e.max_score, 'dueAt', e.due_at, 'publishedAt', e.published_at) order by e.created_at, e.id), '[]'::json)
   from exercises e where e.lesson_id = lessons.id
     and (course_members.role in ('instructor', 'ta') or coalesce(e.published_at <= now(), false))) as exercises,
  coalesce(lessons.published_at <= now(), false) as visible
from lessons left join course_members on course_members.course_id = lessons.course_id and course_members.user_id = :user
where lessons.id = :lesson`;
const page = LESSON_PAGE.replace('$1', ':lesson').replace('$2', ':user');
const hybrid = LESSON_PAGE_HYBRID.replace('$1', ':lesson').replace('$2', ':user');
const noToChar = page.replace(/to_char\(([^,]+?) at time zone 'UTC', '[^']+'\)/g, '$1');
// pgbench reads `:MI` inside a literal as a variable: the same format, folded from pieces at plan time.
const oneLine = (s: string) =>
  `${s
    .replace(/\s+/g, ' ')
    .replaceAll(`'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`, `('YYYY-MM-DD"T"HH24' || ':' || 'MI' || ':' || 'SS.MS"Z"')`)
    .trim()};`;

const env = await BenchEnv.start({ log: (s) => console.error(s) });
try {
  const course = await seedCourse(env.admin, { tag: `s${Date.now() % 1e6}`, students: 20, lessons: 4, exercisesPerLesson: 3 });
  const student = course.students[0]!;
  const { rows } = await env.admin.query<{ h: string }>(
    `select encode(sha256(convert_to($1, 'UTF8')), 'hex') as h`,
    [student.token],
  );
  const vars = (s: string) =>
    s.replace(':hash', `'${rows[0]!.h}'`).replace(':lesson', `'${course.lessonIds[0]}'`).replace(':user', `'${student.id}'`);
  const scripts: Record<string, string> = {
    'detail+caller': `${oneLine(vars(CALLER))}\n${oneLine(vars(DETAIL))}\n`,
    detail: `${oneLine(vars(DETAIL))}\n`,
    page: `${oneLine(vars(page))}\n`,
    'page-no-to_char': `${oneLine(vars(noToChar))}\n`,
    'columns+exercises-json': `${oneLine(vars(hybrid))}\n`,
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-sql-'));
  const results: Record<string, { tps: number[]; pgCpuUs: number[] }> = {};
  for (let round = 0; round < 3; round++) {
    for (const [name, script] of Object.entries(scripts)) {
      const file = path.join(dir, `${name}.sql`);
      fs.writeFileSync(file, script);
      const cpu0 = env.pgCpuMs()!;
      const out = execFileSync('pgbench', ['-n', '-M', 'prepared', '-c', '1', '-T', String(seconds), '-f', file, env.databaseUrl], { encoding: 'utf8' });
      const cpu1 = env.pgCpuMs()!;
      const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? 0);
      const tx = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? 0);
      (results[name] ??= { tps: [], pgCpuUs: [] }).tps.push(Math.round(tps));
      results[name]!.pgCpuUs.push(Math.round(((cpu1 - cpu0) * 1000) / Math.max(1, tx)));
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`${new Date().toISOString()} load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  for (const [name, r] of Object.entries(results))
    console.log(`${name.padEnd(16)} tps ${r.tps.join(' / ')} (median ${med(r.tps)}); Postgres CPU µs per request ${r.pgCpuUs.join(' / ')} (median ${med(r.pgCpuUs)})`);
  fs.rmSync(dir, { recursive: true, force: true });
} finally {
  await env.close();
}
