import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** Renders a Vega-Lite spec to an SVG string (vega's headless renderer; no canvas needed for SVG). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = compile({ background: 'white', ...spec } as TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

const FONT = {
  config: { font: 'Helvetica, Arial, sans-serif', axis: { labelFontSize: 11, titleFontSize: 12 } },
};

export function latencyChart(
  title: string,
  series: { name: string; curve: { percentile: number; ms: number }[] }[],
): TopLevelSpec {
  const values = series.flatMap((s) =>
    s.curve.map((c) => ({
      series: s.name,
      percentile: `p${c.percentile}`,
      order: c.percentile,
      ms: Math.max(0.01, c.ms),
    })),
  );
  return {
    ...FONT,
    title,
    width: 520,
    height: 260,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'percentile', type: 'ordinal', sort: { field: 'order' }, title: 'percentile' },
      y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'latency (ms, log scale)' },
      color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'top-left' } },
    },
  } as TopLevelSpec;
}

export function scalingChart(
  runs: { instances: number; rps: number; p99: number }[],
  cores: number,
): TopLevelSpec {
  return {
    ...FONT,
    title: {
      text: 'Read throughput vs API instances',
      subtitle: `${cores} CPU cores shared by the instances, Postgres and the load generator`,
    },
    width: 420,
    height: 260,
    data: { values: runs.map((r) => ({ ...r, label: `${Math.round(r.rps)} rps` })) },
    layer: [
      {
        mark: { type: 'bar', color: '#4c78a8' },
        encoding: {
          x: { field: 'instances', type: 'ordinal', title: 'API instances', axis: { labelAngle: 0 } },
          y: { field: 'rps', type: 'quantitative', title: 'requests/s' },
        },
      },
      {
        mark: { type: 'text', dy: -8 },
        encoding: {
          x: { field: 'instances', type: 'ordinal' },
          y: { field: 'rps', type: 'quantitative' },
          text: { field: 'label' },
        },
      },
    ],
  } as TopLevelSpec;
}

export function classroomChart(
  steps: { students: number; readP99: number; holds: boolean; verdict?: string }[],
  limitMs: number,
): TopLevelSpec {
  const values = steps.map((x, i) => ({
    ...x,
    step: i + 1,
    result: x.verdict === 'inconclusive' ? 'generator-bound' : x.holds ? 'holds' : 'fails',
  }));
  return {
    ...FONT,
    title: {
      text: 'Classroom: virtual students vs read p99',
      subtitle: `one point per run; it holds below ${limitMs} ms (dashed), submit→result p50 < 300 ms, 0 errors`,
    },
    width: 460,
    height: 260,
    layer: [
      {
        data: { values },
        mark: { type: 'point', size: 140, filled: true, opacity: 0.85 },
        encoding: {
          x: {
            field: 'students',
            type: 'quantitative',
            title: 'virtual students (N)',
            scale: { zero: true },
          },
          y: {
            field: 'readP99',
            type: 'quantitative',
            title: 'read p99 (ms, log scale)',
            scale: { type: 'log' },
          },
          color: {
            field: 'result',
            type: 'nominal',
            scale: {
              domain: ['holds', 'fails', 'generator-bound'],
              range: ['#54a24b', '#e45756', '#9d9d9d'],
            },
            title: null,
          },
        },
      },
      {
        data: { values: [{ y: limitMs }] },
        mark: { type: 'rule', strokeDash: [4, 4], color: '#888' },
        encoding: { y: { field: 'y', type: 'quantitative' } },
      },
    ],
  } as TopLevelSpec;
}
