import { describe, expect, it } from 'vitest';
import { withTestApp } from '../../test/app.ts';
import { loadConfig } from '../config.ts';
import {
  BudgetError,
  checkBudget,
  computeBudget,
  computeReplicaBudget,
  crowdedWarning,
  fleetFromConfig,
  formatBudget,
  readConnectionUsage,
  readServerLimits,
  type ServerLimits,
  withAdminClient,
} from './budget.ts';
import { freePort } from './embedded.ts';
import { formatNodes, inspectNode, reachReplicas, readStandbys } from './nodes.ts';

const ctx = withTestApp();

const pg15: ServerLimits = {
  version: '15.4',
  versionNum: 150004,
  maxConnections: 100,
  superuserReserved: 3,
  reserved: 0,
};
const pg16: ServerLimits = {
  version: '16.2',
  versionNum: 160002,
  maxConnections: 100,
  superuserReserved: 3,
  reserved: 2,
};

describe('computeBudget', () => {
  it('adds instances × (pool + heavy + listen) + graders × pool + reserve and compares with what is left', () => {
    const fleet = { instances: 3, poolMax: 4, heavyPoolMax: 1, graders: 2, graderPoolMax: 2, reserve: 5 };
    const b = computeBudget(fleet, pg15);
    expect(b.need).toBe(3 * 6 + 2 * 2 + 5);
    expect(b.available).toBe(97);
    expect(b.fits).toBe(true);
    expect(b.arithmetic).toBe('3 × (4+1+1) + 2 × 2 + 5 = 27 ≤ 100 − 3 = 97');
    expect(b.rows.map((r) => r.total)).toEqual([18, 4, 5]);
  });

  it('refuses the seed server’s shape: 3 × 200 connections on a 100-connection server', () => {
    const b = computeBudget(
      { instances: 3, poolMax: 200, heavyPoolMax: 1, graders: 2, graderPoolMax: 5, reserve: 5 },
      pg16,
    );
    expect(b.fits).toBe(false);
    expect(b.arithmetic).toBe('3 × (200+1+1) + 2 × 5 + 5 = 621 > 100 − 3 − 2 = 95');
    const text = formatBudget(b, pg16);
    expect(text).toContain('reserved 2');
    expect(text).toContain('DOES NOT FIT');
    const err = new BudgetError(b, pg16);
    expect(err.message).toContain('621 > 100 − 3 − 2 = 95');
    expect(err.message).toContain('PgBouncer');
  });

  it('an exact fit fits', () => {
    const b = computeBudget(
      { instances: 1, poolMax: 1, heavyPoolMax: 1, graders: 0, graderPoolMax: 1, reserve: 0 },
      {
        ...pg15,
        maxConnections: 6,
      },
    );
    expect(b.fits).toBe(true);
    expect(formatBudget(b, pg15)).not.toContain('− reserved');
  });

  it('fleetFromConfig takes the fleet from configuration, INSTANCES overridable (lab up: WORKERS)', () => {
    const config = loadConfig({}, { INSTANCES: 7, WORKERS: 2, DB_POOL_MAX: 3, GRADERS: 4 });
    expect(fleetFromConfig(config).instances).toBe(7);
    expect(fleetFromConfig(config, config.WORKERS)).toMatchObject({ instances: 2, poolMax: 3, graders: 4 });
  });
});

describe('computeReplicaBudget', () => {
  it("counts each instance's read pools on every replica (graders and LISTEN stay on the primary)", () => {
    const fleet = { instances: 3, poolMax: 4, heavyPoolMax: 1, graders: 2, graderPoolMax: 2, reserve: 5 };
    const b = computeReplicaBudget(fleet, pg16);
    expect(b.arithmetic).toBe('3 × (4+1) + 5 = 20 ≤ 100 − 3 − 2 = 95');
    expect(formatBudget(b, pg16, 'Connection budget of replica x')).toMatch(
      /^Connection budget of replica x/,
    );
    const big = computeReplicaBudget({ ...fleet, poolMax: 40 }, pg15);
    expect(big.fits).toBe(false);
    expect(new BudgetError(big, pg15, "each read replica's").message).toContain(
      "does not fit in each read replica's connections: 3 × (40+1) + 5 = 128 > 100 − 3 = 97",
    );
  });
});

describe('live budget check', () => {
  it('checks the read replica too; an unreachable one is reported, not fatal', async () => {
    const fleet = fleetFromConfig(loadConfig({}, {}));
    const withReplica = await checkBudget(ctx.url, fleet, ctx.url);
    expect(withReplica.replica && 'budget' in withReplica.replica && withReplica.replica.budget.fits).toBe(
      true,
    );
    const down = await checkBudget(ctx.url, fleet, `postgres://x:y@127.0.0.1:${await freePort()}/none`);
    expect(down.replica && 'unreachable' in down.replica).toBe(true);
  });

  it("doctor's node report: role, position, connections; standbys from the primary", async () => {
    const primary = await withAdminClient(ctx.url, (c) => inspectNode(c));
    expect(primary.role).toBe('primary');
    expect(primary.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(await withAdminClient(ctx.url, readStandbys)).toEqual([]);
    const reached = await reachReplicas(ctx.url, primary.lsn, 2);
    expect(reached.nodes.map((n) => n.server)).toEqual([primary.server]);
    const text = formatNodes(
      [
        primary,
        { ...primary, server: '10.0.0.2:5432', role: 'replica', lagBytes: 2048, lastReplaySeconds: 0.5 },
      ],
      [{ name: 'n2', state: 'streaming', syncState: 'sync', lagBytes: 0, replayLag: '00:00:00.0004' }],
    );
    expect(text).toContain('primary');
    expect(text).toMatch(/replica\s+10\.0\.0\.2:5432\s+max_connections 300\s+replay lag 2\.0 kB/);
    expect(text).toContain('n2           streaming  sync   lag 0 B, replay_lag 00:00:00.0004');
    const failed = await reachReplicas(`postgres://x:y@127.0.0.1:${await freePort()}/none`, null, 1);
    expect(failed).toMatchObject({ nodes: [], errors: [expect.any(String)] });
  });

  it('reads the server limits and the connections by application_name', async () => {
    await ctx.database.pool.query('select 1');
    const { limits, usage } = await withAdminClient(ctx.url, async (c) => ({
      limits: await readServerLimits(c),
      usage: await readConnectionUsage(c),
    }));
    expect(limits.maxConnections).toBe(300);
    expect(limits.versionNum).toBeGreaterThan(150000);
    expect(usage.some((u) => u.applicationName.startsWith('lab:test-'))).toBe(true);
  });

  it('passes a fleet that fits and throws BudgetError with the arithmetic otherwise', async () => {
    const ok = await checkBudget(ctx.url, fleetFromConfig(loadConfig({}, {})));
    expect(ok.budget.fits).toBe(true);
    expect(ok.usage.length).toBeGreaterThan(0);
    expect(crowdedWarning(ok)).toBeNull();
    expect(crowdedWarning({ budget: ok.budget, othersInUse: ok.budget.available })).toMatch(
      /other clients hold \d+ connections/,
    );
    await expect(
      checkBudget(ctx.url, fleetFromConfig(loadConfig({}, { DB_POOL_MAX: 200, INSTANCES: 3 }))),
    ).rejects.toThrow(/3 × \(200\+1\+1\) \+ 1 × 3 \+ 5 = 614 > 300 − 3 = 297/);
  });
});
