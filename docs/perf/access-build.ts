// `npx tsx docs/perf/access-build.ts`: the JavaScript CPU of the submit's access read
// (src/modules/exercises/exercise-access.queries.ts) per call, with Drizzle's SQL built per call (as inside a
// transaction) and run as the statement prepared once per database handle (as on a pooled handle), over a
// client that answers at once: what remains is Drizzle's work, not Postgres's or the network's. 5 interleaved
// rounds of 5,000 calls each way. Needs no database; writes nothing.
import { drizzle } from 'drizzle-orm/node-postgres';
import * as schema from '../../src/db/schema/index.ts';
import { selectOptionalExerciseAccess } from '../../src/modules/exercises/exercise-access.queries.ts';

const instant = { query: async () => ({ rows: [], rowCount: 0, fields: [] }), release() {} };
const client = { ...instant, connect: async () => instant };
const db = drizzle(client as never, { schema });
const exercise = '6f1c1c0e-8d9b-4c71-9a7a-1b2c3d4e5f60';
const user = '7f1c1c0e-8d9b-4c71-9a7a-1b2c3d4e5f61';
const ways = {
  'built per call (in a transaction)': () =>
    db.transaction((tx) => selectOptionalExerciseAccess(tx, exercise, user)),
  'a transaction alone': () => db.transaction(async () => null),
  'prepared once (a pooled handle)': () => selectOptionalExerciseAccess(db, exercise, user),
};
const CALLS = 5000;
const micros: Record<string, number[]> = {};
for (let round = 0; round < 6; round++) {
  for (const [name, call] of Object.entries(ways)) {
    const started = process.cpuUsage();
    for (let i = 0; i < CALLS; i++) await call();
    const used = process.cpuUsage(started);
    // Round 0 warms the JIT and is not counted.
    if (round > 0) (micros[name] ??= []).push((used.user + used.system) / CALLS);
  }
}
for (const [name, us] of Object.entries(micros))
  console.log(`${name.padEnd(36)} ${us.map((u) => u.toFixed(1)).join(', ')} µs of CPU per call`);
