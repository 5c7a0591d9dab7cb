import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { SQL } from 'drizzle-orm';
import type { Tx } from './types.ts';

/*
 * The typed boundary for raw SQL. Queries written with Drizzle's builder get their row types from the
 * schema; a statement Drizzle cannot express (CTEs that write, json aggregation, NOTIFY) goes through
 * `selectRows`, which checks every row against a TypeBox schema instead of trusting a type argument
 * (`execute<T>` is a cast). A row that does not match throws, naming the column: a query and its
 * row type cannot drift apart silently.
 */

/** A compiled check of rows of one shape: returns them typed, or throws at the first mismatch. */
export function rowsOf<T extends TSchema>(schema: T, what: string) {
  const check = TypeCompiler.Compile(schema);
  return (rows: readonly unknown[]): Static<T>[] =>
    rows.map((row) => {
      if (check.Check(row)) return row;
      const e = check.Errors(row).First();
      throw new Error(`${what}: unexpected row (${e?.path || '/'} ${e?.message ?? ''})`);
    });
}

/** Runs a raw statement and returns its rows checked against `parse` (from rowsOf). */
export async function selectRows<T>(
  tx: Tx,
  parse: (rows: readonly unknown[]) => T[],
  query: SQL,
): Promise<T[]> {
  const result = await tx.execute(query);
  return parse(result.rows);
}

/** Column shapes as node-postgres returns them through Drizzle's raw execute. */
export const Col = {
  uuid: Type.String(),
  text: Type.String(),
  bool: Type.Boolean(),
  /** int4, or a count cast to int. */
  int: Type.Integer(),
  float: Type.Number(),
  /** int8 / bigint arrive as a decimal string (they may not fit a double). */
  bigint: Type.String({ pattern: '^-?[0-9]+$' }),
  /** timestamptz arrives as Postgres prints it; `new Date()` reads it. */
  timestamp: Type.String(),
  nullable: <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]),
  /** json / jsonb: checked by whoever reads it (e.g. src/contracts/events.ts). */
  json: Type.Unknown(),
  uuids: Type.Array(Type.String()),
  texts: Type.Array(Type.String()),
};
