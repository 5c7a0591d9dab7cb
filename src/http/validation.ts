import Ajv, { type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';
import type { ErrorDetail } from '../shared/errors.ts';

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

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const ajv = httpPart === 'body' ? strict : coercing;
  return ajv.compile(schema as object) as ReturnType<FastifySchemaCompiler<unknown>>;
};

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
