import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerErrorHandler } from './error-handler.ts';
import { contentSecurityPolicy, registerStatic } from './static.ts';

// The static plugin alone, on a throwaway web root, with the app's error handler (JSON 404s).
let dir: string;
let app: FastifyInstance;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lab-static-'));
  app = Fastify({ logger: false });
  registerErrorHandler(app);
  app.get('/api/v1/known', async () => ({ ok: true }));
  await registerStatic(app, { root: dir });
  await app.ready();
});

afterAll(async () => {
  await app.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const html = { accept: 'text/html,application/xhtml+xml' };

describe('static web app', () => {
  it('says how to build the app while web/dist is missing', async () => {
    const res = await app.inject({ url: '/', headers: html });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('npm run build');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
  });

  it('serves index.html with a fresh nonce, CSP and no-cache, for / and for deep links', async () => {
    await fs.mkdir(path.join(dir, 'assets'), { recursive: true });
    await fs.writeFile(
      path.join(dir, 'index.html'),
      '<!doctype html><html><head><title>Lab</title></head><body><script type="module" src="/assets/app-abc12345.js"></script></body></html>',
    );
    await fs.writeFile(path.join(dir, 'assets/app-abc12345.js'), 'console.log(1)');
    await fs.writeFile(path.join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');

    const a = await app.inject({ url: '/', headers: html });
    const b = await app.inject({ url: '/courses/123/gradebook?x=1', headers: html });
    for (const res of [a, b]) {
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toContain('text/html');
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      const nonce = res.body.match(/name="csp-nonce" content="([^"]+)"/)![1]!;
      expect(res.headers['content-security-policy']).toBe(contentSecurityPolicy(nonce));
    }
    const nonceOf = (body: string) => body.match(/content="([^"]+)"/)![1];
    expect(nonceOf(a.body)).not.toBe(nonceOf(b.body));
    expect(a.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(a.headers['content-security-policy']).not.toContain('unsafe-inline');
  });

  it('serves hashed assets as immutable and other files revalidated', async () => {
    const js = await app.inject({ url: '/assets/app-abc12345.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.headers['x-content-type-options']).toBe('nosniff');
    expect(js.body).toBe('console.log(1)');
    const icon = await app.inject({ url: '/favicon.svg' });
    expect(icon.statusCode).toBe(200);
    expect(icon.headers['cache-control']).toBe('no-cache');
  });

  it('keeps JSON 404s for the API, missing assets and non-HTML requests', async () => {
    for (const [url, accept] of [
      ['/api/v1/nope', 'text/html'],
      ['/api', 'text/html'],
      ['/assets/gone-12345678.js', '*/*'],
      ['/courses/1', 'application/json'],
    ] as const) {
      const res = await app.inject({ url, headers: { accept } });
      expect(res.statusCode, url).toBe(404);
      expect(res.json().error.code).toBe('not_found');
    }
    expect((await app.inject({ url: '/api/v1/known' })).json()).toEqual({ ok: true });
  });

  it('never serves a file outside the web root', async () => {
    await fs.writeFile(path.join(path.dirname(dir), 'lab-static-secret.txt'), 'TOP-SECRET-CONTENT');
    for (const url of [
      '/../lab-static-secret.txt',
      '/%2e%2e/lab-static-secret.txt',
      '/assets/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/%E0%A4%A',
    ]) {
      const res = await app.inject({ url, headers: { accept: '*/*' } });
      expect([400, 404], url).toContain(res.statusCode);
      expect(res.body).not.toContain('TOP-SECRET-CONTENT');
    }
    await fs.rm(path.join(path.dirname(dir), 'lab-static-secret.txt'));
  });
});
