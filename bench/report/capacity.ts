/*
 * The classroom's CPU arithmetic, from the steps that did all their work (0 errors, whether or not their
 * latencies held): what one more student costs each process,
 * how long a step lasts, and so how many cores a classroom of N needs on this machine's clock. A step's
 * length hardly depends on N when Lab keeps up (arrivals over a fixed window, then think times), so the
 * cores a step keeps busy grow with N until the machine has none left: past that no latency target can
 * hold, however the code is tuned, except by costing less per student.
 */

export interface CapacityStep {
  students: number;
  /** Lab did all of the step's work: no error, every student finished (a step with errors did less). */
  errors: number;
  /** The step's measured window, s (older results lack it). */
  wallS?: number;
  /** Cores busy per process over the window (lab-api-*, lab-grader-*, postgres, generators, …). */
  coresBy?: Record<string, number>;
}

type Role = 'api' | 'grader' | 'postgres' | 'generator';

/** Process names (lab-api-1, lab-grader-1, postgres, generators) by prefix. */
const ROLE_PREFIXES: [string, Role][] = [
  ['lab-api', 'api'],
  ['lab-grader', 'grader'],
  ['postgres', 'postgres'],
  ['generators', 'generator'],
];
const roleOf = (name: string): Role | null => ROLE_PREFIXES.find(([p]) => name.startsWith(p))?.[1] ?? null;

/** CPU-seconds used by each role over a step. */
function coreSeconds(step: Required<CapacityStep>): Record<Role, number> {
  const out: Record<Role, number> = { api: 0, grader: 0, postgres: 0, generator: 0 };
  for (const [name, cores] of Object.entries(step.coresBy)) {
    const role = roleOf(name);
    if (role) out[role] += cores * step.wallS;
  }
  return out;
}

export interface Capacity {
  /** 'marginal': the slope of a least-squares line through every complete step (N, CPU-s), by role; 'average': one complete step's cost per student (fixed costs included, so an upper bound). */
  method: 'marginal' | 'average';
  from: number[];
  /** Every complete step's N, smallest first. */
  complete: number[];
  /** CPU ms per student, by role. */
  msPerStudent: Record<Role, number>;
  labMsPerStudent: number;
  /** Fixed CPU-seconds of a step (start-up, instructors, samplers) for Lab and for the generator. */
  fixedLabS: number;
  fixedGeneratorS: number;
  /** Length of the largest complete step, s. */
  windowS: number;
  targetN: number;
  /** Cores a step of targetN students keeps busy: Lab's and the generator's. */
  labCoresAtTarget: number;
  generatorCoresAtTarget: number;
  machineCores: number;
  /** The largest N the machine's cores could serve at 100 % busy (no headroom for latency). */
  maxNAtFullMachine: number;
  /** Lab's CPU per student at which targetN would fit the machine at 100 % busy (the generator as measured). */
  labMsPerStudentForTarget: number;
}

const ROLES: Role[] = ['api', 'grader', 'postgres', 'generator'];
const LAB_ROLES: Role[] = ['api', 'grader', 'postgres'];
/** Complete steps this far apart give a marginal cost; closer ones differ by noise. */
const farApart = (lo: number, hi: number) => hi >= lo * 1.5;

export function classroomCapacity(
  steps: CapacityStep[],
  targetN: number,
  machineCores: number,
): Capacity | null {
  const held = steps
    .filter((s): s is Required<CapacityStep> => s.errors === 0 && !!s.wallS && !!s.coresBy)
    .sort((a, b) => a.students - b.students);
  const hi = held.at(-1);
  if (!hi) return null;
  const lo = held[0]!;
  const hiS = coreSeconds(hi);
  const lab = (x: Record<Role, number>) => LAB_ROLES.reduce((a, r) => a + x[r], 0);
  let method: Capacity['method'] = 'average';
  const per = {} as Record<Role, number>;
  const fixed = { api: 0, grader: 0, postgres: 0, generator: 0 } as Record<Role, number>;
  // Complete steps far enough apart give the marginal cost: a least-squares line through all of them
  // (a step repeated at one N counts each time; two points give the line through them). Repeated steps
  // of the same code differ a lot here, so every complete step is used, not just the extremes; a
  // noisy, non-positive slope falls back to the average.
  const lineOf = (role: Role | 'lab') => {
    const xs = held.map((st) => st.students);
    const ys = held.map((st) => {
      const secs = coreSeconds(st);
      return role === 'lab' ? lab(secs) : secs[role];
    });
    const mx = xs.reduce((a, x) => a + x, 0) / xs.length;
    const my = ys.reduce((a, y) => a + y, 0) / ys.length;
    const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
    const slope = xs.reduce((a, x, i) => a + (x - mx) * (ys[i]! - my), 0) / sxx;
    return { slope, intercept: my - slope * mx };
  };
  if (farApart(lo.students, hi.students) && lineOf('lab').slope > 0 && lineOf('generator').slope > 0) {
    method = 'marginal';
    for (const r of ROLES) {
      const line = lineOf(r);
      per[r] = Math.max(0, line.slope);
      fixed[r] = Math.max(0, line.intercept);
    }
  } else for (const r of ROLES) per[r] = hiS[r] / hi.students;
  const labPer = lab(per);
  const fixedLab = lab(fixed);
  const window = hi.wallS;
  const labCores = (fixedLab + labPer * targetN) / window;
  const genCores = (fixed.generator + per.generator * targetN) / window;
  const budget = machineCores * window - fixedLab - fixed.generator;
  return {
    method,
    from: method === 'marginal' ? held.map((st) => st.students) : [hi.students],
    complete: held.map((st) => st.students),
    msPerStudent: Object.fromEntries(ROLES.map((r) => [r, per[r] * 1000])) as Record<Role, number>,
    labMsPerStudent: labPer * 1000,
    fixedLabS: fixedLab,
    fixedGeneratorS: fixed.generator,
    windowS: window,
    targetN,
    labCoresAtTarget: labCores,
    generatorCoresAtTarget: genCores,
    machineCores,
    maxNAtFullMachine: Math.max(0, Math.floor(budget / (labPer + per.generator))),
    labMsPerStudentForTarget: Math.max(0, ((budget - per.generator * targetN) / targetN) * 1000),
  };
}

const f1 = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 });
const f2 = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 2, minimumFractionDigits: 2 });
const int = (n: number) => Math.round(n).toLocaleString('en-US');

/** Why the average of one step was used: the only complete step, steps too close, or a line that did not rise. */
function averageReason(c: Capacity): string {
  const steps = c.complete.map(int).join(', ');
  if (c.complete.length < 2) return 'the only complete step';
  if (!farApart(c.complete[0]!, c.complete.at(-1)!))
    return `the largest of the complete steps N = ${steps}, less than 1.5× apart: too close for a marginal cost`;
  return `the largest of the complete steps N = ${steps}, whose CPU did not rise with N: noise, no marginal cost`;
}

/** The arithmetic as the report's paragraph; every figure from `c`. */
export function capacitySentence(c: Capacity): string {
  const how =
    c.method === 'marginal'
      ? c.from.length === 2
        ? `between the steps N = ${int(c.from[0]!)} and N = ${int(c.from[1]!)}, one more student cost`
        : `fitted through the complete steps N = ${c.from.map(int).join(', ')} (least squares), one more student cost`
      : `at the step N = ${int(c.from[0]!)} (${averageReason(c)}; fixed costs included, so an upper bound), a student cost`;
  const need = c.labCoresAtTarget + c.generatorCoresAtTarget;
  const fits = need <= c.machineCores;
  return (
    `**CPU arithmetic** (computed from the per-process CPU of the steps that did all their work, 0 errors): ${how} ${f1(c.labMsPerStudent)} ms of Lab's CPU ` +
    `(API ${f1(c.msPerStudent.api)}, Postgres ${f1(c.msPerStudent.postgres)}, grader ${f1(c.msPerStudent.grader)}) and ` +
    `${f1(c.msPerStudent.generator)} ms of the generator's; a step lasts ≈ ${int(c.windowS)} s whatever N ` +
    `when it keeps up (arrivals over a fixed window, then think times), ${
      c.method === 'marginal'
        ? `with ${f1(c.fixedLabS)} CPU-s of fixed cost (start-up, instructors). `
        : 'its fixed costs (start-up, instructors) counted per student. '
    }` +
    `So N = ${int(c.targetN)} keeps ≈ ${f2(need)} cores busy (Lab ${f2(c.labCoresAtTarget)}, generator ${f2(c.generatorCoresAtTarget)}) ` +
    `on this ${c.machineCores}-core machine: ${
      fits
        ? 'it fits by CPU; what fails it is latency, not capacity.'
        : `**beyond this machine by CPU alone**, before any latency target: at 100 % of ${c.machineCores} cores the same costs allow N ≈ ${int(c.maxNAtFullMachine)}, ` +
          `and N = ${int(c.targetN)} would need Lab at ≤ ${f1(c.labMsPerStudentForTarget)} ms of CPU per student.`
    }`
  );
}
