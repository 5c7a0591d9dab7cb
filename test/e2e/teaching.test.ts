import { readFile } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  axeResults,
  checkA11yBoth,
  cspViolations,
  DESKTOP,
  docShot,
  fillCallTest,
  type Lab,
  openPage,
  PHONE,
  setCode,
  shot,
  signUp,
  startLab,
} from './harness.ts';

/**
 * Teaching beyond week one (issue 10), in Chromium against a real Lab: a teacher authors an exercise
 * with a reference solution and schedules it, publishes it, a student runs then submits (late, with
 * partial credit), the teacher reads the code and compares versions, grants an extension, the student
 * submits within it while the teacher's gradebook updates live, the CSV has it, and the course is
 * copied, exported and imported. Every new page is checked by axe at phone and desktop width.
 */

let lab: Lab;

beforeAll(async () => {
  lab = await startLab();
}, 120_000);

afterAll(async () => {
  await lab?.close();
});

/** "YYYY-MM-DDTHH:mm" in the browser's local time (datetime-local), `days` from now. */
const localInput = (days: number) => {
  const d = new Date(Date.now() + days * 24 * 3600 * 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
};

const marker = (page: Page) =>
  page.evaluate(() => {
    (window as unknown as { __noReload: boolean }).__noReload = true;
  });
const stillNoReload = (page: Page) =>
  page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload === true);

const REFERENCE = 'function double(x) {\n  return 2 * x;\n}\n';
const PARTIAL = 'function double(x) {\n  console.log("got", x);\n  return x === 2 ? 4 : x;\n}\n';
const RIGHT = 'function double(x) {\n  console.log("got", x);\n  return x + x;\n}\n';

describe('teaching beyond week one', () => {
  it('author, schedule, run, submit late, read code, extend, live gradebook, CSV, copy, export, import', async () => {
    const stamp = Date.now().toString(36);
    const teacher = await openPage(lab, DESKTOP);
    const t = teacher.page;
    await signUp(t, 'Grace Teacher', `grace-${stamp}@example.com`);
    await t.getByLabel('Title').fill('Algorithms 101');
    await t.getByRole('button', { name: 'Create course' }).click();
    await t.getByRole('heading', { name: 'Algorithms 101', level: 1 }).waitFor();
    const joinCode = (await t.locator('.join-code').textContent())!.trim();

    await t.getByRole('link', { name: 'Add a lesson' }).click();
    await t.getByLabel('Title').fill('Week 1');
    await t
      .getByLabel('Body (Markdown)')
      .fill('# Doubling\n\nMultiply by two.\n\n> Tip: `x + x` works too.\n\n## Next steps\n\nRead on.');
    await t.getByRole('button', { name: 'Create lesson' }).click();
    await t.getByRole('heading', { name: 'Week 1', level: 1 }).waitFor();

    // Author: an exercise due yesterday, 50 % credit for a week after, a reference solution, and
    // published only tomorrow (scheduled).
    await t.getByRole('link', { name: 'Add exercise' }).click();
    await t.getByRole('heading', { name: 'New exercise' }).waitFor();
    await t.getByLabel('Title', { exact: true }).fill('Double it');
    await t.getByLabel('Entrypoint').fill('double');
    await setCode(t, 'Starter code', 'function double(x) {\n}\n');
    await fillCallTest(t, 1, { name: 'two', args: '[2]', expected: '4' });
    await fillCallTest(t, 2, { name: 'secret', args: '[21]', expected: '42', hidden: true });
    await t.getByLabel('Due (your local time)').fill(localInput(-1));
    await t.getByRole('button', { name: 'Add a late credit line' }).click();
    const late1 = t.getByRole('group', { name: 'Late credit 1' });
    await late1.getByLabel('Until (your local time)').fill(localInput(7));
    await late1.getByLabel('Credit (%)').fill('50');
    await setCode(t, 'Reference solution', REFERENCE);
    await t.getByLabel('Students see this exercise').selectOption('scheduled');
    await t.getByLabel('Publish at (your local time)').fill(localInput(1));
    // A validation message reads as a sentence, not as a JSON schema.
    await t.getByLabel('Title', { exact: true }).fill('');
    await t.getByRole('button', { name: 'Create exercise' }).click();
    await t.locator('.field-error', { hasText: 'is required' }).waitFor();
    expect(await t.locator('.error[role="alert"]').textContent()).toBe('The title is required.');
    expect(await t.locator('body').textContent()).not.toContain('must NOT have');
    await t.getByLabel('Title', { exact: true }).fill('Double it');
    await t.getByRole('button', { name: 'Create exercise' }).click();
    await t.getByRole('heading', { name: 'Edit: Double it' }).waitFor();
    // Created: the reference solution ran against every test, hidden included.
    const check = t.locator('#check-heading ~ .console .run');
    await check.and(t.locator('[data-status="passed"]')).waitFor({ timeout: 15_000 });
    expect(await check.locator('.test.pass').count()).toBe(2);
    await t.getByText('The reference solution passes every test.').waitFor();
    expect(await t.locator('[data-publish="scheduled"]').textContent()).toContain('Scheduled');
    await checkA11yBoth(t, 'exercise editor (v1.1)');
    await t.getByRole('heading', { name: 'Reference solution check' }).scrollIntoViewIfNeeded();
    await docShot(t, 'exercise-editor-reference-check');
    const exerciseUrl = t.url().replace(/\/edit(\?.*)?$/, '');

    // The student joins: the scheduled exercise is nowhere to be seen, and its address is "Not found".
    const student = await openPage(lab, PHONE);
    const s = student.page;
    await signUp(s, 'Sam Student', `sam-${stamp}@example.com`);
    await s.getByLabel('Join code').fill(joinCode);
    await s.getByRole('button', { name: 'Join' }).click();
    await s.getByRole('heading', { name: 'Algorithms 101', level: 1 }).waitFor();
    await s.getByRole('link', { name: 'Week 1' }).first().click();
    await s.getByRole('heading', { name: 'Week 1', level: 1 }).waitFor();
    await s.getByText('This lesson has no exercises.').waitFor();
    // Styled lesson text: the author's headings and a quote.
    await s.locator('.lesson-body h2', { hasText: 'Doubling' }).waitFor();
    await s.locator('.lesson-body blockquote').waitFor();
    await checkA11yBoth(s, 'lesson (student)');
    await s.goto(exerciseUrl);
    await s.getByRole('heading', { name: 'Not found', level: 1 }).waitFor();

    // The teacher publishes it now.
    await t.getByLabel('Students see this exercise').selectOption('published');
    await t.getByRole('button', { name: 'Save exercise' }).click();
    await t.getByText(/Saved at/).waitFor();
    await t.locator('[data-publish="published"]').waitFor();

    // The student sees it, with their due date and the late policy; Run first: visible tests only,
    // with what the code printed, and no attempt used.
    await s.goto(exerciseUrl);
    await s.getByRole('heading', { name: 'Double it', level: 1 }).waitFor();
    await s.getByText(/Late submissions: 50 % credit until/).waitFor();
    await s.getByText('The due date has passed: new submissions are marked late.').waitFor();
    await marker(s);
    await setCode(s, 'Code (JavaScript)', PARTIAL);
    await s.getByRole('button', { name: 'Run', exact: true }).click();
    const runResult = s.locator('.console .run');
    await runResult.and(s.locator('[data-status="passed"]')).waitFor({ timeout: 15_000 });
    expect(await runResult.locator('.test').count()).toBe(1);
    expect(await runResult.locator('.test-output pre').textContent()).toContain('got 2');
    // The program on the student's own input.
    await s.getByLabel('Run the program on my own input instead of the tests').check();
    await s.getByLabel('Input (stdin)').fill('5\n');
    await setCode(s, 'Code (JavaScript)', 'console.log("twice", 2 * Number(readLine()));\n');
    await s.getByRole('button', { name: 'Run', exact: true }).click();
    await s.locator('.console .console-output pre', { hasText: 'twice 10' }).waitFor({ timeout: 15_000 });
    await s.getByLabel('Run the program on my own input instead of the tests').uncheck();
    expect(await s.getByTestId('attempts').textContent()).toBe('Unlimited attempts');
    await checkA11yBoth(s, 'exercise with a run (student)');
    await s.setViewportSize(DESKTOP);
    await s.locator('.console').scrollIntoViewIfNeeded();
    await docShot(s, 'exercise-run-console');

    // Submit: partly right, late → "Partial", 5 of 10 before the 50 % late credit. The result comes into
    // view and focus stays on the Submit button.
    await setCode(s, 'Code (JavaScript)', PARTIAL);
    const submit = s.getByRole('button', { name: 'Submit' });
    await submit.click();
    const result = s.locator('.live-result .submission');
    await result.and(s.locator('[data-status="failed"]')).waitFor({ timeout: 15_000 });
    expect(await result.locator('.badge').first().textContent()).toBe('Partial');
    expect(await result.locator('.score strong').textContent()).toBe('2.5');
    await result.locator('.badge.late').waitFor();
    expect(await result.locator('.credit').textContent()).toContain('5 before late credit × 50 %');
    expect(await s.evaluate(() => document.activeElement?.textContent)).toBe('Submit');
    const inView = await s.locator('#result-heading').evaluate((el) => {
      const r = el.getBoundingClientRect();
      return r.top >= 0 && r.bottom <= window.innerHeight;
    });
    expect(inView).toBe(true);
    await setCode(s, 'Code (JavaScript)', 'function double(x) {\n  return 0;\n}\n');
    await submit.click();
    await expect.poll(() => s.locator('.history > li').count()).toBe(2);
    await result.and(s.locator('[data-status="failed"]')).waitFor({ timeout: 15_000 });
    // Past code can come back into the editor.
    const oldest = s.locator('.history > li').last();
    await oldest.locator('summary').click();
    await oldest.locator('.code-view', { hasText: 'x === 2 ? 4 : x' }).waitFor();
    await oldest.getByRole('button', { name: 'Load this version into the editor' }).click();
    await expect
      .poll(() => s.getByRole('textbox', { name: 'Code (JavaScript)' }).textContent())
      .toContain('x === 2 ? 4 : x');
    expect(student.confirms.at(-1)).toContain('Replace the code in the editor');
    await checkA11yBoth(s, 'exercise with history (student)');

    // The teacher: the gradebook, with the late marker and attempts; it stays open (live).
    const teacherGradebook = await openPage(lab, DESKTOP, await teacher.context.storageState());
    const g = teacherGradebook.page;
    const courseUrl = (await t.locator('.breadcrumb a').nth(1).getAttribute('href'))!;
    await g.goto(`${courseUrl}/gradebook`);
    await g.getByRole('heading', { name: 'Gradebook', level: 1 }).waitFor();
    const row = g.getByRole('row', { name: /Sam Student/ });
    await expect.poll(() => row.locator('td').first().textContent()).toBe('2.5late×2');
    await g.getByTestId('live').and(g.locator('.live-open')).waitFor();
    // The name column stays put while the scores scroll sideways.
    expect(await row.locator('th').evaluate((el) => getComputedStyle(el).position)).toBe('sticky');
    await marker(g);

    // The teacher reads the student's code, per test results with output, and compares two versions.
    await t.goto(`${exerciseUrl}/submissions`);
    await t.getByRole('heading', { name: /Submissions: Double it/ }).waitFor();
    const cards = t.locator('[data-submission-card]');
    await expect.poll(() => cards.count()).toBe(2);
    const first = cards.last();
    expect(await first.locator('h2').textContent()).toContain('Sam Student');
    await first.locator('summary', { hasText: 'Code' }).click();
    await first.locator('.code-view .hljs-keyword', { hasText: 'function' }).first().waitFor();
    expect(await first.locator('.code-view').textContent()).toContain('return x === 2 ? 4 : x;');
    // Staff see the hidden test's message and every test's output.
    expect(
      await first.locator('.test.fail', { hasText: 'secret' }).locator('.test-message').textContent(),
    ).toMatch(/42/);
    expect(await first.locator('.test-output pre').first().textContent()).toContain('got 2');
    for (const c of await cards.all()) await c.getByRole('checkbox').check();
    const diff = t.locator('.diff-view');
    await diff.waitFor();
    expect(await diff.locator('.diff-del').count()).toBeGreaterThan(0);
    expect(await diff.locator('.diff-add', { hasText: 'return 0;' }).count()).toBe(1);
    expect(await diff.locator('.diff-del', { hasText: 'return x === 2 ? 4 : x;' }).count()).toBe(1);
    await checkA11yBoth(t, 'submissions with code and diff (staff)');
    await t.locator('#compare-heading').scrollIntoViewIfNeeded();
    await docShot(t, 'submissions-code-diff');

    // The teacher grants an extension (own due date tomorrow) and one extra attempt.
    await t.goto(exerciseUrl);
    await t.getByRole('heading', { name: 'Extensions and extra attempts' }).waitFor();
    await t.getByText('No exceptions.').waitFor();
    await t.getByLabel('Student').selectOption({ label: `Sam Student (sam-${stamp}@example.com)` });
    await t.getByLabel('Own due date (your local time)').fill(localInput(1));
    await t.getByRole('spinbutton', { name: 'Extra attempts' }).fill('1');
    await t.getByRole('button', { name: 'Save exception' }).click();
    await t.getByText(/Saved for Sam Student/).waitFor();
    const exRow = t.getByRole('row', { name: /Sam Student/ });
    await exRow.waitFor();
    expect(await exRow.locator('td').nth(1).textContent()).toBe('1');
    await checkA11yBoth(t, 'exercise with exceptions (staff)');
    await t.getByRole('heading', { name: 'Extensions and extra attempts' }).scrollIntoViewIfNeeded();
    await docShot(t, 'exercise-exceptions');

    // The student, within the extension: their own due date shows; the submission is on time, full credit.
    await s.reload();
    await s.getByRole('heading', { name: 'Double it', level: 1 }).waitFor();
    await expect.poll(() => s.getByText('The due date has passed').count()).toBe(0);
    const due = await s.getByTestId('due').textContent();
    expect(due).not.toBe('No due date');
    await setCode(s, 'Code (JavaScript)', RIGHT);
    await s.getByRole('button', { name: 'Submit' }).click();
    await result.and(s.locator('[data-status="passed"]')).waitFor({ timeout: 15_000 });
    expect(await result.locator('.score strong').textContent()).toBe('10');
    expect(await result.locator('.badge.late').count()).toBe(0);

    // The teacher's open gradebook follows by itself: 10, not late, 3 attempts.
    await expect.poll(() => row.locator('td').first().textContent(), { timeout: 10_000 }).toBe('10×3');
    expect(await stillNoReload(g)).toBe(true);
    await checkA11yBoth(g, 'gradebook (live)');
    await docShot(g, 'gradebook-live');

    // The CSV has it, with the late column, under a readable file name.
    const [download] = await Promise.all([
      g.waitForEvent('download'),
      g.getByRole('link', { name: 'Download CSV' }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/^Algorithms 101-gradebook-\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = (await readFile((await download.path())!, 'utf8')).trim().split(/\r?\n/);
    expect(csv[0]).toContain('Double it (late)');
    const samLine = csv.find((l) => l.includes('Sam Student'))!;
    expect(samLine).toMatch(/,10,/);

    // Copy the course: lessons and exercises come along, the copier is its instructor.
    await t.goto(courseUrl);
    await t.getByLabel('Title of the copy').fill('Algorithms 101 — spring');
    await t.getByRole('button', { name: 'Copy course' }).click();
    await t.getByRole('heading', { name: 'Algorithms 101 — spring', level: 1 }).waitFor();
    await t.getByRole('link', { name: 'Week 1' }).waitFor();
    expect(await t.locator('.badge.role-instructor').textContent()).toBe('Instructor');
    await checkA11yBoth(t, 'course (staff, v1.1 tools)');
    await docShot(t, 'course-staff-tools');

    // Export the original, import it back as a new course; a broken file is refused with details.
    await t.goto(courseUrl);
    const [exported] = await Promise.all([
      t.waitForEvent('download'),
      t.getByRole('link', { name: 'Export (JSON)' }).click(),
    ]);
    const docPath = (await exported.path())!;
    const doc = JSON.parse(await readFile(docPath, 'utf8'));
    expect(doc).toMatchObject({ format: 'lab-course', version: 1, course: { title: 'Algorithms 101' } });
    expect(doc.lessons[0].exercises[0]).toMatchObject({ title: 'Double it', referenceSolution: REFERENCE });
    await t.goto('/');
    await t.getByRole('heading', { name: 'Import a course' }).waitFor();
    const broken = { ...doc, course: { ...doc.course, title: '' } };
    await t.getByLabel('Course file (JSON, from “Export”)').setInputFiles({
      name: 'broken.json',
      mimeType: 'application/json',
      buffer: Buffer.from(JSON.stringify(broken)),
    });
    await t.getByRole('button', { name: 'Import course' }).click();
    const errs = t.getByTestId('import-errors');
    await errs.waitFor();
    expect(await errs.textContent()).toContain('course.title');
    expect(await errs.textContent()).toContain('is required');
    await checkA11yBoth(t, 'courses with import errors');
    await errs.evaluate((el) => el.scrollIntoView({ block: 'center' }));
    await docShot(t, 'import-errors');
    await t.getByLabel('Course file (JSON, from “Export”)').setInputFiles(docPath);
    await t.getByRole('button', { name: 'Import course' }).click();
    await t.getByRole('heading', { name: 'Algorithms 101', level: 1 }).waitFor();
    expect(t.url()).not.toContain(courseUrl);
    await t.getByRole('link', { name: 'Week 1' }).click();
    await t.getByRole('link', { name: 'Double it' }).waitFor();

    // The student's courses page lists what is due soon: the exercise is done, so nothing from it.
    await s.goto('/');
    await s.getByRole('heading', { name: 'My courses', level: 1 }).waitFor();
    await checkA11yBoth(s, 'my courses (student)');

    for (const w of [teacher, student, teacherGradebook]) {
      expect(await cspViolations(w.page)).toEqual([]);
      expect(w.problems).toEqual([]);
    }
    await shot(t, 'teaching-end');
    console.log('axe violations per page:', JSON.stringify(axeResults));
    for (const w of [teacher, student, teacherGradebook]) await w.context.close();
  }, 180_000);

  it('housekeeping and polish: due soon, dark mode, Python indent, regrade notice, 429, roles, removal, join code, archive, delete', async () => {
    const stamp = `h${Date.now().toString(36)}`;
    const teacher = await openPage(lab, DESKTOP);
    const t = teacher.page;
    await signUp(t, 'Hal Teacher', `hal-${stamp}@example.com`);
    // Set-up through the API with the teacher's own session (a same-origin request, as the app makes).
    const call = async (page: Page, method: string, path: string, data?: unknown) => {
      const res = await page.request.fetch(`/api/v1${path}`, {
        method,
        data: data === undefined ? undefined : JSON.stringify(data),
        headers: { origin: lab.base, 'content-type': 'application/json' },
      });
      expect(res.ok(), `${method} ${path}: ${res.status()} ${await res.text()}`).toBe(true);
      return res.status() === 204 ? null : res.json();
    };
    const { course } = await call(t, 'POST', '/courses', { title: 'Housekeeping' });
    const l1 = (await call(t, 'POST', `/courses/${course.id}/lessons`, { title: 'One', body: 'First.' }))
      .lesson;
    const l2 = (await call(t, 'POST', `/courses/${course.id}/lessons`, { title: 'Two', body: 'Second.' }))
      .lesson;
    const inTwoDays = new Date(Date.now() + 2 * 24 * 3600 * 1000).toISOString();
    const js = (
      await call(t, 'POST', `/lessons/${l1.id}/exercises`, {
        title: 'Triple',
        language: 'javascript',
        entrypoint: 'triple',
        tests: [
          { name: 'one', kind: 'call', args: [1], expected: 3 },
          { name: 'two', kind: 'call', args: [2], expected: 6 },
        ],
        maxScore: 10,
        dueAt: inTwoDays,
        maxAttempts: 2,
      })
    ).exercise;
    await call(t, 'POST', `/lessons/${l2.id}/exercises`, {
      title: 'Square',
      language: 'python',
      entrypoint: 'square',
      tests: [{ name: 'two', kind: 'call', args: [2], expected: 4 }],
      maxScore: 5,
    });

    const student = await openPage(lab, PHONE);
    const s = student.page;
    await signUp(s, 'Pat Student', `pat-${stamp}@example.com`);
    await call(s, 'POST', '/courses/join', { joinCode: course.joinCode });

    // Due soon, across the student's courses.
    await s.reload();
    const dueSoon = s.getByRole('region', { name: 'Due soon' });
    await dueSoon.getByRole('link', { name: 'Triple' }).waitFor();
    expect(await dueSoon.textContent()).toContain('Housekeeping');
    await checkA11yBoth(s, 'my courses with due soon (student)');

    // Lesson pages: previous/next through the course, and marks on exercises.
    await s.goto(`/lessons/${l1.id}`);
    await s.getByRole('heading', { name: 'One', level: 1 }).waitFor();
    await s.getByText('Lesson 1 of 2').waitFor();
    await s.getByRole('link', { name: 'Next: Two →' }).click();
    await s.getByRole('heading', { name: 'Two', level: 1 }).waitFor();
    await s.getByRole('link', { name: '← Previous: One' }).waitFor();
    await s.getByText('(not started)').waitFor();

    // Python indents by 4 spaces.
    await s.getByRole('link', { name: 'Square' }).click();
    await s.getByRole('heading', { name: 'Square', level: 1 }).waitFor();
    const pyEditor = s.getByRole('textbox', { name: 'Code (Python)' });
    await pyEditor.click();
    await s.keyboard.type('def square(x):');
    await s.keyboard.press('Enter');
    await s.keyboard.type('return x * x');
    await expect
      .poll(() =>
        pyEditor.evaluate((el) =>
          Array.from(el.querySelectorAll('.cm-line'))
            .map((l) => l.textContent)
            .join('\n'),
        ),
      )
      .toContain('\n    return x * x');

    // The focused editor has a visible focus ring.
    expect(
      await s.locator('.cm-host').evaluate((el) => {
        const st = getComputedStyle(el);
        return `${st.outlineStyle} ${st.outlineWidth}`;
      }),
    ).toBe('solid 3px');
    // Dark mode follows the system setting; axe passes in it too.
    await s.emulateMedia({ colorScheme: 'dark' });
    await s.goto(`/exercises/${js.id}`);
    await s.getByRole('heading', { name: 'Triple', level: 1 }).waitFor();
    const bg = await s.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    expect(bg).toBe('rgb(15, 20, 27)');
    expect(await s.getByTestId('attempts').textContent()).toBe('2 attempts left (limit 2)');

    // A regrade that changes the score is told to the student, live.
    await marker(s);
    await setCode(s, 'Code (JavaScript)', 'function triple(x) {\n  return x === 1 ? 3 : 0;\n}\n');
    // The editor is dark too (its token colours checked by axe below) and follows a switch live.
    const editorLook = () =>
      s.locator('.cm-host').evaluate((host) => {
        const keyword = Array.from(host.querySelectorAll('.cm-line span')).find(
          (e) => e.textContent === 'return',
        );
        const editor = host.querySelector('.cm-editor')!;
        return `${getComputedStyle(editor).backgroundColor} ${keyword ? getComputedStyle(keyword).color : 'none'}`;
      });
    await expect.poll(editorLook).toBe('rgb(11, 16, 22) rgb(201, 160, 255)');
    await s.emulateMedia({ colorScheme: 'light' });
    await expect.poll(editorLook).toBe('rgb(255, 255, 255) rgb(119, 0, 136)');
    await s.emulateMedia({ colorScheme: 'dark' });
    await expect.poll(editorLook).toBe('rgb(11, 16, 22) rgb(201, 160, 255)');
    await s.getByRole('button', { name: 'Submit' }).click();
    const result = s.locator('.live-result .submission');
    await result.and(s.locator('[data-status="failed"]')).waitFor({ timeout: 15_000 });
    expect(await result.locator('.badge').first().textContent()).toBe('Partial');
    expect(await s.getByTestId('attempts').textContent()).toBe('1 attempt left (limit 2)');
    await call(t, 'PATCH', `/exercises/${js.id}`, {
      tests: [
        { name: 'one', kind: 'call', args: [1], expected: 3 },
        { name: 'two', kind: 'call', args: [2], expected: 0 },
      ],
    });
    await call(t, 'POST', `/exercises/${js.id}/regrade`);
    const notice = s.getByTestId('regrade-notice');
    await notice.waitFor({ timeout: 15_000 });
    expect(await notice.textContent()).toMatch(/regraded: score 5 → 10/);
    expect(await stillNoReload(s)).toBe(true);
    await checkA11yBoth(s, 'exercise in dark mode with a regrade notice (student)');
    await s.setViewportSize(DESKTOP);
    await notice.scrollIntoViewIfNeeded();
    await s.evaluate(() => window.scrollTo(0, 0));
    await docShot(s, 'exercise-dark-regrade');
    await s.setViewportSize(PHONE);

    // Too many runs: a sentence, not a code.
    for (let i = 0; i < 20; i++) {
      const r = await s.request.fetch(`/api/v1/exercises/${js.id}/runs`, {
        method: 'POST',
        data: JSON.stringify({ code: 'function triple(x) { return 3 * x; }' }),
        headers: { origin: lab.base, 'content-type': 'application/json' },
      });
      if (r.status() === 429) break;
    }
    await s.getByRole('button', { name: 'Run', exact: true }).click();
    await s
      .locator('.console .error', { hasText: /Too many tries in a short time\. Try again in \d+ seconds?\./ })
      .waitFor();

    // A lesson back to draft: staff see the badge, the student no longer sees the lesson.
    await t.goto(`/lessons/${l2.id}/edit`);
    await t.getByLabel('Students see this lesson').selectOption('draft');
    await t.getByRole('button', { name: 'Save lesson' }).click();
    await t.getByRole('heading', { name: 'Two', level: 1 }).waitFor();
    await t.locator('[data-publish="draft"]').first().waitFor();
    await t.goto(`/courses/${course.id}`);
    await t.getByRole('listitem').filter({ hasText: 'Two' }).locator('[data-publish="draft"]').waitFor();
    await s.goto(`/courses/${course.id}`);
    await s.getByRole('link', { name: 'One', exact: true }).waitFor();
    expect(await s.getByRole('link', { name: 'Two', exact: true }).count()).toBe(0);

    // Members: making a student TA asks first (their gradebook row goes); dismissed, nothing changes.
    await t.goto(`/courses/${course.id}/members`);
    const role = t.getByRole('combobox', { name: 'Role of Pat Student' });
    teacher.dismissNext.value = true;
    await role.selectOption('ta');
    expect(teacher.confirms.at(-1)).toContain('leaves the gradebook');
    expect(await role.inputValue()).toBe('student');
    await checkA11yBoth(t, 'members with remove (staff)');
    // Removing a member: they lose access at once.
    await t.getByRole('button', { name: 'Remove Pat Student' }).click();
    expect(teacher.confirms.at(-1)).toContain('Remove Pat Student from the course?');
    await expect.poll(() => t.getByRole('combobox', { name: 'Role of Pat Student' }).count()).toBe(0);
    await s.goto(`/courses/${course.id}`);
    await s.getByRole('heading', { name: 'Not found', level: 1 }).waitFor();

    // A new join code replaces the old one.
    await t.goto(`/courses/${course.id}`);
    const oldCode = (await t.locator('.join-code').textContent())!.trim();
    await t.getByRole('button', { name: 'New join code' }).click();
    await t.getByText('New join code made; the old one no longer works.').waitFor();
    expect((await t.locator('.join-code').textContent())!.trim()).not.toBe(oldCode);

    // Archive: read-only, with a banner on every page of the course; and back.
    await t.getByRole('button', { name: 'Archive course' }).click();
    await t.locator('.archived-banner').waitFor();
    await t.goto(`/exercises/${js.id}`);
    await t.locator('.archived-banner').waitFor();
    expect(await t.getByRole('button', { name: 'Submit' }).isDisabled()).toBe(true);
    await checkA11yBoth(t, 'archived exercise (staff)');
    await t.goto(`/courses/${course.id}`);
    await t.getByRole('button', { name: 'Unarchive course' }).click();
    await t.getByRole('button', { name: 'Archive course', exact: true }).waitFor();
    expect(await t.locator('.archived-banner').count()).toBe(0);

    // Delete an exercise that has submissions: the server refuses (409), the teacher confirms again.
    await t.goto(`/exercises/${js.id}/edit`);
    await t.getByRole('button', { name: 'Delete exercise' }).click();
    await t.getByRole('heading', { name: 'One', level: 1 }).waitFor();
    expect(teacher.confirms.slice(-2)).toEqual([
      'Delete the exercise "Triple"?',
      expect.stringContaining('Students have submitted to this exercise.'),
    ]);
    await t.getByText('This lesson has no exercises.').waitFor();

    for (const w of [teacher, student]) {
      expect(await cspViolations(w.page)).toEqual([]);
      expect(w.problems).toEqual([]);
    }
    console.log('axe violations per page:', JSON.stringify(axeResults));
    for (const w of [teacher, student]) await w.context.close();
  }, 180_000);
});
