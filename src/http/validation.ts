import Ajv, { type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance, FastifySchemaCompiler } from 'fastify';
import { type ErrorDetail, validationFailed } from '../shared/errors.ts';
import { firstUnstorableField } from './storable-text.ts';

// Bodies are validated strictly (no type coercion, no silent removal of unknown fields: API.md
// rejects them); querystrings, params and headers arrive as strings and are coerced.
const strict = addFormats.default(
  new Ajv.default({
    coerceTypes: false,
    useDefaults: true,
    removeAdditional: false,
    allErrors: true,
    strict: false,
  }),
);
const coercing = addFormats.default(
  new Ajv.default({
    coerceTypes: 'array',
    useDefaults: true,
    removeAdditional: false,
    allErrors: true,
    strict: false,
  }),
);

type Validate = ReturnType<FastifySchemaCompiler<unknown>>;

/**
 * Querystrings and path parameters reach SQL too, so they are also checked for text Postgres cannot
 * store (bodies are, as they are parsed). Done here, after the schema passed, rather than in a hook
 * every request runs; a route that declares no schema for a part never reads it (its type is unknown).
 */
export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const ajv = httpPart === 'body' ? strict : coercing;
  const validate = ajv.compile(schema as object);
  if (httpPart !== 'params' && httpPart !== 'querystring') return validate as Validate;
  const part = httpPart === 'params' ? 'params' : 'query';
  const checked = (data: unknown) => {
    if (!validate(data)) {
      checked.errors = validate.errors;
      return false;
    }
    const bad = firstUnstorableField(data ?? null, part);
    return bad ? { error: unstorableText(bad) } : true;
  };
  checked.errors = null as ErrorObject[] | null | undefined;
  return checked as Validate;
};

export const unstorableText = (field: string) =>
  validationFailed(field, 'contains a character that cannot be stored (U+0000 or an unpaired surrogate)');

export function detailsFrom(errors: ErrorObject[], part: string | undefined): ErrorDetail[] {
  return errors.map((e) => {
    let field = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
    if (e.keyword === 'required')
      field = [field, (e.params as { missingProperty: string }).missingProperty].filter(Boolean).join('.');
    if (e.keyword === 'additionalProperties')
      field = [field, (e.params as { additionalProperty: string }).additionalProperty]
        .filter(Boolean)
        .join('.');
    const message =
      e.keyword === 'additionalProperties' ? 'is not an accepted field' : (e.message ?? 'is invalid');
    return { field: field || (part ?? 'body'), message };
  });
}

/**
 * A route with path parameters must declare their schema: the validator is where they are checked
 * (above), so a route without one would pass them to SQL unchecked. Refused when the app is built.
 */
export function requireParamSchemas(app: FastifyInstance) {
  app.addHook('onRoute', (route) => {
    if (route.url.includes(':') && !route.schema?.params)
      throw new Error(`${route.method} ${route.url}: path parameters without a params schema`);
  });
}
