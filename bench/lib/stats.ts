export interface Latency {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Latency samples in ms. The bench records at most some hundred thousand, so a plain array does. */
export class Recorder {
  private samples: number[] = [];
  private sorted = true;

  record(ms: number) {
    this.samples.push(ms);
    this.sorted = false;
  }

  get count() {
    return this.samples.length;
  }

  at(p: number): number {
    if (this.samples.length === 0) return 0;
    if (!this.sorted) {
      this.samples.sort((a, b) => a - b);
      this.sorted = true;
    }
    const i = Math.min(this.samples.length - 1, Math.max(0, Math.ceil((p / 100) * this.samples.length) - 1));
    return round(this.samples[i]!);
  }

  summary(): Latency {
    const n = this.samples.length;
    const mean = n ? this.samples.reduce((a, b) => a + b, 0) / n : 0;
    return {
      count: n,
      p50: this.at(50),
      p95: this.at(95),
      p99: this.at(99),
      max: this.at(100),
      mean: round(mean),
    };
  }

  /** Percentile curve for the latency-distribution chart. */
  curve(): { percentile: number; ms: number }[] {
    return PERCENTILES.map((p) => ({ percentile: p, ms: this.at(p) }));
  }
}

export const PERCENTILES = [1, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.9];

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || b === 0) return null;
  return round(a / b, 3);
}
