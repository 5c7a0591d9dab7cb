import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  type IsolationLayer,
  type RawOutcome,
  type Sandbox,
  type SandboxJob,
  type SandboxRun,
  WATCHDOG_GRACE_MS,
} from '../sandbox.types.ts';
import { type AttemptEnd, type Phase, runAttempts } from '../sandbox-runner.ts';
import { compileQuickJs } from './js-sandbox.ts';

interface Slot {
  worker: Worker;
  busy: boolean;
  dead: boolean;
}

/*
 * The worker's entry. Compiled (dist/, production): plain JavaScript, loaded as it is. From the
 * TypeScript sources (development, tests): loaded through tsx's API, whether or not this process runs
 * under tsx — tsx is a development dependency, resolved only then.
 */
const COMPILED = import.meta.url.endsWith('.js');
const ENTRY = new URL(COMPILED ? './js-worker.js' : './js-worker.ts', import.meta.url);

const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
import(workerData.tsx)
  .then((tsx) => (tsx.tsImport ?? tsx.default.tsImport)(workerData.entry, workerData.entry))
  .catch((e) => { setImmediate(() => { throw e; }); });
`;

/** The worker's code and its workerData besides the WebAssembly module. */
function workerSource(): { script: string | URL; eval: boolean; data: Record<string, string> } {
  if (COMPILED) return { script: ENTRY, eval: false, data: {} };
  // The ESM build of tsx's API (`require.resolve` finds the CommonJS one, which cannot load it in a worker).
  const tsx = pathToFileURL(
    createRequire(import.meta.url)
      .resolve('tsx/esm/api')
      .replace(/index\.cjs$/, 'index.mjs'),
  ).href;
  return { script: BOOTSTRAP, eval: true, data: { entry: ENTRY.href, tsx } };
}

/**
 * The JavaScript sandbox: a small pool of worker threads running QuickJS (js-sandbox.ts). Every
 * phase of a job is watched from here, from the moment the job is handed over (compiling counts):
 * a worker that outlives its phase's deadline by WATCHDOG_GRACE_MS — a loop inside a builtin, or a
 * program that takes long to parse, never checks the interrupt handler — is terminated and replaced.
 */
export class JsPool implements Sandbox {
  readonly language = 'javascript';
  private readonly slots: Slot[] = [];
  private readonly waiting: Array<() => void> = [];
  private wasm: Promise<WebAssembly.Module> | null = null;
  private closed = false;
  private spawning = 0;
  /** Workers terminated by the watchdog or lost to a crash, for tests and `doctor`. */
  replaced = 0;

  constructor(readonly size = availableParallelism()) {}

  /** Attempts waiting for a free worker. */
  get queued(): number {
    return this.waiting.length;
  }

  async unavailable(): Promise<string | null> {
    return null;
  }

  async isolation(): Promise<IsolationLayer[]> {
    return [
      {
        name: 'wasm',
        active: true,
        essential: true,
        detail: 'QuickJS in WebAssembly: no host objects; memory capped by the WebAssembly memory',
      },
      {
        name: 'watchdog',
        active: true,
        essential: true,
        detail: `a worker past its phase's deadline by ${WATCHDOG_GRACE_MS} ms is terminated and replaced`,
      },
    ];
  }

  /**
   * Starts every worker now rather than on first use: a worker's start (loading the module and
   * compiling QuickJS's WebAssembly) takes a few hundred ms, which the first submissions would
   * otherwise wait for. Graders call this at start.
   */
  async warm(): Promise<void> {
    const slots = await Promise.all(
      Array.from({ length: Math.max(0, this.size - this.slots.length - this.spawning) }, () =>
        this.acquire(),
      ),
    );
    for (const slot of slots) this.release(slot);
  }

  run(job: SandboxJob): Promise<SandboxRun> {
    return runAttempts(job, async (start, budget, outcomes) => {
      let slot: Slot;
      try {
        slot = await this.acquire();
      } catch (e) {
        return { kind: 'infrastructure', message: `The JavaScript sandbox failed: ${(e as Error).message}` };
      }
      try {
        return await this.attempt(slot, job, start, budget.start(), outcomes);
      } finally {
        this.release(slot);
      }
    });
  }

  private attempt(
    slot: Slot,
    job: SandboxJob,
    startIndex: number,
    deadline: number,
    outcomes: Array<RawOutcome | undefined>,
  ): Promise<AttemptEnd> {
    const worker = slot.worker;
    return new Promise((resolve) => {
      let phase: Phase = 'load';
      let timer: NodeJS.Timeout | undefined;
      const finish = (end: AttemptEnd) => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        resolve(end);
      };
      const terminate = (end: AttemptEnd) => {
        slot.dead = true;
        void worker.terminate();
        finish(end);
      };
      // The worker reports the phases itself (it is our code; the student's runs inside QuickJS).
      const arm = (next: Phase) => {
        phase = next;
        clearTimeout(timer);
        const limit = job.timeMs + WATCHDOG_GRACE_MS;
        const left = deadline - performance.now() + WATCHDOG_GRACE_MS;
        const why = left < limit ? 'total' : 'time';
        timer = setTimeout(
          () => terminate({ kind: 'stopped', phase: next, why, detail: '' }),
          Math.max(0, Math.min(limit, left)),
        );
      };
      type Done = { index: number; outcome: RawOutcome } | null;
      const onMessage = (msg: { type: string; phase?: Phase; done?: Done; end?: AttemptEnd }) => {
        if (msg.done) outcomes[msg.done.index] = msg.done.outcome;
        if (msg.type === 'phase') arm(msg.phase!);
        else if (msg.type === 'end') finish(msg.end!);
      };
      const died = (detail: string) => {
        slot.dead = true;
        // Closing the pool terminates busy workers too: that is never the program's doing.
        finish(
          this.closed
            ? { kind: 'infrastructure', message: `The JavaScript sandbox failed: ${detail}` }
            : { kind: 'stopped', phase, why: 'crash', detail },
        );
      };
      const onError = (e: Error) => died(e.message);
      const onExit = (code: number) => died(`the worker exited with code ${code}`);
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      // Timed from here: compiling the program is part of loading it.
      arm('load');
      worker.postMessage({ job, startIndex, totalLeftMs: deadline - performance.now() });
    });
  }

  private async acquire(): Promise<Slot> {
    for (;;) {
      if (this.closed) throw new Error('The JavaScript sandbox pool is closed.');
      const idle = this.slots.find((s) => !s.busy && !s.dead);
      if (idle) {
        idle.busy = true;
        idle.worker.ref();
        return idle;
      }
      if (this.slots.length + this.spawning < this.size) {
        // Counted while it boots, so that callers arriving meanwhile do not start one each.
        this.spawning++;
        try {
          const slot: Slot = { worker: await this.spawn(), busy: true, dead: false };
          this.slots.push(slot);
          return slot;
        } finally {
          this.spawning--;
        }
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  private release(slot: Slot): void {
    slot.busy = false;
    if (slot.dead) {
      this.replaced++;
      this.slots.splice(this.slots.indexOf(slot), 1);
      void slot.worker.terminate();
    } else {
      // An idle worker must not keep the process alive.
      slot.worker.unref();
    }
    this.waiting.shift()?.();
  }

  private async spawn(): Promise<Worker> {
    this.wasm ??= compileQuickJs();
    const source = workerSource();
    const worker = new Worker(source.script, {
      eval: source.eval,
      workerData: { wasm: await this.wasm, ...source.data },
      // QuickJS's own heap is the WebAssembly.Memory (capped per job); this bounds the host side.
      // 8 MB of thread stack holds WORKER_STACK_BYTES of QuickJS frames with room to spare.
      resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32, stackSizeMb: 8 },
      stdout: true,
      stderr: true,
    });
    // Nothing a worker prints is part of a result; do not let a full pipe block it.
    worker.stdout.resume();
    worker.stderr.resume();
    // A worker that cannot boot is the platform's failure, not the next submission's.
    await new Promise<void>((resolve, reject) => {
      const onMessage = (msg: { type: string }) => {
        if (msg.type !== 'ready') return;
        cleanup();
        resolve();
      };
      const onFailure = (e: Error | number) => {
        cleanup();
        reject(e instanceof Error ? e : new Error(`the worker exited with code ${e} while starting`));
      };
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onFailure);
        worker.off('exit', onFailure);
      };
      worker.on('message', onMessage);
      worker.on('error', onFailure);
      worker.on('exit', onFailure);
    });
    return worker;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const resolve of this.waiting.splice(0)) resolve();
    await Promise.all(this.slots.splice(0).map((s) => s.worker.terminate()));
  }
}
