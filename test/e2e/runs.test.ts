import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkA11yBoth, DESKTOP, type Lab, openPage, setCode, signUp, startLab } from './harness.ts';

/**
 * The slow paths of running code, in Chromium: with a short request timeout the server answers a
 * run of an endless loop 202 (queued) and the console waits for run.updated; a submission of it shows
 * "Running" while it runs, not "Queued". And a staff page names members past the first page of 100.
 */

let lab: Lab;

beforeAll(async () => {
  // A run waits for its result at most REQUEST_TIMEOUT_MS − 1 s: 1 s here, less than the loop's 3 s.
  lab = await startLab({ REQUEST_TIMEOUT_MS: 2000, REGISTRATIONS_PER_HOUR: 1000 });
}, 120_000);

afterAll(async () => {
  await lab?.close();
});

/** A user of the API with a cookie session, as a browser would have (same-origin writes). */
async function apiUser(name: string, email: string) {
  const reg = await fetch(`${lab.base}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, email, password: 'correct horse battery' }),
  });
  expect(reg.status).toBe(201);
  const cookie = reg.headers.get('set-cookie')!.split(';')[0]!;
  return async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${lab.base}/api/v1${path}`, {
      method,
      headers: {
        cookie,
        origin: lab.base,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    expect(res.ok, `${method} ${path}: ${res.status} ${text}`).toBe(true);
    return text ? JSON.parse(text) : null;
  };
}

describe('runs and submissions that take long', () => {
  it('a 202 run finishes in the console through run.updated; a long submission shows Running', async () => {
    const stamp = Date.now().toString(36);
    const teacher = await apiUser('Ida Teacher', `ida-${stamp}@example.com`);
    const { course } = await teacher('POST', '/courses', { title: 'Loops' });
    const { lesson } = await teacher('POST', `/courses/${course.id}/lessons`, { title: 'Loops', body: '' });
    const { exercise } = await teacher('POST', `/lessons/${lesson.id}/exercises`, {
      title: 'Forever',
      language: 'javascript',
      entrypoint: 'f',
      tests: [{ name: 'one', kind: 'call', args: [1], expected: 1 }],
      maxScore: 1,
      limits: { timeMs: 3000 },
    });

    const student = await openPage(lab, DESKTOP);
    const s = student.page;
    await signUp(s, 'Lou Student', `lou-${stamp}@example.com`);
    await s.getByLabel('Join code').fill(course.joinCode);
    await s.getByRole('button', { name: 'Join' }).click();
    await s.getByRole('heading', { name: 'Loops', level: 1 }).waitFor();
    await s.goto(`/exercises/${exercise.id}`);
    await s.getByRole('heading', { name: 'Forever', level: 1 }).waitFor();
    await setCode(s, 'Code (JavaScript)', 'function f(x) {\n  while (true) {}\n}\n');

    // Run: answered 202 before the loop's time limit is over; the console shows it pending, then the
    // verdict from the event stream (or a poll), with no reload.
    const runResponse = s.waitForResponse(
      (r) => r.url().endsWith('/runs') && r.request().method() === 'POST',
    );
    await s.getByRole('button', { name: 'Run', exact: true }).click();
    expect((await runResponse).status()).toBe(202);
    const run = s.locator('.console .run');
    await run.and(s.locator('[data-status="queued"], [data-status="running"]')).waitFor();
    await run.and(s.locator('[data-status="failed"], [data-status="error"]')).waitFor({ timeout: 20_000 });
    expect(await run.textContent()).toMatch(/time limit/i);
    await checkA11yBoth(s, 'exercise with a finished 202 run (student)');

    // Submit: "Running" is shown while the loop runs (the stream only reports the verdict).
    await s.getByRole('button', { name: 'Submit' }).click();
    const result = s.locator('.live-result .submission');
    await result.and(s.locator('[data-status="running"]')).waitFor({ timeout: 10_000 });
    expect(await result.locator('.badge').first().textContent()).toBe('Running');
    await result.and(s.locator('[data-status="failed"], [data-status="error"]')).waitFor({ timeout: 20_000 });
    expect(student.problems).toEqual([]);
    await student.context.close();
  }, 90_000);

  it('the submissions page names a member past the first 100 (the members list is paged through)', async () => {
    const stamp = `m${Date.now().toString(36)}`;
    const teacherEmail = `uma-${stamp}@example.com`;
    const teacher = await apiUser('Uma Teacher', teacherEmail);
    const { course } = await teacher('POST', '/courses', { title: 'Big class' });
    const { lesson } = await teacher('POST', `/courses/${course.id}/lessons`, { title: 'L', body: '' });
    const { exercise } = await teacher('POST', `/lessons/${lesson.id}/exercises`, {
      title: 'Echo',
      language: 'javascript',
      entrypoint: 'f',
      tests: [{ name: 'one', kind: 'call', args: [1], expected: 1 }],
      maxScore: 1,
    });
    // 100 students join first, then the one who submits: member number 102 with the teacher.
    for (let i = 0; i < 100; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, j) => {
          const u = await apiUser(`Student ${i + j}`, `s${i + j}-${stamp}@example.com`);
          await u('POST', '/courses/join', { joinCode: course.joinCode });
        }),
      );
    }
    const last = await apiUser('Zed Latecomer', `zed-${stamp}@example.com`);
    await last('POST', '/courses/join', { joinCode: course.joinCode });
    await last('POST', `/exercises/${exercise.id}/submissions`, { code: 'function f(x) { return x; }' });

    const page = await openPage(lab, DESKTOP);
    const t = page.page;
    await t.goto('/signin');
    await t.getByLabel('Email').fill(teacherEmail);
    await t.getByLabel('Password').fill('correct horse battery');
    await t.getByRole('button', { name: 'Sign in' }).click();
    await t.getByRole('heading', { name: 'My courses', level: 1 }).waitFor();
    await t.goto(`/exercises/${exercise.id}/submissions`);
    await t.locator('[data-submission-card] h2', { hasText: 'Zed Latecomer' }).waitFor();
    expect(page.problems).toEqual([]);
    await page.context.close();
  }, 120_000);
});
