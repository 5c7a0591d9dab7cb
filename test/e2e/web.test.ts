import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  axeResults,
  checkA11y,
  cspViolations,
  docShot,
  fillCallTest,
  type Lab,
  openPage as open,
  setCode,
  shot,
  signUp,
  startLab,
} from './harness.ts';

/**
 * The browser app end to end: a real Lab (API + grader on a fresh database) and a real headless
 * Chromium. An instructor and a student each use their own browser context, as two people would.
 */

let lab: Lab;
let base: string;

beforeAll(async () => {
  lab = await startLab();
  base = lab.base;
}, 120_000);

afterAll(async () => {
  await lab?.close();
});

const openPage = (...args: Parameters<typeof open> extends [Lab, ...infer R] ? R : never) =>
  open(lab, ...args);

const XSS_BODY = [
  '# Adding numbers',
  '',
  'Write `add(a, b)`.',
  '',
  '```javascript',
  'function add(a, b) { return a + b; }',
  '```',
  '',
  '<img src=x onerror="window.__xss = 1; alert(1)">',
  '<script>window.__xss = 2; alert(2)</script>',
  '[click me](javascript:window.__xss=3)',
  '<a href="#" onclick="window.__xss=4">also</a>',
].join('\n');

describe('web app', () => {
  it('serves the shell with a strict CSP and cache headers, and keeps API 404s as JSON', async () => {
    const html = await fetch(`${base}/courses/anything`, { headers: { accept: 'text/html' } });
    expect(html.status).toBe(200);
    const csp = html.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(html.headers.get('cache-control')).toBe('no-cache');
    expect(html.headers.get('x-content-type-options')).toBe('nosniff');
    const body = await html.text();
    expect(body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const asset = body.match(/src="(\/assets\/[^"]+\.js)"/)![1]!;
    const js = await fetch(`${base}${asset}`, { headers: { 'accept-encoding': 'br, gzip' } });
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toContain('immutable');
    expect(js.headers.get('content-encoding')).toBe('br');
    await js.arrayBuffer();
    const api404 = await fetch(`${base}/api/v1/nope`, { headers: { accept: 'text/html' } });
    expect(api404.status).toBe(404);
    expect((await api404.json()).error.code).toBe('not_found');
    const other404 = await fetch(`${base}/nope.json`, { headers: { accept: 'application/json' } });
    expect(other404.status).toBe(404);
    await other404.text();
  });

  it('instructor authors, student submits and sees live results, instructor grades', async () => {
    const stamp = Date.now().toString(36);
    const teacher = await openPage();
    const t = teacher.page;

    // Instructor: sign up, create a course, a lesson (with an XSS attempt), an exercise with a hidden test.
    await signUp(t, 'Ada Teacher', `ada-${stamp}@example.com`);
    await checkA11y(t, 'courses (empty)');
    await t.getByLabel('Title').fill('Intro to Programming');
    await t.getByLabel('Description').fill('Functions, loops and tests.');
    await t.getByRole('button', { name: 'Create course' }).click();
    await t.getByRole('heading', { name: 'Intro to Programming', level: 1 }).waitFor();
    const joinCode = (await t.locator('.join-code').textContent())!.trim();
    expect(joinCode.length).toBeGreaterThan(3);

    await t.getByRole('link', { name: 'Add a lesson' }).click();
    await t.getByLabel('Title').fill('Adding numbers');
    await t.getByLabel('Body (Markdown)').fill(XSS_BODY);
    await t.getByRole('tab', { name: 'Preview' }).click();
    await t.locator('.preview h2', { hasText: 'Adding numbers' }).waitFor();
    await t.getByRole('button', { name: 'Create lesson' }).click();
    await t.getByRole('heading', { name: 'Adding numbers', level: 1 }).waitFor();

    // A failed save keeps everything typed and shows the error next to the field.
    await t.getByRole('link', { name: 'Add exercise' }).click();
    await t.getByRole('heading', { name: 'New exercise' }).waitFor();
    await t.getByLabel('Title', { exact: true }).fill('Sum two numbers');
    await t.getByLabel('Prompt (Markdown)').fill('Return the **sum** of `a` and `b`.');
    await t.getByLabel('Entrypoint').fill('add');
    await setCode(t, 'Starter code', 'function add(a, b) {\n  // your code\n}\n');
    await fillCallTest(t, 1, { name: 'small numbers', args: '[1, 2]', expected: '3' });
    await fillCallTest(t, 2, { name: 'secret', args: '[20, 22]', expected: '42', hidden: true });
    await t.getByLabel('Time limit per test (ms)').fill('20');
    await t.getByRole('button', { name: 'Create exercise' }).click();
    await t.locator('.field-error', { hasText: /50|greater|>=/ }).waitFor();
    expect(await t.getByLabel('Title', { exact: true }).inputValue()).toBe('Sum two numbers');
    await shot(t, 'exercise-editor-error');
    // Even a reload (or an expired session) loses nothing: the unsaved form comes back from this device.
    await t.reload();
    await t.getByText('Your unsaved changes on this device were restored.').waitFor();
    expect(await t.getByLabel('Title', { exact: true }).inputValue()).toBe('Sum two numbers');
    expect(
      await t.getByRole('group', { name: 'Test 2' }).getByLabel('Hidden from students').isChecked(),
    ).toBe(true);
    await t.getByLabel('Time limit per test (ms)').fill('2000');
    await t.getByRole('button', { name: 'Create exercise' }).click();
    await t.getByRole('heading', { name: 'Edit: Sum two numbers' }).waitFor();
    await checkA11y(t, 'exercise editor');

    // A reference solution is checked on save, against every test (hidden ones too), using no attempt.
    await setCode(t, 'Reference solution', 'function add(a, b) { return a + b; }\n');
    await t.getByRole('button', { name: 'Save exercise' }).click();
    await t.locator('#check-heading ~ .console .run[data-status="passed"]').waitFor({ timeout: 15_000 });
    expect(await t.locator('#check-heading ~ .console .test.pass').count()).toBe(2);
    await shot(t, 'exercise-editor');
    await t.getByRole('heading', { name: 'Tests' }).scrollIntoViewIfNeeded();
    await docShot(t, 'exercise-editor-instructor');

    // Student: sign up, join by code, read the lesson (the XSS does not run), submit wrong then right.
    const student = await openPage({ width: 390, height: 844 });
    const s = student.page;
    await signUp(s, 'Sam Student', `sam-${stamp}@example.com`);
    await s.getByLabel('Join code').fill(joinCode);
    await s.getByRole('button', { name: 'Join' }).click();
    await s.getByRole('heading', { name: 'Intro to Programming', level: 1 }).waitFor();
    await s.getByRole('heading', { name: 'Your progress' }).waitFor();
    await checkA11y(s, 'course (student, phone)');
    await shot(s, 'course-student-phone');
    await s.getByRole('link', { name: 'Adding numbers' }).first().click();
    await s.getByRole('heading', { name: 'Adding numbers', level: 1 }).waitFor();
    await s.locator('.lesson-body pre code.hljs .hljs-keyword').first().waitFor();
    // The image with the onerror handler has failed to load (its error event has fired): had the handler
    // survived sanitising, it would have run by now.
    await expect
      .poll(() =>
        s.evaluate(() =>
          Array.from(document.querySelectorAll<HTMLImageElement>('.lesson-body img')).every(
            (i) => i.complete,
          ),
        ),
      )
      .toBe(true);
    expect(await s.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    expect(await s.locator('.lesson-body script').count()).toBe(0);
    expect(await s.locator('.lesson-body [onerror], .lesson-body [onclick]').count()).toBe(0);
    expect(await s.locator('.lesson-body a[href^="javascript:"]').count()).toBe(0);
    await checkA11y(s, 'lesson (student, phone)');
    await shot(s, 'lesson-phone');

    await s.getByRole('link', { name: 'Sum two numbers' }).click();
    await s.getByRole('heading', { name: 'Sum two numbers', level: 1 }).waitFor();
    // After an in-app navigation the new page's heading has focus (screen readers announce it).
    await expect.poll(() => s.evaluate(() => document.activeElement?.textContent)).toBe('Sum two numbers');
    const editor = s.getByRole('textbox', { name: 'Code (JavaScript)' });
    await expect.poll(() => editor.textContent()).toContain('your code');
    // The draft survives a reload.
    await setCode(s, 'Code (JavaScript)', 'function add(a, b) {\n  return a - b;\n}\n');
    await s.getByText('Draft saved on this device').waitFor();
    await s.reload();
    await expect
      .poll(() => s.getByRole('textbox', { name: 'Code (JavaScript)' }).textContent())
      .toContain('a - b');

    // From here on no reload: a marker on window would vanish with one.
    await s.evaluate(() => {
      (window as unknown as { __noReload: boolean }).__noReload = true;
    });
    await s.getByRole('button', { name: 'Submit' }).click();
    const result = s.locator('.live-result .submission');
    await result.and(s.locator('[data-status="failed"]')).waitFor({ timeout: 15_000 });
    await expect.poll(() => result.locator('.test.fail').count()).toBe(2);
    // The hidden test's result shows no message to the student; the visible one explains.
    expect(await result.locator('.test.fail', { hasText: 'secret' }).locator('.test-message').count()).toBe(
      0,
    );
    expect(
      await result.locator('.test.fail', { hasText: 'small numbers' }).locator('.test-message').count(),
    ).toBe(1);
    await checkA11y(s, 'exercise with failed result (student, phone)');

    await setCode(s, 'Code (JavaScript)', 'function add(a, b) {\n  return a + b;\n}\n');
    await s.getByRole('button', { name: 'Submit' }).click();
    await result.and(s.locator('[data-status="passed"]')).waitFor({ timeout: 15_000 });
    expect(await result.locator('.score strong').textContent()).toBe('10');
    expect(await s.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);
    expect(await s.locator('.history > li').count()).toBe(2);
    await shot(s, 'exercise-phone');
    const desktop = await openPage({ width: 1280, height: 900 }, await student.context.storageState());
    await desktop.page.goto(s.url());
    await desktop.page.locator('.live-result .submission[data-status="passed"]').waitFor();
    await shot(desktop.page, 'exercise');
    await desktop.page.locator('#result-heading').evaluate((el) => el.scrollIntoView({ block: 'center' }));
    await docShot(desktop.page, 'exercise-student');

    // Instructor: regrade the exercise (both student submissions; the reference check was a run).
    await t.getByRole('button', { name: 'Regrade all submissions' }).click();
    await t.getByText('2 submissions queued for regrading.').waitFor();

    // Instructor: the gradebook shows the student's best score; the CSV downloads.
    await t.getByRole('link', { name: 'Intro to Programming' }).click();
    await t.getByRole('link', { name: 'Gradebook' }).click();
    await t.getByRole('heading', { name: 'Gradebook', level: 1 }).waitFor();
    const row = t.getByRole('row', { name: /Sam Student/ });
    await expect.poll(() => row.textContent()).toContain('10');
    await t.getByRole('button', { name: /Total/ }).click();
    await checkA11y(t, 'gradebook');
    await shot(t, 'gradebook');
    const [download] = await Promise.all([
      t.waitForEvent('download'),
      t.getByRole('link', { name: 'Download CSV' }).click(),
    ]);
    const csv = await readFile((await download.path())!, 'utf8');
    expect(csv.split('\n')[0]).toContain('Sum two numbers');
    expect(csv).toContain('Sam Student');

    // Each student's submissions, from the gradebook cell.
    await row.getByRole('link').first().click();
    await t.getByRole('heading', { name: /Submissions of Sam Student/ }).waitFor();
    await expect.poll(() => t.locator('.submission').count()).toBe(2);
    await checkA11y(t, 'submissions (staff)');

    // Members page.
    await t.getByRole('link', { name: 'Intro to Programming' }).click();
    await t.getByRole('link', { name: 'Members & roles' }).click();
    await t.getByRole('combobox', { name: 'Role of Sam Student' }).waitFor();
    await checkA11y(t, 'members');
    await t.getByRole('link', { name: 'My courses' }).first().click();
    await t.getByRole('link', { name: 'Intro to Programming' }).waitFor();
    await checkA11y(t, 'my courses');
    await shot(t, 'courses');

    // The app itself needs nothing the CSP forbids (CodeMirror's styles carry the nonce). The only
    // reports are the lesson's XSS handlers, seen (and refused) by CSP while DOMPurify parses them.
    for (const w of [teacher, student, desktop]) {
      const violations = await cspViolations(w.page);
      expect(
        violations.filter((v) => !/^script-src-attr inline .* \/(lessons|courses)\/[^ ]+ /.test(v)),
      ).toEqual([]);
      expect(w.problems).toEqual([]);
    }

    // Sign out ends the session: the app goes to sign-in and stays there.
    await s.getByRole('button', { name: 'Sign out' }).click();
    await s.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    await checkA11y(s, 'sign in (phone)');
    await s.goto('/');
    await s.waitForURL('**/signin');

    console.log('axe violations per page:', JSON.stringify(axeResults));
    for (const w of [teacher, student, desktop]) await w.context.close();
  }, 90_000);
});
