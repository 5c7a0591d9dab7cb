import { describe, expect, it } from 'vitest';
import { DeadlineList } from './deadline-list.ts';

describe('DeadlineList', () => {
  it('returns the due items earliest first and keeps the rest', () => {
    const list = new DeadlineList<string>();
    list.add('a', 10);
    list.add('b', 20);
    list.add('c', 30);
    expect(list.takeDue(5)).toEqual([]);
    expect(list.takeDue(20)).toEqual(['a', 'b']);
    expect(list.size).toBe(1);
    expect(list.takeDue(100)).toEqual(['c']);
    expect(list.size).toBe(0);
    expect(list.takeDue(1000)).toEqual([]);
  });

  it('removes the head, a middle item and the tail, and a removal twice counts once', () => {
    const list = new DeadlineList<number>();
    const entries = [1, 2, 3, 4, 5].map((n) => list.add(n, n));
    list.remove(entries[0]!);
    list.remove(entries[2]!);
    list.remove(entries[4]!);
    list.remove(entries[2]!);
    expect(list.size).toBe(2);
    expect(list.takeDue(10)).toEqual([2, 4]);
    // The list still works after being emptied: the tail was reset with the head.
    list.add(6, 6);
    expect(list.takeDue(10)).toEqual([6]);
  });

  it('unlinks a removed entry both ways, so it holds no other item', () => {
    const list = new DeadlineList<object>();
    const a = list.add({}, 1);
    const b = list.add({}, 2);
    const c = list.add({}, 3);
    list.remove(b);
    expect([b.prev, b.next, b.linked]).toEqual([null, null, false]);
    expect(a.next).toBe(c);
    expect(c.prev).toBe(a);
    // An entry taken as due is removed too: removing it afterwards (the response finishing) is a no-op.
    expect(list.takeDue(1)).toEqual([a.item]);
    list.remove(a);
    expect(list.size).toBe(1);
  });
});
