import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  newQuickJSWASMModuleFromVariant,
  newVariant,
  type QuickJSContext,
  type QuickJSHandle,
  type QuickJSRuntime,
  type QuickJSWASMModule,
  RELEASE_SYNC,
} from 'quickjs-emscripten';
import {
  MAX_OUTPUT_CHARS,
  MAX_SHOWN_OUTPUT,
  MAX_VALUE_CHARS,
  type Printed,
  type RawOutcome,
  type SandboxJob,
  type SandboxTest,
} from '../sandbox.types.ts';
import type { AttemptEnd } from '../sandbox-runner.ts';

/*
 * QuickJS compiled to WebAssembly: student code has no host objects at all (no require, process,
 * import), only what the bootstrap below installs. Limits, as measured on quickjs-emscripten 0.32:
 * - memory: `setMemoryLimit` under-counts (a 32 MB limit let 534 MB of ArrayBuffers through), so the
 *   real cap is the WebAssembly.Memory maximum: one WASM instance per memory limit, never larger
 *   than 16 MB (the module's own minimum) + memoryMb. QuickJS turns a failed malloc into an
 *   "out of memory" exception; anything worse traps, and the instance is thrown away.
 * - time: the interrupt handler is polled by the bytecode loop only; a loop inside a builtin
 *   (`Array(2**32-1).indexOf(1)`, a catastrophic regex) ignores it, so the pool's watchdog
 *   terminates the worker (js-pool.ts).
 * - stack: `setMaxStackSize` turns deep recursion into a catchable RangeError.
 */

const WASM_PAGE = 64 * 1024;
const BASE_PAGES = 256; // the release-sync module's declared minimum (16 MB: data, C stack, first heap)
/** QuickJS stack for a worker with an 8 MB thread stack (js-pool.ts): about 5,000 frames deep. */
export const WORKER_STACK_BYTES = 1024 * 1024;
// A WASM instance that grew past this is dropped after the job so its memory goes back to the OS.
const KEEP_INSTANCE_BELOW_BYTES = 64 * 1024 * 1024;
const CACHED_INSTANCES = 3;

export function compileQuickJs(): Promise<WebAssembly.Module> {
  const req = createRequire(createRequire(import.meta.url).resolve('quickjs-emscripten'));
  return WebAssembly.compile(readFileSync(req.resolve('@jitl/quickjs-wasmfile-release-sync/wasm')));
}

interface Instance {
  module: QuickJSWASMModule;
  memory: WebAssembly.Memory;
  broken: boolean;
}

/** WASM instances of QuickJS, one per memory limit, reused across jobs (each job gets a fresh runtime). */
export class QuickJsInstances {
  private readonly byLimit = new Map<number, Instance>();
  created = 0;

  constructor(
    private readonly wasm: WebAssembly.Module,
    /** Must stay well below the host thread's own stack: WASM frames live on it too. */
    readonly stackBytes = WORKER_STACK_BYTES,
  ) {}

  async get(memoryMb: number): Promise<Instance> {
    const cached = this.byLimit.get(memoryMb);
    if (cached && !cached.broken) return cached;
    const memory = new WebAssembly.Memory({ initial: BASE_PAGES, maximum: BASE_PAGES + memoryMb * 16 });
    const module = await newQuickJSWASMModuleFromVariant(
      newVariant(RELEASE_SYNC, { wasmModule: this.wasm, wasmMemory: memory }),
    );
    this.created++;
    const instance = { module, memory, broken: false };
    this.byLimit.delete(memoryMb);
    this.byLimit.set(memoryMb, instance);
    for (const key of this.byLimit.keys()) {
      if (this.byLimit.size <= CACHED_INSTANCES) break;
      this.byLimit.delete(key);
    }
    return instance;
  }

  /** After a job: forget instances that broke or grew, so the next job starts clean and small. */
  tidy(): void {
    for (const [key, inst] of this.byLimit) {
      if (inst.broken || inst.memory.buffer.byteLength > KEEP_INSTANCE_BELOW_BYTES) this.byLimit.delete(key);
    }
  }
}

export interface JsHooks {
  /** A timed phase starts: loading the program for call tests, or test `index`. */
  phase(phase: 'load' | number): void;
  outcome(index: number, outcome: RawOutcome): void;
}

// Installed before the student's code; `write` and `input` come from the host and are kept in this
// closure only. console.error/warn go to stderr in Node, which is not judged, so they are dropped.
const BOOTSTRAP = `(function (write, input) {
  'use strict';
  const str = String, stringify = JSON.stringify, isArray = Array.isArray;
  const fmt = (v) => {
    if (typeof v === 'string') return v;
    if (typeof v === 'object' && v !== null) {
      try { const s = stringify(v); if (s !== undefined) return s; } catch {}
    }
    return str(v);
  };
  const log = (...args) => { write(args.map(fmt).join(' ') + '\\n'); };
  const drop = () => {};
  globalThis.console = { log, info: log, debug: log, error: drop, warn: drop, trace: drop };
  globalThis.stdin = input;
  const lines = input.length === 0 ? [] : input.replace(/\\r\\n/g, '\\n').split('\\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  let next = 0;
  globalThis.readLine = () => (next < lines.length ? lines[next++] : null);
  void isArray;
})`;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** The submission-level message when a call test's entrypoint is absent (same wording in Python). */
export function missingEntrypoint(name: string, kind: string): string {
  const shown = `\`${name.slice(0, 100)}\``;
  return kind === 'undefined' || kind === ''
    ? `entrypoint ${shown} is not defined`
    : `entrypoint ${shown} is not a function (it is ${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind})`;
}

/** A deadline noticed on the host side (between promise jobs), not by the interrupt handler. */
class TimedOut extends Error {}

/** The WASM instance itself failed (a trap, an abort, a host-side error): it is not reused. */
class HostFailure extends Error {
  constructor(
    readonly detail: string,
    readonly memory: boolean,
  ) {
    super(detail);
  }
}

/** One program run inside a context: a call-test module or one io-test program. */
class Program {
  output = '';
  truncated = false;
  private readonly parse: QuickJSHandle;
  private readonly stringify: QuickJSHandle;

  constructor(
    readonly vm: QuickJSContext,
    input: string,
  ) {
    const write = vm.newFunction('write', (text) => {
      if (this.truncated) return { error: vm.newError('Output limit exceeded') };
      this.output += vm.getString(text);
      if (this.output.length > MAX_OUTPUT_CHARS) {
        this.output = this.output.slice(0, MAX_OUTPUT_CHARS);
        this.truncated = true;
        return { error: vm.newError('Output limit exceeded') };
      }
    });
    const boot = vm.unwrapResult(vm.evalCode(BOOTSTRAP, 'bootstrap.js'));
    const inputHandle = vm.newString(input);
    vm.unwrapResult(vm.callFunction(boot, vm.undefined, write, inputHandle)).dispose();
    inputHandle.dispose();
    boot.dispose();
    write.dispose();
    // The host keeps the pristine JSON functions: student code may replace the globals.
    const json = vm.getProp(vm.global, 'JSON');
    this.parse = vm.getProp(json, 'parse');
    this.stringify = vm.getProp(json, 'stringify');
    json.dispose();
  }

  /** The call's arguments, parsed inside the VM from the JSON text the instructor wrote. */
  argumentsFrom(argsJson: string): QuickJSHandle[] {
    const text = this.vm.newString(argsJson);
    let list: QuickJSHandle;
    try {
      list = this.vm.unwrapResult(this.vm.callFunction(this.parse, this.vm.undefined, text));
    } finally {
      text.dispose();
    }
    try {
      const lengthHandle = this.vm.getProp(list, 'length');
      const length = this.vm.getNumber(lengthHandle);
      lengthHandle.dispose();
      return Array.from({ length }, (_, i) => this.vm.getProp(list, i));
    } finally {
      list.dispose();
    }
  }

  resetOutput(): void {
    this.output = '';
    this.truncated = false;
  }

  printed(): Printed {
    return { text: this.output.slice(0, MAX_SHOWN_OUTPUT), size: this.output.length };
  }

  /** JSON text of a VM value, or null for undefined / functions. Throws the VM error it raised. */
  toJson(handle: QuickJSHandle): string | null {
    const result = this.vm.callFunction(this.stringify, this.vm.undefined, handle);
    if (result.error) throw new VmError(this.vm, result.error);
    const text = this.vm.typeof(result.value) === 'string' ? this.vm.getString(result.value) : null;
    result.value.dispose();
    return text;
  }

  dispose(): void {
    this.parse.dispose();
    this.stringify.dispose();
    this.vm.dispose();
  }
}

/** An exception thrown inside QuickJS, read into host strings at once (the handle is freed). */
class VmError extends Error {
  readonly outOfMemory: boolean;
  readonly interrupted: boolean;
  /** null or undefined was thrown: what QuickJS throws when not even the error object fits. */
  readonly empty: boolean;
  constructor(vm: QuickJSContext, handle: QuickJSHandle) {
    let name = 'Error';
    let message = '';
    let line: string | null = null;
    let empty = false;
    try {
      const type = vm.typeof(handle);
      const isNull = type === 'object' && vm.sameValue(handle, vm.null);
      if (isNull) {
        empty = true;
        name = 'Uncaught';
        message = 'null';
      } else if (type === 'object') {
        const read = (key: string) => {
          const h = vm.getProp(handle, key);
          try {
            return vm.typeof(h) === 'string' ? vm.getString(h) : null;
          } finally {
            h.dispose();
          }
        };
        name = read('name') ?? 'Error';
        message = read('message') ?? '';
        const stack = read('stack') ?? '';
        line = /submission\.js:(\d+)/.exec(stack)?.[1] ?? null;
      } else if (type === 'undefined') {
        empty = true;
        name = 'Uncaught';
        message = 'undefined';
      } else {
        name = 'Uncaught';
        message = type === 'string' ? vm.getString(handle) : String(vm.dump(handle));
      }
    } catch {
      empty = true;
    } finally {
      handle.dispose();
    }
    super(`${name.slice(0, 100)}: ${message.slice(0, 2000)}${line ? ` (line ${line})` : ''}`);
    this.empty = empty;
    this.outOfMemory = name === 'InternalError' && message === 'out of memory';
    this.interrupted = name === 'InternalError' && message === 'interrupted';
  }
}

/**
 * Runs tests `startIndex..` of a job in this worker. The worker reports each phase so the pool can
 * kill it when a builtin ignores the deadline (the pool's watchdog is armed before this starts, so
 * compiling is timed too); a fresh runtime per job means nothing a student does survives into the
 * next job. `totalDeadline` (Date.now() clock) is the whole job's budget.
 */
export async function runJsJob(
  job: SandboxJob,
  instances: QuickJsInstances,
  hooks: JsHooks,
  startIndex: number,
  totalDeadline: number,
): Promise<AttemptEnd> {
  let session: Session | null = null;
  try {
    for (let index = startIndex; index < job.tests.length; index++) {
      const test = job.tests[index]!;
      if (!session) {
        hooks.phase('load');
        session = new Session(instances, await instances.get(job.memoryMb), job, totalDeadline);
        // With call tests ahead, the context that checks the syntax becomes the module's.
        const syntax = session.checkSyntax(job.tests.slice(index).some((t) => t.kind === 'call'));
        if (syntax) return syntax;
      }
      if (test.kind === 'call' && !session.module) {
        hooks.phase('load');
        const failure = session.load();
        if (failure) return failure;
      }
      hooks.phase(index);
      const outcome = session.run(test);
      if (outcome.kind === 'timeout') return { kind: 'stopped', phase: index, why: 'time', detail: '' };
      if (outcome.kind === 'skipped') return { kind: 'stopped', phase: index, why: 'total', detail: '' };
      hooks.outcome(index, outcome);
      if (session.instance.broken) {
        session.dispose();
        session = null;
      }
    }
    return { kind: 'done' };
  } finally {
    session?.dispose();
    instances.tidy();
  }
}

class Session {
  readonly runtime: QuickJSRuntime;
  module: { program: Program; fn: QuickJSHandle | null } | null = null;
  /** The context checkSyntax compiled in, waiting to become the module's (see checkSyntax). */
  private moduleVm: QuickJSContext | null = null;
  private deadline = Number.POSITIVE_INFINITY;

  constructor(
    instances: QuickJsInstances,
    readonly instance: Instance,
    private readonly job: SandboxJob,
    private readonly totalDeadline: number,
  ) {
    this.runtime = instance.module.newRuntime();
    // Under-counts (see the top of this file), but still stops some allocations early and cleanly.
    this.runtime.setMemoryLimit(job.memoryMb * 1024 * 1024);
    this.runtime.setMaxStackSize(instances.stackBytes);
    this.runtime.setInterruptHandler(() => Date.now() > this.deadline);
  }

  /** Starts a timed phase: the time limit, or what is left of the job's total, whichever ends first. */
  private arm(): void {
    this.deadline = Math.min(Date.now() + this.job.timeMs, this.totalDeadline);
  }

  private pastTotal(): boolean {
    return Date.now() >= this.totalDeadline;
  }

  /**
   * A syntax error, or a program the parser cannot take (nested too deeply): the student's `error`.
   * With `keepForModule`, the context is kept for load() (one context less per job: ~0.2 ms).
   */
  checkSyntax(keepForModule: boolean): AttemptEnd | null {
    const vm = this.runtime.newContext();
    let keep = false;
    try {
      const result = vm.evalCode(this.job.code, 'submission.js', { compileOnly: true });
      if (result.error) return { kind: 'fatal', message: new VmError(vm, result.error).message };
      result.value.dispose();
      if (keepForModule) {
        this.moduleVm = vm;
        keep = true;
      }
      return null;
    } catch (e) {
      // The parser recursed past the host stack (e.g. tens of thousands of nested brackets).
      this.instance.broken = true;
      return {
        kind: 'fatal',
        message: `The program could not be compiled: it is nested too deeply (${e instanceof Error ? e.message : String(e)}).`,
      };
    } finally {
      try {
        if (!keep) vm.dispose();
      } catch {
        this.instance.broken = true;
      }
    }
  }

  private guarded<T>(work: () => T, onError: (e: VmError | HostFailure | TimedOut) => T): T {
    try {
      return work();
    } catch (e) {
      if (e instanceof VmError || e instanceof TimedOut) return onError(e);
      // A trap inside the WASM instance (a failed memory.grow, the host stack exhausted, an abort):
      // its state is not trusted any more.
      this.instance.broken = true;
      const memory =
        this.instance.memory.buffer.byteLength >= (BASE_PAGES + this.job.memoryMb * 16) * WASM_PAGE;
      return onError(new HostFailure(e instanceof Error ? e.message : String(e), memory));
    } finally {
      this.deadline = Number.POSITIVE_INFINITY;
    }
  }

  /** The instance grew to (nearly) its cap: a failure now is most likely the memory limit. */
  private memoryFull(): boolean {
    const max = (BASE_PAGES + this.job.memoryMb * 16) * WASM_PAGE;
    return this.instance.memory.buffer.byteLength >= max - 2 * 1024 * 1024;
  }

  private isMemory(e: VmError | HostFailure): boolean {
    if (e instanceof HostFailure) return e.memory;
    return e.outOfMemory || (e.empty && this.memoryFull());
  }

  /** Evaluates the program for call tests; returns why it could not be loaded, or null. */
  load(): AttemptEnd | null {
    this.arm();
    return this.guarded<AttemptEnd | null>(
      () => {
        const program = new Program(this.moduleVm ?? this.runtime.newContext(), '');
        this.moduleVm = null;
        this.module = { program, fn: null };
        const result = program.vm.evalCode(this.job.code, 'submission.js');
        if (result.error) throw new VmError(program.vm, result.error);
        result.value.dispose();
        const name = this.job.entrypoint ?? '';
        let kind = 'undefined';
        if (IDENTIFIER.test(name)) {
          // `typeof` of an undeclared name is 'undefined', not a ReferenceError.
          const fn = program.vm.evalCode(
            `typeof ${name} === 'function' ? ${name} : typeof ${name}`,
            'entry.js',
          );
          if (fn.error) fn.error.dispose();
          else if (program.vm.typeof(fn.value) === 'function') this.module.fn = fn.value;
          else {
            kind = program.vm.getString(fn.value);
            fn.value.dispose();
          }
        }
        // No function to call: the program cannot be graded at all (an `error`, not N failed tests).
        if (!this.module.fn) return { kind: 'fatal', message: missingEntrypoint(name, kind) };
        return null;
      },
      (e) => {
        if (e instanceof TimedOut || (e instanceof VmError && e.interrupted))
          return { kind: 'stopped', phase: 'load', why: this.pastTotal() ? 'total' : 'time', detail: '' };
        if (this.isMemory(e)) return { kind: 'stopped', phase: 'load', why: 'memory', detail: '' };
        if (e instanceof HostFailure)
          return { kind: 'stopped', phase: 'load', why: 'crash', detail: e.detail };
        return { kind: 'fatal', message: `The program raised an exception while loading: ${e.message}` };
      },
    );
  }

  run(test: SandboxTest): RawOutcome {
    const started = performance.now();
    this.arm();
    const elapsed = () => performance.now() - started;
    if (this.module) this.module.program.resetOutput();
    return this.guarded<RawOutcome>(
      () => (test.kind === 'call' ? this.call(test.argsJson, elapsed) : this.io(test.stdin, elapsed)),
      (e) => {
        const durationMs = elapsed();
        const printed = this.module?.program.printed();
        if (this.isMemory(e as VmError | HostFailure)) {
          // Even a clean "out of memory" leaves a grown, fragmented instance: start the next job anew.
          this.instance.broken = true;
          return { kind: 'memory', durationMs, printed };
        }
        if (e instanceof HostFailure) return { kind: 'crashed', detail: e.detail, durationMs };
        // Past the deadline an interrupt can also surface as a secondary error (e.g. a promise job
        // left half done): anything thrown after the time limit is the time limit.
        if (e instanceof TimedOut || e.interrupted || durationMs > this.job.timeMs)
          return this.pastTotal() ? { kind: 'skipped', reason: 'total' } : { kind: 'timeout', durationMs };
        return { kind: 'raised', error: e.message, durationMs, printed };
      },
    );
  }

  private call(argsJson: string, elapsed: () => number): RawOutcome {
    const { program, fn } = this.module!;
    const vm = program.vm;
    if (!fn) {
      return {
        kind: 'raised',
        error: `The program defines no top-level function named ${this.job.entrypoint ?? '(none)'}.`,
        durationMs: elapsed(),
      };
    }
    const argHandles = program.argumentsFrom(argsJson);
    let value: QuickJSHandle;
    try {
      const result = vm.callFunction(fn, vm.undefined, ...argHandles);
      if (result.error) throw new VmError(vm, result.error);
      value = result.value;
    } finally {
      for (const h of argHandles) h.dispose();
    }
    try {
      value = this.settle(vm, value);
      const json = program.toJson(value);
      const printed = program.printed();
      if (json !== null && json.length > MAX_VALUE_CHARS)
        return { kind: 'raised', error: 'The return value is too large.', durationMs: elapsed(), printed };
      return { kind: 'value', json, durationMs: elapsed(), printed };
    } finally {
      if (value.alive) value.dispose();
    }
  }

  /** An async entrypoint: run its jobs (under the same deadline) until the promise settles. */
  private settle(vm: QuickJSContext, value: QuickJSHandle): QuickJSHandle {
    if (vm.typeof(value) !== 'object') return value;
    let state = vm.getPromiseState(value);
    if (state.type === 'fulfilled' && state.notAPromise) return value;
    while (state.type === 'pending' && this.runtime.hasPendingJob()) {
      if (Date.now() > this.deadline) throw new TimedOut();
      const ran = this.runtime.executePendingJobs(1000);
      if (ran.error) throw new VmError(vm, ran.error);
      state = vm.getPromiseState(value);
    }
    value.dispose();
    // An interrupt inside a job ends that job without settling the promise.
    if (state.type === 'pending' && Date.now() > this.deadline) throw new TimedOut();
    if (state.type === 'pending') throw new VmError(vm, vm.newError('The returned promise never settled.'));
    if (state.type === 'rejected') throw new VmError(vm, state.error);
    return state.value;
  }

  private io(stdin: string, elapsed: () => number): RawOutcome {
    const program = new Program(this.runtime.newContext(), stdin);
    try {
      const result = program.vm.evalCode(this.job.code, 'submission.js');
      if (result.error) {
        const error = new VmError(program.vm, result.error);
        if (!program.truncated) throw error;
      } else {
        result.value.dispose();
      }
      return { kind: 'stdout', stdout: program.output, truncated: program.truncated, durationMs: elapsed() };
    } finally {
      try {
        program.dispose();
      } catch {
        this.instance.broken = true;
      }
    }
  }

  dispose(): void {
    try {
      this.moduleVm?.dispose();
      if (this.module) {
        this.module.fn?.dispose();
        this.module.program.dispose();
      }
      this.runtime.dispose();
    } catch {
      // A leaked handle or a trapped instance: QuickJS aborts; never reuse that instance.
      this.instance.broken = true;
    }
  }
}
