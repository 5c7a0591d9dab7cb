import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import client from 'prom-client';
import { overloaded } from '../shared/errors.ts';
import type { AppDeps } from './app-deps.ts';

type Release = () => void;

/**
 * A counting semaphore with a bounded queue, bounded in length and in waiting time: past either
 * bound the caller is refused at once instead of joining an ever-growing line.
 */
export class Limiter {
  active = 0;
  private readonly waiting: { grant: (r: Release) => void; timer: NodeJS.Timeout }[] = [];

  constructor(
    readonly max: number,
    readonly maxQueue: number,
    readonly maxWaitMs: number,
  ) {}

  get queued() {
    return this.waiting.length;
  }

  acquire(): Promise<Release> {
    if (this.active < this.max) {
      this.active += 1;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.maxQueue)
      return Promise.reject(overloaded('Too many heavy requests are running; retry shortly.'));
    return new Promise((resolve, reject) => {
      const entry = {
        grant: resolve,
        timer: setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(entry), 1);
          reject(overloaded('A heavy request waited too long for its turn; retry shortly.'));
        }, this.maxWaitMs),
      };
      this.waiting.push(entry);
    });
  }

  private releaser(): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      if (next) {
        // The slot passes straight to the next in line; `active` is unchanged.
        clearTimeout(next.timer);
        next.grant(this.releaser());
      } else {
        this.active -= 1;
      }
    };
  }
}

/**
 * Routes marked `config: { heavy: true }` (gradebook, CSV export, regrade) run at most
 * HEAVY_CONCURRENCY at a time per instance, with a queue of 4 × that; they also use the separate heavy
 * pool, so a burst of them cannot take the connections light requests need.
 */
export function registerHeavyLimiter(app: FastifyInstance, deps: AppDeps): Limiter {
  const { config, metrics } = deps;
  const limiter = new Limiter(
    config.HEAVY_CONCURRENCY,
    config.HEAVY_CONCURRENCY * 4,
    config.DB_POOL_ACQUIRE_TIMEOUT_MS,
  );
  new client.Gauge({
    name: 'lab_heavy_requests',
    help: 'Heavy requests by state (running, queued)',
    labelNames: ['state'] as const,
    registers: [metrics.registry],
    collect() {
      this.set({ state: 'running' }, limiter.active);
      this.set({ state: 'queued' }, limiter.queued);
    },
  });
  const admit: preHandlerHookHandler = (_request, reply, done) => {
    limiter.acquire().then((release) => {
      // The response's 'close' fires once it is sent or the client has gone away, whichever comes first.
      // (The request's own 'close' fires as soon as its body is read, long before the handler ends.)
      reply.raw.once('close', release);
      done();
    }, done);
  };
  // On the heavy routes only: the others do not run a hook for nothing.
  app.addHook('onRoute', (route) => {
    if (!route.config?.heavy) return;
    const own = route.preHandler;
    route.preHandler = own === undefined ? [admit] : [admit, ...(Array.isArray(own) ? own : [own])];
  });
  return limiter;
}
