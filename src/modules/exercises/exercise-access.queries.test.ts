import { drizzle } from 'drizzle-orm/node-postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTestApp } from '../../../test/app.ts';
import { testPool } from '../../../test/db.ts';
import { buildWorld, type World } from '../../../test/factories.ts';
import type { BoundedPool } from '../../db/pool.ts';
import * as schema from '../../db/schema/index.ts';
import { selectOptionalExerciseAccess } from './exercise-access.queries.ts';

const ctx = withTestApp();
let w: World;
let pool: BoundedPool;

beforeAll(async () => {
  w = await buildWorld(ctx.app, 'Access');
  // One connection: the prepared statements seen below are the ones these calls made.
  pool = testPool(ctx.url, 'lab:access-test');
});

afterAll(async () => {
  await pool.end();
});

describe('the exercise access read (selectOptionalExerciseAccess)', () => {
  it('reads the same access run by name on a database handle as built inside a transaction, and is prepared once', async () => {
    const db = drizzle(pool, { schema });
    for (const actor of [w.student, w.ta, w.outsider]) {
      const prepared = await selectOptionalExerciseAccess(db, w.exercise.id, actor.id);
      const built = await db.transaction((tx) => selectOptionalExerciseAccess(tx, w.exercise.id, actor.id));
      expect(prepared).toEqual(built);
      expect(prepared).toMatchObject({ courseId: w.course.id, archived: false, late: false, credit: 1 });
    }
    expect((await selectOptionalExerciseAccess(db, w.exercise.id, w.student.id))?.role).toBe('student');
    expect((await selectOptionalExerciseAccess(db, w.exercise.id, w.outsider.id))?.role).toBeNull();
    expect(await selectOptionalExerciseAccess(db, w.lesson.id, w.student.id)).toBeNull();
    expect(await selectOptionalExerciseAccess(db, 'not-a-uuid', w.student.id)).toBeNull();
    // Every call on the handle ran the one statement prepared by name (Drizzle built its SQL once); the
    // three in transactions were built each time (and named by the pool, as any parameterised query).
    const { rows } = await pool.query<{ name: string; calls: string }>(
      `select name, generic_plans + custom_plans as calls from pg_prepared_statements
        where statement like '%course_members%' and statement like '%exercise_exceptions%' order by name`,
    );
    expect(rows).toEqual([
      { name: 'exercise_access', calls: '6' },
      { name: expect.stringMatching(/^lab_\d+$/), calls: '3' },
    ]);
  });
});
