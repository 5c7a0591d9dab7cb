import { describe, expect, it } from 'vitest';
import { formatCursor, MAX_OPEN_IDS, parseCursor } from './event-cursor.ts';

describe('SSE event cursor', () => {
  it('is the plain id when nothing below it is open, so older Last-Event-IDs still parse', () => {
    expect(formatCursor({ after: 42, open: [] })).toBe('42');
    expect(parseCursor('42')).toEqual({ after: 42, open: [] });
  });

  it('lists the open ids below `after`, sorted and once each; ids at or above it are covered by `after`', () => {
    const text = formatCursor({ after: 50, open: [49, 12, 49, 50, 61] });
    expect(text).toBe('50;12,49');
    expect(parseCursor(text)).toEqual({ after: 50, open: [12, 49] });
  });

  it(`keeps the newest ${MAX_OPEN_IDS} open ids`, () => {
    const open = Array.from({ length: 100 }, (_, i) => i + 1);
    const parsed = parseCursor(formatCursor({ after: 1000, open }))!;
    expect(parsed.open).toHaveLength(MAX_OPEN_IDS);
    expect(parsed.open[0]).toBe(100 - MAX_OPEN_IDS + 1);
    expect(parsed.open.at(-1)).toBe(100);
  });

  it('refuses anything else: the stream then starts from now', () => {
    const tooMany = `1000;${Array.from({ length: MAX_OPEN_IDS + 1 }, (_, i) => i + 1).join(',')}`;
    for (const bad of [
      undefined,
      '',
      'abc',
      '-1',
      '1;',
      '1;2,',
      ';1',
      '1 2',
      '1;x',
      '1234567890123456',
      tooMany,
    ])
      expect(parseCursor(bad)).toBeNull();
    // An open id at or above `after` asks for nothing more than `after` does.
    expect(parseCursor('7;3,7,9')).toEqual({ after: 7, open: [3] });
  });
});
