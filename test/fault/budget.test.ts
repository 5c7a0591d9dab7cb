import { describe, expect, it } from 'vitest';
import { withTestApp } from '../app.ts';
import { printCounts, spawnLab } from './harness.ts';

const ctx = withTestApp();

describe('fault test: a fleet past max_connections', () => {
  it('(5) serve, grader and up refuse to start and show the arithmetic; doctor shows the table', async () => {
    // 3 × (200 + 1 + 1) + 2 × 5 + 5 = 621 connections against the test server's 300.
    const env = {
      DATABASE_URL: ctx.url,
      INSTANCES: '3',
      WORKERS: '3',
      DB_POOL_MAX: '200',
      GRADERS: '2',
      GRADER_POOL_MAX: '5',
      DB_RESERVED_CONNECTIONS: '5',
      PORT: '0',
    };
    const commands = [['serve'], ['grader'], ['up']];
    const results = await Promise.all(
      commands.map(async (args) => {
        const proc = spawnLab(`lab ${args[0]}`, args, env);
        const { code } = await proc.exit;
        return { command: args[0], code, output: proc.output.join('') };
      }),
    );
    const doctor = spawnLab('lab doctor', ['doctor'], env);
    const doctorExit = await doctor.exit;
    const doctorOut = doctor.output.join('');
    const refused = results.filter(
      (r) => r.code === 1 && r.output.includes('3 × (200+1+1) + 2 × 5 + 5 = 621 > 300 − 3 = 297'),
    );
    printCounts('BUDGET', {
      sent: results.length,
      succeeded: refused.length,
      failed: results.length - refused.length,
      retried: 0,
      lost: 0,
      codes: results.map((r) => `${r.command}:${r.code}`),
    });
    for (const r of results) expect(r.output, r.command).toContain('does not fit');
    expect(refused.length).toBe(3);
    expect(doctorExit.code).toBe(0);
    expect(doctorOut).toContain('DOES NOT FIT: 3 × (200+1+1) + 2 × 5 + 5 = 621 > 300 − 3 = 297');
    expect(doctorOut).toContain('max_connections                300');
    expect(doctorOut).toContain('Connections now, by application_name');
    expect(doctorOut).toMatch(/DATABASE_URL\s+"postgres:\/\/postgres:\*\*\*\*@/);
    // The sandboxes: each language graded a probe, and Python's isolation layers are listed.
    expect(doctorOut).toMatch(/javascript\s+ok: graded a probe submission/);
    expect(doctorOut).toMatch(/python\s+ok: graded a probe submission/);
    for (const layer of ['namespaces', 'seccomp', 'rlimits'])
      expect(doctorOut).toMatch(new RegExp(`\\[x\\] ${layer}\\s+essential`));
    expect(doctorOut).toMatch(/\[[x ]\] box uids\s+recommended/);
    expect(doctorOut).toMatch(/\[[x ]\] cgroups\s+recommended/);
  }, 60_000);
});
