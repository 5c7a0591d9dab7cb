// `npx tsx docs/perf/event-ids.ts [grown]`: the events fan-out's statement (src/realtime/events.queries.ts)
// with the NOTIFY batch's ids as `e.id = any($1)` against `e.id in (select lab_event_ids($1))` (migration
// 0011), as named statements on one connection: 6 interleaved rounds of 2,000 calls of 1 or 2 ids over
// 20,000 events. Prints the round trip and the backend's CPU (/proc) per call, and how Postgres planned
// each (pg_prepared_statements). With `grown`, the connection makes its plans while the table is ANALYZEd
// empty and holds 10 rows, then 20,000 are added without an ANALYZE: the generic plan kept by the
// function's form is then a sequential scan (what a classroom step measured when the bench cleared
// `events` before it). Writes nothing in the repo.
import fs from 'node:fs';
import pg from 'pg';
import { BenchEnv } from '../../bench/lib/env.ts';
import { seedCourse } from '../../bench/lib/seed.ts';

const CALLS = 2000;
const env = await BenchEnv.start({ log: () => {} });
try {
  const course = await seedCourse(env.admin, { tag: `ev${Date.now() % 1e6}`, students: 2500, lessons: 4, exercisesPerLesson: 3 });
  const c = new pg.Client({ connectionString: env.databaseUrl });
  await c.connect();
  const insertEvents = (n: number) =>
    c.query(
      `insert into events (course_id, user_id, type, payload)
       select $1, $2, 'submission.updated', jsonb_build_object('submission', jsonb_build_object('exerciseId', $3::text))
         from generate_series(1, $4::int)`,
      [course.courseId, course.students[0]!.id, course.jsExerciseIds[0], n],
    );
  const grown = process.argv[2] === 'grown';
  if (grown) await insertEvents(10);
  else {
    await insertEvents(20000);
    await c.query('analyze');
  }
  const columns = `e.id, e.user_id, e.type, e.payload,
    coalesce((select array_agg(m.user_id) from course_members m
               where m.course_id = e.course_id and m.role in ('instructor', 'ta')), '{}') as staff,
    coalesce((select array_agg(t->>'name') from exercises x, jsonb_array_elements(x.tests) t
               where x.id = (e.payload->'submission'->>'exerciseId')::uuid
                 and not coalesce((t->>'hidden')::boolean, false)), '{}') as visible_tests`;
  const variants: Record<string, string> = {
    by_any: `select ${columns} from events e where e.id = any($1::bigint[]) order by e.id`,
    by_function: `select ${columns} from events e where e.id in (select lab_event_ids($1::bigint[])) order by e.id`,
  };
  if (grown) {
    const few = (await c.query<{ id: string }>('select id from events')).rows.map((r) => r.id);
    for (const [name, text] of Object.entries(variants))
      for (const id of few) await c.query({ name, text, values: [`{${id}}`] });
    await insertEvents(20000);
  }
  const pid = (await c.query<{ p: number }>('select pg_backend_pid() as p')).rows[0]!.p;
  const ids = (await c.query<{ id: string }>('select id from events order by id desc limit 3000')).rows.map((r) => r.id);
  const ticks = () => {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(f[11]) + Number(f[12]);
  };
  const rtt: Record<string, string[]> = { by_any: [], by_function: [] };
  const cpu: Record<string, string[]> = { by_any: [], by_function: [] };
  for (let round = 0; round < 6; round++) {
    for (const [name, text] of Object.entries(variants)) {
      const c0 = ticks();
      const t0 = performance.now();
      for (let i = 0, k = 0; i < CALLS; i++) {
        const batch = ids.slice(k, k + (i % 3 === 0 ? 2 : 1));
        k = (k + batch.length) % 2900;
        await c.query({ name, text, values: [`{${batch.join(',')}}`] });
      }
      rtt[name]!.push(((performance.now() - t0) / CALLS).toFixed(3));
      cpu[name]!.push((((ticks() - c0) * 10) / CALLS).toFixed(3));
    }
  }
  const plans = await c.query(`select name, generic_plans, custom_plans from pg_prepared_statements order by name`);
  for (const name of Object.keys(variants)) {
    const p = plans.rows.find((r) => r.name === name);
    console.log(`${name}: round trip ${rtt[name]!.join(' ')} ms; backend CPU ${cpu[name]!.join(' ')} ms per call;`,
      `plans: ${p?.generic_plans} generic, ${p?.custom_plans} custom`);
  }
  await c.end();
} finally {
  await env.close();
}
