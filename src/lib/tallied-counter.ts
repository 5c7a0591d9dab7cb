import client from 'prom-client';

/** A per-label-set count that costs one integer increment. */
export interface Tally {
  inc(): void;
}

/**
 * A prom-client Counter for hot paths: each label set's count is a plain number, added to the counter
 * when the registry collects it (a scrape). prom-client 15 hashes and validates the label object on
 * every `inc`, `labels(…)` children included; once per request per counter that showed in the read
 * path's profile (docs/perf/lesson-read-profile.md). Exported values are the same, as of the scrape.
 */
export function talliedCounter<L extends string>(
  config: Omit<client.CounterConfiguration<L>, 'collect'>,
): { counter: client.Counter<L>; tally(labels: client.LabelValues<L>): Tally } {
  const tallies: { labels: client.LabelValues<L>; count: number; exported: number }[] = [];
  const counter: client.Counter<L> = new client.Counter<L>({
    ...config,
    collect() {
      for (const t of tallies) {
        if (t.count === t.exported) continue;
        counter.inc(t.labels, t.count - t.exported);
        t.exported = t.count;
      }
    },
  });
  return {
    counter,
    tally(labels) {
      const t = { labels, count: 0, exported: 0 };
      tallies.push(t);
      return {
        inc() {
          t.count += 1;
        },
      };
    },
  };
}
