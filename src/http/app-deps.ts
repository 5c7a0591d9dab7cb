import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { Config } from '../config.ts';
import type { Database } from '../db/client.ts';
import type { Lifecycle } from './health.ts';
import type { Metrics } from './metrics.ts';
import type { IpLimits } from './rate-limits.ts';

/*
 * What route modules and HTTP plugins receive from the app (src/app.ts builds it), in a module of its
 * own: route files importing these types back from app.ts made app.ts and every route file one import
 * circle.
 */

/** The Fastify instance routes are registered on: TypeBox schemas type the handlers. */
export type TypedApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface AppDeps {
  config: Config;
  database: Database;
  lifecycle: Lifecycle;
  metrics: Metrics;
  ipLimits: IpLimits;
  /**
   * Wakes idle graders (NOTIFY on the jobs channel from this instance's LISTEN connection, coalesced),
   * called once a transaction that queued grading has committed.
   */
  wakeGraders: () => void;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The JSON body as sent, for the few routes that read part of it as written. */
    rawBody?: string;
  }
  interface FastifyInstance {
    deps: AppDeps;
  }
  interface FastifyContextConfig {
    /** Heavy routes (gradebook, CSV, regrade) run under their own concurrency limit and pool. */
    heavy?: boolean;
  }
}
