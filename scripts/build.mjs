#!/usr/bin/env node
/*
 * `npm run build`: the server compiled to plain JavaScript (tsc -p tsconfig.build.json → dist/, same
 * layout as src/), the files the server reads from disk at run time copied beside it (every file
 * of src/ that is not TypeScript: the Python harness, the seccomp filter script, the SQL migrations),
 * and the web app (vite → web/dist). Production runs dist/ (bin/lab.mjs).
 *   --if-needed   skip a part whose output is newer than all of its inputs (what `npm start` uses)
 *   --server      only the server;  --web  only the web app
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const ifNeeded = args.has('--if-needed');
const only = args.has('--server') ? 'server' : args.has('--web') ? 'web' : null;

/** Every file under `dir` (relative to root), skipping build outputs and dependencies. */
function* files(dir) {
  const full = path.join(root, dir);
  if (!fs.existsSync(full)) return;
  for (const entry of fs.readdirSync(full, { withFileTypes: true })) {
    if (['node_modules', 'dist'].includes(entry.name)) continue;
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* files(rel);
    else yield rel;
  }
}

const mtime = (file) => fs.statSync(path.join(root, file)).mtimeMs;
const newest = (list) => Math.max(0, ...list.map(mtime));
/** True when `stamp` exists and is newer than every input. */
const upToDate = (stamp, inputs) => fs.existsSync(path.join(root, stamp)) && mtime(stamp) >= newest(inputs);

function run(command, argv) {
  const started = performance.now();
  const result = spawnSync(command, argv, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`build: ${command} ${argv.join(' ')} failed (exit ${result.status ?? result.signal})`);
    process.exit(1);
  }
  return Math.round(performance.now() - started);
}

const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const configs = ['package-lock.json', 'tsconfig.json', 'tsconfig.build.json'];

function buildServer() {
  const sources = [...files('src')].filter((f) => !f.endsWith('.test.ts'));
  const stamp = 'dist/.built';
  if (ifNeeded && upToDate(stamp, [...sources, ...configs])) {
    console.log('build: server up to date (dist/)');
    return;
  }
  // From scratch: a source removed since the last build must not linger in dist/.
  fs.rmSync(path.join(root, 'dist'), { recursive: true, force: true });
  const ms = run(process.execPath, [bin('tsc'), '-p', 'tsconfig.build.json']);
  let assets = 0;
  for (const file of sources.filter((f) => !f.endsWith('.ts'))) {
    const target = path.join(root, 'dist', path.relative('src', file));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(path.join(root, file), target);
    assets++;
  }
  fs.writeFileSync(path.join(root, stamp), `${new Date().toISOString()}\n`);
  console.log(`build: server → dist/ in ${ms} ms (${assets} run-time assets copied)`);
}

function buildWeb() {
  // The web app imports API types from src/ too.
  const inputs = [...files('web'), ...files('src')].filter((f) => !f.endsWith('.test.ts'));
  if (ifNeeded && upToDate('web/dist/index.html', [...inputs, ...configs])) {
    console.log('build: web app up to date (web/dist/)');
    return;
  }
  const ms = run(process.execPath, [
    bin('vite'),
    'build',
    '--config',
    'web/vite.config.ts',
    '--logLevel',
    'warn',
  ]);
  console.log(`build: web app → web/dist/ in ${ms} ms`);
}

if (only !== 'web') buildServer();
if (only !== 'server') buildWeb();
