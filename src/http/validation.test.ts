import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { requireParamSchemas, validatorCompiler } from './validation.ts';

describe('path parameters reach SQL only through their schema', () => {
  it('refuses a route with path parameters and no params schema when it is declared', async () => {
    const app = Fastify();
    requireParamSchemas(app);
    expect(() => app.get('/things/:id', async () => ({}))).toThrow(
      'GET /things/:id: path parameters without a params schema',
    );
    app.get(
      '/things/:id',
      { schema: { params: { type: 'object', properties: { id: { type: 'string' } } } } },
      async () => ({}),
    );
    app.get('/things', async () => ({}));
    await app.ready();
    await app.close();
  });

  it('checks params and querystrings for text Postgres cannot store, after their schema passed', () => {
    const schema = { type: 'object', properties: { id: { type: 'string', minLength: 2 } } };
    const params = validatorCompiler({ schema, method: 'GET', url: '/x/:id', httpPart: 'params' }) as (
      d: unknown,
    ) => unknown;
    expect(params({ id: 'ok' })).toBe(true);
    expect(params({ id: 'a' })).toBe(false);
    expect((params as unknown as { errors: unknown[] }).errors).toHaveLength(1);
    const refused = params({ id: 'a\u0000b' }) as { error: { details: { field: string }[] } };
    expect(refused.error.details[0]!.field).toBe('params.id');
    const query = validatorCompiler({ schema, method: 'GET', url: '/x', httpPart: 'querystring' }) as (
      d: unknown,
    ) => unknown;
    expect(
      (query({ id: 'x\ud800' }) as { error: { details: { field: string }[] } }).error.details[0]!.field,
    ).toBe('query.id');
    // Bodies are checked as they are parsed (app.ts), not here.
    const body = validatorCompiler({ schema, method: 'POST', url: '/x', httpPart: 'body' }) as (
      d: unknown,
    ) => unknown;
    expect(body({ id: 'a\u0000b' })).toBe(true);
  });
});
