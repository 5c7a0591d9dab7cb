import { type SQL, sql } from 'drizzle-orm';
import { NodePgSession, NodePgTransaction } from 'drizzle-orm/node-postgres';
import pg from 'pg';

/*
 * drizzle-orm 0.45.4 (the latest) runs a transaction's BEGIN outside its try/finally: when BEGIN
 * fails — the server dropped the pooled connection, as on a restart or failover — the client is
 * never released, and a small pool (a grader's has one connection) then waits for it forever.
 * Seen in the grader tests after pg_terminate_backend. This is the same method with BEGIN inside,
 * the client released with the error when the connection broke (so the pool discards it), and a
 * failed ROLLBACK not hiding the error that caused it. Drizzle's internals are typed here only.
 */
interface SessionInternals {
  client: pg.Pool | pg.PoolClient;
  dialect: unknown;
  schema: unknown;
  options: unknown;
}
interface TransactionInternals {
  execute(query: SQL): Promise<unknown>;
  getTransactionConfigSQL(config: unknown): SQL;
}
const Session = NodePgSession as unknown as new (...args: unknown[]) => SessionInternals;
const Transaction = NodePgTransaction as unknown as new (...args: unknown[]) => TransactionInternals;

(NodePgSession.prototype as unknown as { transaction: unknown }).transaction = async function transaction(
  this: SessionInternals,
  run: (tx: TransactionInternals) => Promise<unknown>,
  config?: unknown,
) {
  const client = this.client instanceof pg.Pool ? await this.client.connect() : null;
  const session = client ? new Session(client, this.dialect, this.schema, this.options) : this;
  const tx = new Transaction(this.dialect, session, this.schema);
  let broken: Error | undefined;
  try {
    await tx.execute(sql`begin${config ? sql` ${tx.getTransactionConfigSQL(config)}` : undefined}`);
    try {
      const result = await run(tx);
      await tx.execute(sql`commit`);
      return result;
    } catch (error) {
      await tx.execute(sql`rollback`).catch((e: Error) => {
        broken = e;
      });
      throw error;
    }
  } catch (error) {
    broken ??= (error as { cause?: Error }).cause ?? (error as Error);
    throw error;
  } finally {
    // A client whose connection failed is discarded by the pool when released with the error.
    client?.release(isConnectionError(broken) ? broken : undefined);
  }
};

/** The connection itself failed (as opposed to a statement, or the caller's own error). */
function isConnectionError(err: Error | undefined): err is Error {
  if (!err) return false;
  const code = (err as { code?: string }).code ?? '';
  return (
    code.startsWith('08') ||
    code.startsWith('57P') ||
    /Connection terminated|not queryable|Client was closed|ECONNRESET|EPIPE/.test(err.message)
  );
}
