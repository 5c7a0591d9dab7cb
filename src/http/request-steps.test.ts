import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { AppError } from '../shared/errors.ts';
import { registerErrorHandler } from './error-handler.ts';
import { pressureReason } from './overload.ts';
import { registerRequestSteps } from './request-steps.ts';

describe('request steps (one hook each way)', () => {
  it('runs the steps in order; an error answers and skips the later steps and the handler; every response step runs', async () => {
    const seen: string[] = [];
    const app = Fastify({ logger: false });
    registerErrorHandler(app);
    registerRequestSteps(app, {
      onRequest: [
        (request) => {
          seen.push(`first ${request.url}`);
          return undefined;
        },
        (request) => (request.url === '/refused' ? new AppError(403, 'forbidden', 'No.') : undefined),
        (request) => {
          seen.push(`third ${request.url}`);
          return undefined;
        },
      ],
      onResponse: [
        (_request, reply) => seen.push(`done ${reply.statusCode}`),
        (request) => seen.push(`after ${request.url}`),
      ],
    });
    app.get('/ok', async () => {
      seen.push('handler');
      return { ok: true };
    });
    app.get('/refused', async () => {
      seen.push('refused handler');
      return { ok: true };
    });
    const ok = await app.inject({ method: 'GET', url: '/ok' });
    expect(ok.statusCode).toBe(200);
    const refused = await app.inject({ method: 'GET', url: '/refused' });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toEqual({ error: { code: 'forbidden', message: 'No.' } });
    expect(seen).toEqual([
      'first /ok',
      'third /ok',
      'handler',
      'done 200',
      'after /ok',
      'first /refused',
      'done 403',
      'after /refused',
    ]);
    await app.close();
  });
});

describe('pressureReason (load shedding decision)', () => {
  const sample = { eventLoopDelay: 5, eventLoopUtilized: 0.5, heapUsed: 100, rssBytes: 1000 };
  it('sheds past either threshold, the event loop first', () => {
    expect(pressureReason(sample, 4, 0)).toBe('eventLoopDelay');
    expect(pressureReason(sample, 4, 50)).toBe('eventLoopDelay');
    expect(pressureReason(sample, 10, 50)).toBe('heapUsedBytes');
    expect(pressureReason(sample, 10, 500)).toBeNull();
  });
  it('a threshold of 0 is off, and a sample without a loop measurement (start-up) is not load', () => {
    expect(pressureReason({ ...sample, eventLoopDelay: 1e9, heapUsed: 1e12 }, 0, 0)).toBeNull();
    expect(pressureReason({ ...sample, eventLoopDelay: Number.POSITIVE_INFINITY }, 1, 0)).toBeNull();
  });
});
