import { Readable } from 'node:stream';

/** How far a chunk stream reads ahead of its client: a big course's gradebook (~14 MB) fits. */
export const READ_AHEAD_BYTES = 16 * 1024 * 1024;

/**
 * A response body from a generator of text chunks (the first already taken, so a failure before it
 * could still be answered with an error body), then `ending`. It reads ahead up to `readAheadBytes`
 * whatever the client does: a generator holding a database connection (a cursor) is drained at the
 * database's pace, not at the pace of a slow download, so the connection returns to its pool. Destroyed
 * early (the client went away), it stops the generator, whose cleanup ends the transaction.
 */
export function chunkStream(
  chunks: AsyncGenerator<string | Uint8Array>,
  first: IteratorResult<string | Uint8Array>,
  ending: string | null,
  readAheadBytes = READ_AHEAD_BYTES,
): Readable {
  const body = new Readable({
    highWaterMark: readAheadBytes,
    read() {
      chunks.next().then(
        (next) => {
          if (!next.done) return this.push(next.value);
          if (ending !== null) this.push(ending);
          this.push(null);
        },
        (err: Error) => this.destroy(err),
      );
    },
    destroy(err, callback) {
      chunks.return(undefined).then(
        () => callback(err),
        (cleanupErr: Error) => callback(err ?? cleanupErr),
      );
    },
  });
  if (first.done) {
    if (ending !== null) body.push(ending);
    body.push(null);
  } else body.push(first.value);
  return body;
}
