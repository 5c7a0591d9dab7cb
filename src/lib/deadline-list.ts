/** One item of a DeadlineList; its holder keeps it to remove the item in O(1). */
export interface DeadlineEntry<T> {
  readonly item: T;
  readonly deadline: number;
  prev: DeadlineEntry<T> | null;
  next: DeadlineEntry<T> | null;
  linked: boolean;
}

/**
 * Items with a deadline, added in deadline order (every item gets the same time limit), as a doubly
 * linked list: adding and removing are O(1), and the due items are at the head.
 *
 * Not a Map or a Set: one that got each request's object on arrival and lost it on response made V8
 * (Node 20) promote whole requests to the old generation — on Lab's lesson read ~1 kB per request,
 * scavenges of ~4 ms instead of ~1.5 and a major GC every 2 s, where the same load without it promoted
 * ~15 B per request (docs/perf/lesson-read-profile.md, "Promotion"). A removed entry here is unlinked
 * both ways, so nothing keeps a finished request reachable.
 */
export class DeadlineList<T> {
  private head: DeadlineEntry<T> | null = null;
  private tail: DeadlineEntry<T> | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(item: T, deadline: number): DeadlineEntry<T> {
    const entry: DeadlineEntry<T> = { item, deadline, prev: this.tail, next: null, linked: true };
    if (this.tail) this.tail.next = entry;
    else this.head = entry;
    this.tail = entry;
    this.count++;
    return entry;
  }

  /** Removes the entry; removing it again (or after takeDue returned it) does nothing. */
  remove(entry: DeadlineEntry<T>): void {
    if (!entry.linked) return;
    if (entry.prev) entry.prev.next = entry.next;
    else this.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.tail = entry.prev;
    entry.prev = null;
    entry.next = null;
    entry.linked = false;
    this.count--;
  }

  /** Removes and returns the items whose deadline is at or before `now`, earliest first. */
  takeDue(now: number): T[] {
    const due: T[] = [];
    while (this.head !== null && this.head.deadline <= now) {
      const entry = this.head;
      this.remove(entry);
      due.push(entry.item);
    }
    return due;
  }
}
