import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance } from 'fastify';
import { isDatabaseUnavailable, isStatementTimeout } from '../db/errors.ts';
import { AppError, overloaded, unavailable } from '../shared/errors.ts';
import type { OnRequestStep } from './request-steps.ts';
import { detailsFrom } from './validation.ts';

function send(reply: import('fastify').FastifyReply, err: AppError) {
  if (err.headers) reply.headers(err.headers);
  const body: { code: string; message: string; details?: unknown } = { code: err.code, message: err.message };
  if (err.details) body.details = err.details;
  return reply.status(err.statusCode).type('application/json; charset=utf-8').send({ error: body });
}

/** Maps any thrown error to API.md's error shape. Only a bug produces a 500, and it is logged. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  // Drizzle wraps what a query's pool threw (a busy pool's 503) in its own error.
  const cause = (err as { cause?: unknown } | null)?.cause;
  if (cause instanceof AppError) return cause;
  if (!(err instanceof Error)) return new AppError(500, 'internal', 'Internal error; it has been logged.');
  const fe = err as FastifyError & { validation?: import('ajv').ErrorObject[]; validationContext?: string };
  if (fe.validation) {
    const details = detailsFrom(fe.validation, fe.validationContext);
    const first = details[0];
    return new AppError(
      400,
      'validation_failed',
      first ? `${first.field} ${first.message}` : 'Invalid request.',
      details,
    );
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError(400, 'invalid_json', 'The request body is not valid JSON.');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError(413, 'payload_too_large', 'The request body is larger than this route accepts.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError(415, 'unsupported_media_type', 'Send the body as application/json.');
  }
  if (err instanceof SyntaxError)
    return new AppError(400, 'invalid_json', 'The request body is not valid JSON.');
  if (isDatabaseUnavailable(err) || isDatabaseUnavailable((err as { cause?: unknown }).cause))
    return unavailable();
  if (isStatementTimeout(err) || isStatementTimeout((err as { cause?: unknown }).cause))
    return overloaded('The database took too long; retry shortly.');
  const status = fe.statusCode ?? 500;
  if (status === 503) return overloaded(fe.message);
  if (status >= 400 && status < 500) {
    const code =
      status === 404
        ? 'not_found'
        : status === 413
          ? 'payload_too_large'
          : status === 415
            ? 'unsupported_media_type'
            : 'bad_request';
    return new AppError(status, code, fe.message);
  }
  return new AppError(500, 'internal', 'Internal error; it has been logged.');
}

const mebibytes = (bytes: number) => `${+(bytes / 1024 / 1024).toFixed(2)} MiB`;

/**
 * Fastify enforces bodyLimit only where it parses a body, so a GET (or any method it does not parse)
 * with a huge declared body would be served; API.md wants 413 on every route, unread.
 */
export function bodyLengthLimit(app: FastifyInstance): OnRequestStep {
  const appLimit = app.initialConfig.bodyLimit ?? 1024 * 1024;
  return (request) => {
    const header = request.headers['content-length'];
    if (header === undefined) return undefined;
    // A route may accept more (the course import).
    const limit = request.routeOptions.bodyLimit ?? appLimit;
    if (Number(header) <= limit) return undefined;
    return new AppError(
      413,
      'payload_too_large',
      `The request body is larger than ${mebibytes(limit)} (this route's limit).`,
    );
  };
}

export function registerErrorHandler(app: FastifyInstance) {
  app.setErrorHandler((err, request, reply) => {
    const appErr = toAppError(err);
    if (appErr.statusCode >= 500 && appErr.statusCode !== 503)
      request.log.error({ err: loggable(err) }, 'unhandled error');
    else if (appErr.statusCode === 503) request.log.warn({ err: loggable(err).message }, 'unavailable');
    return send(reply, appErr);
  });
  app.setNotFoundHandler((request, reply) =>
    send(reply, new AppError(404, 'not_found', `No route ${request.method} ${request.url.split('?')[0]}.`)),
  );
}

/**
 * What of an error goes into the log: never the parameters of a failed query (Drizzle puts them in
 * the message and in `params`: a password hash on register, a session token's hash, a student's code).
 */
export function loggable(err: unknown): { type: string; message: string; code?: string; stack?: string } {
  if (!(err instanceof Error)) return { type: typeof err, message: String(err) };
  const cause = (err as { cause?: unknown }).cause;
  const query = (err as { query?: unknown }).query;
  if (typeof query === 'string' && 'params' in err) {
    // A DrizzleQueryError: keep the SQL text (placeholders only) and the database's own error.
    const inner = cause instanceof Error ? cause : null;
    return {
      type: err.name,
      message: `${inner?.message ?? 'query failed'} (in: ${query.slice(0, 500)})`,
      code: (inner as { code?: string } | null)?.code,
      stack: inner?.stack?.split('\n').slice(1).join('\n'),
    };
  }
  return {
    type: err.name,
    message: err.message.split('\nparams:')[0]!,
    code: (err as { code?: string }).code,
    stack: err.stack?.split('\n').slice(1).join('\n'),
  };
}

const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  HPE_HEADER_OVERFLOW: [
    431,
    'request_header_fields_too_large',
    'The request headers are larger than the server accepts.',
  ],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request_timeout', 'The request took too long to arrive.'],
};

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (headers too large, malformed
 * HTTP): answered in API.md's error shape too, then the connection is closed.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: import('node:net').Socket) {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] = CLIENT_ERRORS[err.code ?? ''] ?? [
    400,
    'bad_request',
    'The request is not valid HTTP.',
  ];
  const body = JSON.stringify({ error: { code, message } });
  if (socket.writable)
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  socket.destroy(err);
}
