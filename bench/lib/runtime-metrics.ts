/**
 * The garbage collections of a Lab instance between two scrapes of its /metrics (prom-client's default
 * metrics, running totals fed by V8's GC events): a scavenge (young generation) stops the event loop, so
 * long or frequent ones show in every request that arrives meanwhile. (prom-client's event-loop delay
 * gauges are not used: Node's delay histogram, reset at every scrape, did not record an 80 ms stall in
 * a test here.)
 */
export interface RuntimeSample {
  scavenges: number;
  /** Scavenges that took over 10 ms (the histogram's bucket boundary). */
  scavengesOver10ms: number;
  /** Wall time in garbage collection of any kind, ms. */
  gcMs: number;
}

interface Scrape {
  minorCount: number;
  minorUnder10ms: number;
  gcSeconds: number;
}

/** The figures of one Prometheus text exposition that RuntimeSample needs. */
export function parseRuntime(text: string): Scrape {
  const scrape: Scrape = { minorCount: 0, minorUnder10ms: 0, gcSeconds: 0 };
  for (const line of text.split('\n')) {
    const [name, value] = line.split(' ');
    if (name === undefined || value === undefined) continue;
    const v = Number(value);
    if (name === 'nodejs_gc_duration_seconds_count{kind="minor"}') scrape.minorCount = v;
    else if (name === 'nodejs_gc_duration_seconds_bucket{le="0.01",kind="minor"}') scrape.minorUnder10ms = v;
    else if (name.startsWith('nodejs_gc_duration_seconds_sum{')) scrape.gcSeconds += v;
  }
  return scrape;
}

export function runtimeBetween(before: Scrape, after: Scrape): RuntimeSample {
  const scavenges = after.minorCount - before.minorCount;
  return {
    scavenges,
    scavengesOver10ms: scavenges - (after.minorUnder10ms - before.minorUnder10ms),
    gcMs: Math.round((after.gcSeconds - before.gcSeconds) * 1000),
  };
}

export async function scrapeRuntime(baseUrl: string): Promise<Scrape> {
  const res = await fetch(`${baseUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseRuntime(await res.text());
}
