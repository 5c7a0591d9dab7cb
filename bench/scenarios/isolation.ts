import { BoundedPool } from '../../src/db/pool.ts';
import { LESSON_PAGE_CACHED_CALLER } from '../baseline/sql.ts';
import { type Ctx, resetStatements, statementStats, withLab } from '../lib/context.ts';
import { sleep } from '../lib/env.ts';
import { runLoad } from '../lib/load.ts';
import { type OpenLoadResult, runOpenLoad } from '../lib/open-load.ts';
import { type RuntimeSample, runtimeBetween, scrapeRuntime } from '../lib/runtime-metrics.ts';
import { bigCourse } from '../lib/seed.ts';
import { Recorder, ratio, round } from '../lib/stats.ts';

/**
 * Scenario 2: light reads with and without 1 % heavy requests (a big course's gradebook as CSV) on one
 * Lab instance, in an open model (fixed arrival rate, latency from each request's scheduled start) so
 * latency is not hidden by a slowed-down client (coordinated omission).
 * Separately, the async twin of the head-of-line trap with the driver itself: 1 % of queries hold
 * 500 ms in Postgres (pg_sleep), on one connection, on one shared pool, and on Lab's split pools.
 */
/** Pairs of (light alone, light with heavy) run one after another; the median pair's ratio counts. */
const ISOLATION_ROUNDS = 3;
/** Heavy requests sent alone, one after another, before the load: how heavy one is. */
const HEAVY_ALONE = 5;

export async function isolationScenario(ctx: Ctx) {
  const quick = ctx.opts.quick;
  const { course: big, ...bigFigures } = await bigCourse(ctx.env.admin, quick, ctx.log);
  const lightPath = `/api/v1/lessons/${ctx.course.lessonIds[0]}`;
  const lightHeaders = { authorization: `Bearer ${ctx.course.students[0]!.token}` };
  const heavyPath = `/api/v1/courses/${big.courseId}/gradebook?format=csv`;
  const heavyHeaders = { authorization: `Bearer ${big.instructor.token}` };
  const lightRate = quick ? 300 : 500;
  const heavyRate = lightRate / 99; // 1 % of all requests
  const D = ctx.opts.durationS;

  const http = await withLab(
    ctx,
    1,
    async ([url]) => {
      // The heavy request alone, a few times: how heavy it is.
      const heavyAlone = new Recorder();
      let csvBytes = 0;
      await resetStatements(ctx);
      for (let i = 0; i < HEAVY_ALONE; i++) {
        const s = performance.now();
        const res = await fetch(url + heavyPath, { headers: heavyHeaders });
        const text = await res.text();
        if (res.status !== 200)
          throw new Error(`gradebook CSV answered ${res.status}: ${text.slice(0, 200)}`);
        csvBytes = text.length;
        heavyAlone.record(performance.now() - s);
      }
      // Where the heavy request's time goes: every statement Lab ran for the five requests, in Postgres
      // (the cursor's DECLARE, its FETCHes of a batch of rows, which do the work, the access checks), per
      // request, vs. the rest (Lab, network, the client reading).
      const labRole = ctx.env.labRole;
      const heavyStatements = await statementStats(ctx, labRole, 100);
      const heavyStatement = heavyStatements[0] ?? null;
      // A FETCH's time is the cursor's query running, which pg_stat_statements also records as that
      // query (at the cursor's end): counted once, as the query.
      const heavyPgMsPerRequest = heavyStatement
        ? round(
            heavyStatements
              .filter((st) => !/^fetch /i.test(st.query))
              .reduce((sum, st) => sum + st.totalMs, 0) / HEAVY_ALONE,
            1,
          )
        : null;
      for (const st of heavyStatements.slice(0, 6))
        ctx.log(`  ${st.calls} × ${st.meanMs} ms (total ${st.totalMs} ms): ${st.query.slice(0, 90)}`);
      // Rows per FETCH, as Lab sent it (pg_stat_statements keeps the literal of `fetch N from …`).
      const fetchRows = heavyStatements
        .map((st) => /^fetch (\d+) from/i.exec(st.query)?.[1])
        .find((n) => n !== undefined);
      const heavyFetchRows = fetchRows === undefined ? null : Number(fetchRows);
      const heavyStatementsPerRequest = heavyStatement
        ? round(heavyStatements.reduce((sum, st) => sum + st.calls, 0) / HEAVY_ALONE, 1)
        : null;
      ctx.log(
        `heavy request alone: p50 ${heavyAlone.summary().p50} ms (${Math.round(csvBytes / 1000)} kB CSV), of which ${heavyPgMsPerRequest} ms in Postgres (${heavyStatementsPerRequest} statements per request)`,
      );
      await runLoad({
        url: url + lightPath,
        connections: 16,
        durationS: 1,
        headers: lightHeaders,
        label: 'warm-up',
      });
      const light = () =>
        runOpenLoad({
          url: url + lightPath,
          maxConnections: LIGHT_CONNECTIONS,
          durationS: D,
          headers: lightHeaders,
          ratePerS: lightRate,
          label: 'light',
          progress: ctx.progress,
        });
      // Alternating rounds of light alone and light with heavy: on this shared 2-core machine one pair
      // swung from 1.3× to 3.2× between consecutive runs of the same code, so the ratio is the median
      // round's, and every round's is reported.
      const rounds: {
        baseline: OpenLoadResult;
        withHeavy: OpenLoadResult;
        heavy: OpenLoadResult;
        gc: { alone: RuntimeSample; withHeavy: RuntimeSample };
      }[] = [];
      for (let r = 0; r < (quick ? 1 : ISOLATION_ROUNDS); r++) {
        // The instance's garbage collections in each phase: a scavenge stops its event loop.
        const s0 = await scrapeRuntime(url!);
        const baselineRound = await light();
        const s1 = await scrapeRuntime(url!);
        await sleep(500);
        const s2 = await scrapeRuntime(url!);
        const [withHeavyRound, heavyRound] = await Promise.all([
          light(),
          runOpenLoad({
            url: url + heavyPath,
            maxConnections: HEAVY_CONNECTIONS,
            durationS: D,
            headers: heavyHeaders,
            ratePerS: heavyRate,
            label: 'heavy',
            timeoutMs: 30_000,
          }),
        ]);
        const gc = {
          alone: runtimeBetween(s0, s1),
          withHeavy: runtimeBetween(s2, await scrapeRuntime(url!)),
        };
        rounds.push({ baseline: baselineRound, withHeavy: withHeavyRound, heavy: heavyRound, gc });
        ctx.log(
          `round ${r + 1}: light p99 ${baselineRound.latency.p99} ms alone → ${withHeavyRound.latency.p99} ms with heavy; ` +
            `Lab's scavenges ${gc.alone.scavenges} (${gc.alone.scavengesOver10ms} over 10 ms) → ${gc.withHeavy.scavenges} (${gc.withHeavy.scavengesOver10ms})`,
        );
      }
      const roundRatios = rounds.map(
        (r) => ratio(r.withHeavy.latency.p99, r.baseline.latency.p99) ?? Infinity,
      );
      const median = [...rounds.keys()].sort((a, b) => roundRatios[a]! - roundRatios[b]!)[
        Math.floor(rounds.length / 2)
      ]!;
      const { baseline, withHeavy, heavy, gc } = rounds[median]!;
      const failures = rounds.reduce(
        (sum, r) => sum + r.baseline.failed + r.withHeavy.failed + r.heavy.failed,
        0,
      );
      const summary = (r: OpenLoadResult) => ({
        scheduled: r.scheduled,
        okPerS: r.okPerS,
        p50: r.latency.p50,
        p99: r.latency.p99,
        max: r.latency.max,
        serviceP99: r.serviceTime.p99,
        latenessP99: r.lateness.p99,
        failed: r.failed,
        statuses: r.statuses,
      });
      ctx.log(
        `light p99 ${baseline.latency.p99} ms alone → ${withHeavy.latency.p99} ms with heavy (from the schedule; from issue: ${baseline.serviceTime.p99} → ${withHeavy.serviceTime.p99} ms); ` +
          `${heavy.scheduled} heavy, ${heavy.non2xx} non-2xx; failures light ${baseline.failed} + ${withHeavy.failed}, heavy ${heavy.failed}`,
      );
      const p99Ratio = ratio(withHeavy.latency.p99, baseline.latency.p99);
      return {
        lightRate,
        heavyRate: round(heavyRate, 2),
        lightConnections: LIGHT_CONNECTIONS,
        heavyConnections: HEAVY_CONNECTIONS,
        heavyAlone: heavyAlone.summary(),
        heavyPgMsPerRequest,
        heavyStatementsPerRequest,
        heavyFetchRows,
        heavyStatement: heavyStatement?.query ?? null,
        heavyNodeMs:
          heavyPgMsPerRequest == null ? null : round(heavyAlone.summary().p50 - heavyPgMsPerRequest, 1),
        csvBytes,
        baseline: summary(baseline),
        withHeavy: summary(withHeavy),
        heavy: summary(heavy),
        curves: { baseline: baseline.curve, withHeavy: withHeavy.curve },
        p99Ratio,
        /** The median round's collections on Lab's instance, light alone and with heavy. */
        gc,
        rounds: rounds.length,
        roundRatios: roundRatios.map((x) => round(x, 2)),
        failures,
        // Every failure (an error, a time-out, a 503 from the heavy limiter) counts against the target.
        target: { p99Ratio: 2, met: p99Ratio != null && p99Ratio <= 2 && failures === 0 },
      };
    },
    { SHUTDOWN_GRACE_MS: '0' },
  );

  const driver = await pipeliningTrap(ctx);
  return {
    bigCourse: bigFigures,
    http,
    driver,
  };
}

const LIGHT_CONNECTIONS = 32;
const HEAVY_CONNECTIONS = 4;

interface TrapVariant {
  name: string;
  fast: ReturnType<Recorder['summary']>;
  slow: ReturnType<Recorder['summary']>;
  fastErrors: number;
  slowErrors: number;
  /** Queries still unanswered 15 s after the last was issued (counted as errors too). */
  unfinished: number;
}

/**
 * The driver-level twin: fast queries (the lesson read) at a fixed rate with 1 % `pg_sleep(0.5)`.
 * Latency is counted from the scheduled start, so time spent queued in the driver counts.
 */
async function pipeliningTrap(ctx: Ctx) {
  const rate = ctx.opts.quick ? 150 : 200;
  const durationS = ctx.opts.quick ? 3 : 6;
  const lessonId = ctx.course.lessonIds[0]!;
  const userId = ctx.course.students[0]!.id;
  const mkPool = (max: number, name: string) =>
    new BoundedPool({
      connectionString: ctx.env.databaseUrl,
      max,
      acquireTimeoutMs: 2000,
      maxWaiting: 200,
      statementTimeoutMs: 5000,
      applicationName: `lab:bench-${name}`,
    });
  const fastQuery = { name: 'bench_lesson', text: LESSON_PAGE_CACHED_CALLER, values: [lessonId, userId] };

  async function variant(
    name: string,
    fastPool: BoundedPool,
    slowPool: BoundedPool,
    slowShare: number,
  ): Promise<TrapVariant> {
    const fast = new Recorder();
    const slow = new Recorder();
    let fastErrors = 0;
    let slowErrors = 0;
    // warm the connections
    await Promise.all(Array.from({ length: 4 }, () => fastPool.query(fastQuery)));
    const bar = ctx.progress.phase(`driver: ${name}`, durationS, 's');
    const inflight: Promise<void>[] = [];
    const total = rate * durationS;
    const start = performance.now();
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      if (i % rate === 0) bar.update(i / rate);
      const isSlow = slowShare > 0 && i % Math.round(1 / slowShare) === 50;
      // Counted from the scheduled time (so a late loop's delay counts, as an open model requires), or
      // from now when the loop issues it a moment early.
      const from = Math.min(due, performance.now());
      inflight.push(
        (isSlow ? slowPool.query('select pg_sleep(0.5)') : fastPool.query(fastQuery)).then(
          () => (isSlow ? slow : fast).record(performance.now() - from),
          () => {
            if (isSlow) slowErrors += 1;
            else fastErrors += 1;
          },
        ),
      );
    }
    let settled = 0;
    for (const p of inflight) void p.then(() => settled++);
    await Promise.race([Promise.all(inflight), sleep(15_000)]);
    bar.done();
    const unfinished = inflight.length - settled;
    const r = {
      name,
      fast: fast.summary(),
      slow: slow.summary(),
      fastErrors: fastErrors + unfinished,
      slowErrors,
      unfinished,
    };
    ctx.log(
      `driver ${name}: fast p50 ${r.fast.p50} ms p99 ${r.fast.p99} ms (${r.fastErrors + r.slowErrors} errors)`,
    );
    return r;
  }

  const variants: TrapVariant[] = [];
  // pg.Client runs one query at a time and queues the rest: what pipelining does to a connection.
  const one = mkPool(1, 'one');
  const shared = mkPool(4, 'shared');
  const light = mkPool(4, 'light');
  const heavy = mkPool(1, 'heavy');
  try {
    variants.push(await variant('no slow queries, pool of 4', shared, shared, 0));
    variants.push(await variant('one connection shared (queued like a pipeline)', one, one, 0.01));
    variants.push(await variant('one pool of 4 shared by fast and slow', shared, shared, 0.01));
    variants.push(await variant("Lab's split: light pool 4 + heavy pool 1", light, heavy, 0.01));
  } finally {
    await Promise.all([one.end(), shared.end(), light.end(), heavy.end()]);
  }
  return { rate, durationS, slowShare: 0.01, slowQuery: 'select pg_sleep(0.5)', variants };
}
