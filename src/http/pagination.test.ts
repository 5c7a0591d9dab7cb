import { describe, expect, it } from 'vitest';
import { encodeCursor, parseCursor, toPage } from './pagination.ts';

const id = '0b8f5c1e-3f7a-4c2e-9d1b-5a6e7f8a9b0c';
const wire = (k: unknown) => Buffer.from(JSON.stringify([k, id])).toString('base64url');

describe('cursor', () => {
  it('round-trips [timestamp, id], keeping the microseconds', () => {
    const at = '2026-12-01 05:31:42.123456+00';
    expect(parseCursor(encodeCursor({ at, id }))).toEqual({ at, id });
    expect(parseCursor(undefined)).toBeNull();
    expect(parseCursor('')).toBeNull();
  });

  it('reads the earlier microsecond cursors of courses and members as the same instant', () => {
    const us = Date.UTC(2026, 11, 1, 5, 31, 42, 123) * 1000 + 456;
    expect(parseCursor(wire(us))).toEqual({ at: '2026-12-01T05:31:42.123456Z', id });
    expect(parseCursor(wire(7))).toEqual({ at: '1970-01-01T00:00:00.000007Z', id });
  });

  it.each([
    ['not base64 json', 'nope'],
    ['a bad id', Buffer.from(JSON.stringify(['2026-12-01 05:31:42+00', 'x'])).toString('base64url')],
    ['an impossible date', wire('2021-02-31 00:00:00+00')],
    ['a negative count', wire(-1)],
    ['a count too large to be exact', wire(2 ** 60)],
    ['three elements', Buffer.from(JSON.stringify([1, id, 2])).toString('base64url')],
  ])('refuses %s with 400 on the cursor field', (_what, raw) => {
    expect(() => parseCursor(raw)).toThrow(
      expect.objectContaining({ statusCode: 400, code: 'validation_failed' }),
    );
  });

  it('toPage returns limit items and the cursor of the last one when there are more', () => {
    const rows = [1, 2, 3].map((n) => ({ n, at: `2026-12-01 00:00:0${n}+00` }));
    const page = toPage(
      rows,
      2,
      (r) => ({ at: r.at, id }),
      (r) => r.n,
    );
    expect(page.items).toEqual([1, 2]);
    expect(parseCursor(page.nextCursor!)).toEqual({ at: rows[1]!.at, id });
    expect(
      toPage(
        rows,
        3,
        (r) => ({ at: r.at, id }),
        (r) => r.n,
      ).nextCursor,
    ).toBeNull();
  });
});
