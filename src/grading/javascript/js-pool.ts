import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type RawOutcome, type SandboxJob, type SandboxRun, WATCHDOG_GRACE_MS } from '../sandbox.types.ts';
import { compileQuickJs } from './js-sandbox.ts';

type Phase = 'load' | number;
type Attempt =
  | { kind: 'done'; run: SandboxRun }
  | { kind: 'killed'; phase: Phase }
  | { kind: 'died'; phase: Phase | null; detail: string };

interface Slot {
  worker: Worker;
  busy: boolean;
  dead: boolean;
}

// Workers load the TypeScript entry through tsx's API, whether or not this process runs under tsx.
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
import(workerData.tsx)
  .then((tsx) => (tsx.tsImport ?? tsx.default.tsImport)(workerData.entry, workerData.entry))
  .catch((e) => { setImmediate(() => { throw e; }); });
`;

const ENTRY = new URL('./js-worker.ts', import.meta.url).href;
// The ESM build of tsx's API (`require.resolve` finds the CommonJS one, which cannot load it in a worker).
const TSX = pathToFileURL(
  createRequire(import.meta.url)
    .resolve('tsx/esm/api')
    .replace(/index\.cjs$/, 'index.mjs'),
).href;

/**
 * A small pool of worker threads running QuickJS (js-sandbox.ts). Each phase of a job (loading the
 * program, each test) is watched from here: a worker that outlives the deadline by
 * WATCHDOG_GRACE_MS — a loop inside a builtin never checks the interrupt handler — is terminated
 * and replaced, its test fails with a timeout, and the job resumes on a fresh worker.
 */
export class JsPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Array<() => void> = [];
  private wasm: Promise<WebAssembly.Module> | null = null;
  private closed = false;
  /** Workers terminated by the watchdog or lost to a crash, for tests and `doctor`. */
  replaced = 0;

  constructor(readonly size = availableParallelism()) {}

  async run(job: SandboxJob): Promise<SandboxRun> {
    const outcomes = Array.from<RawOutcome | undefined>({ length: job.tests.length });
    let start = 0;
    let lostWorkers = 0;
    while (start < job.tests.length) {
      const slot = await this.acquire();
      let attempt: Attempt;
      try {
        attempt = await this.attempt(slot, job, start, outcomes);
      } finally {
        this.release(slot);
      }
      if (attempt.kind === 'done') {
        if (attempt.run.kind === 'error') return attempt.run;
        break;
      }
      const phase = attempt.phase;
      if (attempt.kind === 'killed') {
        if (phase === 'load')
          return {
            kind: 'error',
            message: `Loading the program took longer than the time limit (${job.timeMs} ms).`,
            infrastructure: false,
          };
        outcomes[phase as number] = { kind: 'timeout', durationMs: job.timeMs };
        start = (phase as number) + 1;
        continue;
      }
      lostWorkers++;
      if (phase === null || lostWorkers > 3) {
        return {
          kind: 'error',
          message: `The JavaScript sandbox failed: ${attempt.detail}`,
          infrastructure: true,
        };
      }
      if (phase === 'load')
        return {
          kind: 'error',
          message: `The program crashed while loading: ${attempt.detail}`,
          infrastructure: false,
        };
      outcomes[phase] = { kind: 'crashed', detail: attempt.detail, durationMs: 0 };
      start = phase + 1;
    }
    if (outcomes.includes(undefined))
      return { kind: 'error', message: 'The JavaScript sandbox lost a test result.', infrastructure: true };
    return { kind: 'ran', outcomes: outcomes as RawOutcome[] };
  }

  private attempt(
    slot: Slot,
    job: SandboxJob,
    startIndex: number,
    outcomes: Array<RawOutcome | undefined>,
  ): Promise<Attempt> {
    const worker = slot.worker;
    return new Promise((resolve) => {
      let phase: Phase | null = null;
      let timer: NodeJS.Timeout | undefined;
      const finish = (attempt: Attempt) => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        resolve(attempt);
      };
      const onMessage = (msg: {
        type: string;
        phase?: Phase;
        index?: number;
        outcome?: RawOutcome;
        run?: SandboxRun;
      }) => {
        if (msg.type === 'phase') {
          phase = msg.phase!;
          const watched = phase;
          clearTimeout(timer);
          timer = setTimeout(() => {
            slot.dead = true;
            void worker.terminate();
            finish({ kind: 'killed', phase: watched });
          }, job.timeMs + WATCHDOG_GRACE_MS);
        } else if (msg.type === 'outcome') {
          clearTimeout(timer);
          outcomes[msg.index!] = msg.outcome!;
        } else if (msg.type === 'done') {
          finish({ kind: 'done', run: msg.run! });
        }
      };
      const onError = (e: Error) => {
        slot.dead = true;
        finish({ kind: 'died', phase, detail: e.message });
      };
      const onExit = (code: number) => {
        slot.dead = true;
        finish({ kind: 'died', phase, detail: `the worker exited with code ${code}` });
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.postMessage({ job, startIndex });
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
      if (this.slots.length < this.size) {
        const slot: Slot = { worker: await this.spawn(), busy: true, dead: false };
        this.slots.push(slot);
        return slot;
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
    const worker = new Worker(BOOTSTRAP, {
      eval: true,
      workerData: { wasm: await this.wasm, entry: ENTRY, tsx: TSX },
      // QuickJS's own heap is the WebAssembly.Memory (capped per job); this bounds the host side.
      // 8 MB of thread stack holds WORKER_STACK_BYTES of QuickJS frames with room to spare.
      resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32, stackSizeMb: 8 },
      stdout: true,
      stderr: true,
    });
    // Nothing a worker prints is part of a result; do not let a full pipe block it.
    worker.stdout.resume();
    worker.stderr.resume();
    return worker;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const resolve of this.waiting.splice(0)) resolve();
    await Promise.all(this.slots.splice(0).map((s) => s.worker.terminate()));
  }
}
