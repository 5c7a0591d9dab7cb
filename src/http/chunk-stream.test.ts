import { describe, expect, it } from 'vitest';
import { until } from '../../test/wait.ts';
import { chunkStream } from './chunk-stream.ts';

const MB = 'x'.repeat(1024 * 1024);

/** Six 1 MB chunks; says how many were taken and whether its cleanup (the cursor's) ran. */
function source() {
  const seen = { taken: 0, cleanedUp: false };
  async function* gen() {
    try {
      for (let i = 0; i < 6; i++) {
        seen.taken += 1;
        yield `${i}${MB}`;
      }
    } finally {
      seen.cleanedUp = true;
    }
  }
  return { seen, chunks: gen() };
}

async function text(stream: NodeJS.ReadableStream) {
  let out = '';
  for await (const c of stream) out += c.toString();
  return out;
}

describe('chunkStream', () => {
  it('drains its source up to the read-ahead limit with no one reading, so a cursor is freed at once', async () => {
    const { seen, chunks } = source();
    const body = chunkStream(chunks, await chunks.next(), ']}', 16 * 1024 * 1024);
    await until(() => seen.cleanedUp, 'the source to be drained and cleaned up without a reader');
    expect(seen.taken).toBe(6);
    const all = await text(body);
    expect(all).toHaveLength(6 * (MB.length + 1) + 2);
    expect(all.endsWith(']}')).toBe(true);
  });

  it('reads no further ahead than its limit while the client does not read', async () => {
    const { seen, chunks } = source();
    const body = chunkStream(chunks, await chunks.next(), null, 2 * 1024 * 1024);
    await until(() => body.readableLength >= 2 * 1024 * 1024, 'the read-ahead buffer to fill');
    expect(seen.taken).toBeLessThan(6);
    expect(seen.cleanedUp).toBe(false);
    // The client reads on: the rest follows, then the end.
    expect(await text(body)).toHaveLength(6 * (MB.length + 1));
    expect(seen.cleanedUp).toBe(true);
  });

  it('stops its source when destroyed early (the client went away)', async () => {
    const { seen, chunks } = source();
    const body = chunkStream(chunks, await chunks.next(), null, 1024);
    body.destroy();
    await until(() => seen.cleanedUp, 'the source cleanup after destroy');
    expect(seen.taken).toBeLessThan(6);
  });

  it('an empty source gives just the ending', async () => {
    async function* none(): AsyncGenerator<string> {}
    const chunks = none();
    expect(await text(chunkStream(chunks, await chunks.next(), ']}'))).toBe(']}');
  });
});
