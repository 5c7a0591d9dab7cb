import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../shared/errors.ts';

export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../web/dist', import.meta.url));

/**
 * The CSP of the app's HTML. Scripts only from our origin (Vite emits no inline script). CodeMirror
 * injects a <style> element, so styles get a per-response nonce instead of 'unsafe-inline'; the page
 * reads it from a meta tag and hands it to CodeMirror (EditorView.cspNonce).
 */
export function contentSecurityPolicy(nonce: string) {
  return [
    "default-src 'self'",
    "script-src 'self'",
    `style-src 'self' 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const NO_BUILD = `<!doctype html><html lang="en"><meta charset="utf-8"><title>Lab</title>
<body><h1>Lab's web app is not built</h1>
<p>The API is running at <code>/api/v1</code>, but <code>web/dist</code> is missing.
Run <code>npm run build</code> (or <code>npm start</code>, which builds it) and reload.</p></body></html>`;

const ONE_YEAR = 365 * 24 * 3600;

/** Vite names everything under assets/ by content hash: such a file never changes, so caches keep it. */
const isHashedAsset = (file: string) => /[\\/]assets[\\/][^\\/]+$/.test(file);

/**
 * Serves the browser app from web/dist at `/`: files with cache headers (hashed assets immutable,
 * others revalidated), and index.html for any other GET that asks for HTML, so deep links work.
 * Unknown /api paths and non-HTML requests keep the API's JSON 404. Looked up per request, so a build
 * made after start-up is picked up without a restart.
 */
export async function registerStatic(app: FastifyInstance, opts: { root?: string } = {}) {
  const root = path.resolve(opts.root ?? DEFAULT_WEB_ROOT);
  await app.register(fastifyStatic, {
    root,
    serve: false,
    preCompressed: true,
    setHeaders(reply: FastifyReply, file: string) {
      reply.header('x-content-type-options', 'nosniff');
      reply.header(
        'cache-control',
        isHashedAsset(file) ? `public, max-age=${ONE_YEAR}, immutable` : 'no-cache',
      );
    },
  });

  let cached: { mtimeMs: number; html: string } | null = null;
  async function indexHtml(): Promise<string | null> {
    const file = path.join(root, 'index.html');
    try {
      const stat = await fs.stat(file);
      if (!cached || cached.mtimeMs !== stat.mtimeMs) {
        cached = { mtimeMs: stat.mtimeMs, html: await fs.readFile(file, 'utf8') };
      }
      return cached.html;
    } catch {
      return null;
    }
  }

  async function sendIndex(reply: FastifyReply) {
    const html = await indexHtml();
    const nonce = randomBytes(16).toString('base64');
    reply
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'same-origin')
      .header('content-security-policy', contentSecurityPolicy(nonce))
      .type('text/html; charset=utf-8');
    if (html === null) return reply.code(503).header('retry-after', '5').send(NO_BUILD);
    return reply.send(html.replace('<head>', `<head>\n    <meta name="csp-nonce" content="${nonce}" />`));
  }

  async function existingFile(pathname: string): Promise<string | null> {
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathname);
    } catch {
      return null;
    }
    if (decoded.includes('\0')) return null;
    const full = path.resolve(root, `.${path.posix.normalize(decoded)}`);
    if (!full.startsWith(root + path.sep)) return null;
    try {
      return (await fs.stat(full)).isFile() ? path.relative(root, full) : null;
    } catch {
      return null;
    }
  }

  const notFound = (request: FastifyRequest) =>
    new AppError(404, 'not_found', `No route ${request.method} ${request.url.split('?')[0]}.`);

  app.get('/*', { schema: { hide: true } }, async (request, reply) => {
    const pathname = request.url.split('?')[0]!;
    if (pathname === '/api' || pathname.startsWith('/api/')) throw notFound(request);
    if (pathname !== '/' && pathname !== '/index.html') {
      const file = await existingFile(pathname);
      if (file) return reply.sendFile(file, { cacheControl: false });
    }
    const accept = request.headers.accept ?? '';
    if (pathname === '/' || pathname === '/index.html' || accept.includes('text/html'))
      return sendIndex(reply);
    throw notFound(request);
  });
}
