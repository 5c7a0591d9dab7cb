#!/usr/bin/env node
// The `lab` command. Production runs the compiled JavaScript in dist/ (`npm run build`); a development
// checkout (src/cli.ts present and tsx installed) runs the TypeScript sources through tsx, so tests and
// `lab` during development never run a stale build. LAB_RUNTIME=dist or LAB_RUNTIME=source chooses
// explicitly (`npm start` builds, then runs dist/).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const compiled = new URL('../dist/cli.js', import.meta.url);
const source = new URL('../src/cli.ts', import.meta.url);

function tsxInstalled() {
  try {
    createRequire(import.meta.url).resolve('tsx/esm/api');
    return true;
  } catch {
    return false;
  }
}

const runtime = process.env.LAB_RUNTIME || (existsSync(source) && tsxInstalled() ? 'source' : 'dist');
if (runtime === 'source') {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else if (runtime === 'dist') {
  if (!existsSync(compiled)) {
    console.error('lab: dist/cli.js is missing; run `npm run build` first (or `npm start`, which builds).');
    process.exit(1);
  }
  await import(compiled.href);
} else {
  console.error(`lab: LAB_RUNTIME=${runtime}: expected dist or source`);
  process.exit(2);
}
