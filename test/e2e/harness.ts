import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { connectDatabase, type Database } from '../../src/db/client.ts';
import { startGrader } from '../../src/grading/grader.ts';
import { createTestDatabase } from '../db.ts';

/**
 * What the browser suites share: a real Lab (API + grader on a fresh database), a real headless
 * Chromium, pages that record CSP violations, errors and dialogs, axe-core, screenshots.
 */

export const repo = fileURLToPath(new URL('../..', import.meta.url));
const webDir = path.join(repo, 'web');
export const artifacts = path.join(repo, 'test-artifacts');
export const screenshotsDir = path.join(repo, 'docs/screenshots');
const axeSource = fs.readFileSync(path.join(repo, 'node_modules/axe-core/axe.min.js'), 'utf8');

/** Builds web/dist when it is missing or older than the sources (so `npx vitest run test/e2e` just works). */
export function ensureBuilt() {
  const index = path.join(webDir, 'dist/index.html');
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...fs.readdirSync(dir, { withFileTypes: true }).map((e) => {
        const p = path.join(dir, e.name);
        return e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs;
      }),
    );
  const sourceTime = Math.max(
    newest(path.join(webDir, 'src')),
    fs.statSync(path.join(webDir, 'index.html')).mtimeMs,
  );
  if (fs.existsSync(index) && fs.statSync(index).mtimeMs >= sourceTime) return;
  // A child process: inside Vitest NODE_ENV is "test", which would give React's development build.
  execFileSync(
    process.execPath,
    [
      path.join(repo, 'node_modules/vite/bin/vite.js'),
      'build',
      '--config',
      'web/vite.config.ts',
      '--logLevel',
      'warn',
    ],
    {
      cwd: repo,
      env: { ...process.env, NODE_ENV: 'production' },
      stdio: 'inherit',
    },
  );
}

export interface Lab {
  base: string;
  browser: Browser;
  config: Config;
  close(): Promise<void>;
}

export async function startLab(overrides: Partial<Config> = {}): Promise<Lab> {
  fs.mkdirSync(artifacts, { recursive: true });
  ensureBuilt();
  const db = await createTestDatabase();
  const config = loadConfig(
    {},
    { DATABASE_URL: db.url, LOG_LEVEL: 'silent', MAX_EVENT_LOOP_DELAY_MS: 0, ...overrides },
  );
  const database: Database = connectDatabase(config, db.url, 'test');
  const app: FastifyInstance = await buildApp(config, database, { logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  const grader = await startGrader(config, db.url, { pollMs: 250 });
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
    ],
  });
  return {
    base: `http://127.0.0.1:${addr.port}`,
    browser,
    config,
    async close() {
      await browser.close();
      await grader.stop();
      // A connection a client left open (a download, a stream) must not hold the test up.
      const closing = app.close();
      app.server.closeAllConnections();
      await closing;
      await database.close();
      await db.drop();
    },
  };
}

export interface Watched {
  page: Page;
  context: BrowserContext;
  problems: string[];
  /** The text of every confirm() the page asked (all are accepted unless `dismissNext` is set). */
  confirms: string[];
  dismissNext: { value: boolean };
}

/** A page that records CSP violations, uncaught errors and dialogs (an executed XSS would alert). */
export async function openPage(
  lab: Lab,
  viewport = { width: 1280, height: 900 },
  storageState?: Awaited<ReturnType<BrowserContext['storageState']>>,
): Promise<Watched> {
  const context = await lab.browser.newContext({
    viewport,
    acceptDownloads: true,
    baseURL: lab.base,
    storageState,
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      const w = window as unknown as { __csp?: string[] };
      w.__csp = w.__csp ?? [];
      w.__csp.push(
        `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber} ${location.pathname} ${e.sample}`,
      );
    });
  });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const problems: string[] = [];
  const confirms: string[] = [];
  const dismissNext = { value: false };
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('dialog', (d) => {
    if (d.type() === 'confirm') {
      confirms.push(d.message());
      if (dismissNext.value) {
        dismissNext.value = false;
        return void d.dismiss();
      }
      return void d.accept();
    }
    problems.push(`dialog: ${d.message()}`);
    return void d.dismiss();
  });
  return { page, context, problems, confirms, dismissNext };
}

export async function cspViolations(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __csp?: string[] }).__csp ?? []);
}

export const axeResults: Record<string, string[]> = {};

interface AxeViolation {
  id: string;
  impact: string;
  targets: string[];
}

async function runAxe(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: Document, o: object): Promise<unknown> } }).axe;
    const r = (await axe.run(document, { resultTypes: ['violations'] })) as {
      violations: { id: string; impact: string; nodes: { target: string[] }[] }[];
    };
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      targets: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
}

/** Runs axe-core in the page; records every violation, fails on serious or critical ones. */
export async function checkA11y(page: Page, name: string) {
  const result = await runAxe(page);
  axeResults[name] = result.map((v) => `${v.impact}:${v.id}`);
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad, `${name}: ${JSON.stringify(bad)}`).toEqual([]);
}

export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 800 };

/**
 * axe at phone and desktop width, in the page as it is (the viewport is put back afterwards): no
 * violation at all, of any impact.
 */
export async function checkA11yBoth(page: Page, name: string) {
  const before = page.viewportSize() ?? DESKTOP;
  for (const [label, size] of [
    ['phone', PHONE],
    ['desktop', DESKTOP],
  ] as const) {
    await page.setViewportSize(size);
    // Layout follows the resize before axe measures (two frames: style, then layout and paint).
    await page.evaluate(
      () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(null)))),
    );
    const result = await runAxe(page);
    axeResults[`${name} (${label})`] = result.map((v) => `${v.impact}:${v.id}`);
    expect(result, `${name} (${label}): ${JSON.stringify(result)}`).toEqual([]);
  }
  await page.setViewportSize(before);
}

export async function shot(page: Page, name: string) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

/**
 * A small PNG for the README: the viewport only. Written to docs/screenshots when
 * LAB_DOC_SCREENSHOTS=1 (so an ordinary test run changes no tracked file), else to test-artifacts/docs.
 */
export async function docShot(page: Page, name: string) {
  const dir = process.env.LAB_DOC_SCREENSHOTS === '1' ? screenshotsDir : path.join(artifacts, 'docs');
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

export async function signUp(page: Page, name: string, email: string) {
  await page.goto('/');
  await page.waitForURL('**/signin');
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'My courses', level: 1 }).waitFor();
}

/** Replaces the text of the CodeMirror editor labelled `label`. */
export async function setCode(page: Page, label: string, code: string) {
  const editor = page.getByRole('textbox', { name: label });
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await editor.fill(code);
}

/** Fills call test `n` of the exercise editor (adding it first when n > 1). */
export async function fillCallTest(
  page: Page,
  n: number,
  t: { name: string; args: string; expected: string; hidden?: boolean },
) {
  if (n > 1) await page.getByRole('button', { name: 'Add a test' }).click();
  const group = page.getByRole('group', { name: `Test ${n}` });
  await group.getByLabel('Name').fill(t.name);
  await group.getByLabel('Arguments (JSON array)').fill(t.args);
  await group.getByLabel('Expected return value (JSON)').fill(t.expected);
  if (t.hidden) await group.getByLabel('Hidden from students').check();
}
