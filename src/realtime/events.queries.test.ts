import { drizzle } from 'drizzle-orm/node-postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, testPool } from '../../test/db.ts';
import type { BoundedPool } from '../db/pool.ts';
import * as schema from '../db/schema/index.ts';
import { selectEventsByIds } from './events.queries.ts';

let drop: () => Promise<void>;
let pool: BoundedPool;
let ids: number[];

beforeAll(async () => {
  let url: string;
  ({ url, drop } = await createTestDatabase());
  // One connection, named statements as on Lab's light pools: the plan cache seen below is the fan-out's.
  pool = testPool(url, 'lab:events-test');
  const { rows } = await pool.query<{ id: string }>(`
    with u as (insert into users (email, name, password_hash) values ('e@test', 'E', 'x') returning id),
         c as (insert into courses (title, join_code) values ('C', 'EVTEST') returning id)
    insert into events (course_id, user_id, type, payload)
    select c.id, u.id, 'submission.updated', '{}'::jsonb from u, c, generate_series(1, 12)
    returning id`);
  ids = rows.map((r) => Number(r.id));
});

afterAll(async () => {
  await pool.end();
  await drop();
});

describe('the events fan-out (selectEventsByIds)', () => {
  it('returns the announced events in id order, and Postgres keeps one generic plan for it', async () => {
    const db = drizzle(pool, { schema });
    for (let i = 0; i < 10; i++) {
      // A NOTIFY batch holds one id or a few.
      const batch = i % 2 === 0 ? [ids[i]!] : [ids[i + 1]!, ids[i]!];
      const events = await selectEventsByIds(db, batch);
      expect(events.map((e) => e.id)).toEqual([...batch].sort((a, b) => a - b));
    }
    // Planned with its values, `e.id = any($1)` looked cheaper every time (an array parameter counts as
    // ten elements) and was planned afresh on each call: generic_plans stayed 0.
    const { rows } = await pool.query<{ generic: string; custom: string }>(`
      select generic_plans as generic, custom_plans as custom from pg_prepared_statements
       where statement like '%from events e%'`);
    expect(rows).toHaveLength(1);
    expect(Number(rows[0]!.custom)).toBeLessThanOrEqual(5);
    expect(Number(rows[0]!.generic)).toBeGreaterThanOrEqual(5);
  });
});
