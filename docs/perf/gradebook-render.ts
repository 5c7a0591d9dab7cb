// `node --expose-gc --max-semi-space-size=64 --import tsx docs/perf/gradebook-render.ts [commit]`: the
// gradebook renderers of `commit` (default 5e7e4ba: text built as strings) against today's (bytes), on
// one 500-student × 20-exercise batch, warm: median time of 40 batches rendered *and* encoded to bytes
// (what reaches the socket; the string renderer's text was encoded by the stream), and the young
// generation's growth while rendering one batch right after a full GC (allocation; nothing is collected
// in between with a 64 MB semi-space). Writes a temporary copy of the old module, removed on exit.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { ROOT } from '../../bench/lib/env.ts';
import * as now from '../../src/modules/gradebook/gradebook.render.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc (see the first line)');
const commit = process.argv[2] ?? '5e7e4ba';
const oldFile = path.join(ROOT, 'src/modules/gradebook/.old-gradebook.render.tmp.ts');
fs.writeFileSync(
  oldFile,
  execFileSync('git', ['show', `${commit}:src/modules/gradebook/gradebook.render.ts`], { cwd: ROOT, encoding: 'utf8' }),
);
try {
  const old: typeof now = await import(oldFile);
  const columns = Array.from({ length: 20 }, (_, i) => ({
    id: crypto.randomUUID(),
    title: `Exercise ${i + 1}`,
    max_score: '10',
    published_at: null,
  }));
  const rows = Array.from({ length: 500 }, (_, s) => ({
    id: crypto.randomUUID(),
    name: `Student Number ${s}`,
    email: `student${s}@example.edu`,
    cells: Array.from(
      { length: 20 },
      (_, i) =>
        `${i + 1},${(s * 7 + i) % 11 === 0 ? '' : ((s + i) % 10) + 0.5},${(s + i) % 13 === 0 ? 'l' : ''},${1 + ((s + i) % 3)}`,
    ).join(';'),
  }));
  const young = () => v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')!.space_used_size;
  // Each version twice, alternately: the first runs in a colder process.
  for (const [version, lib] of [
    [commit, old],
    ['now', now],
    [commit, old],
    ['now', now],
  ] as const) {
    for (const format of ['csv', 'json'] as const) {
      const render = (format === 'csv' ? lib.csvRenderer : lib.jsonRenderer)(columns);
      const bytes = () => {
        const out: string | Buffer = render.students(rows);
        return typeof out === 'string' ? Buffer.from(out) : out;
      };
      for (let i = 0; i < 50; i++) bytes();
      const times: number[] = [];
      for (let i = 0; i < 40; i++) {
        const t = performance.now();
        bytes();
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      gc();
      const before = young();
      const out = bytes();
      const allocated = young() - before;
      console.log(
        `${version.padEnd(8)} ${format}: ${times[20]!.toFixed(2)} ms per batch (median of 40), ${Math.round(allocated / 1024)} kB allocated, ${out.length} bytes out`,
      );
    }
  }
} finally {
  fs.rmSync(oldFile, { force: true });
}
