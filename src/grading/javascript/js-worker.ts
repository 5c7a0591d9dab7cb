import { parentPort, workerData } from 'node:worker_threads';
import type { RawOutcome, SandboxJob } from '../sandbox.types.ts';
import { QuickJsInstances, runJsJob } from './js-sandbox.ts';

// One job at a time; the pool (js-pool.ts) watches the phases and terminates this thread when a
// phase outlives its deadline.
const port = parentPort!;
const instances = new QuickJsInstances(workerData.wasm as WebAssembly.Module);

// A test's outcome travels with the next message (the next test's phase, or the end of the job):
// half the messages per job, and the host's timer is re-armed by the same message.
port.on('message', async (msg: { job: SandboxJob; startIndex: number; totalLeftMs: number }) => {
  let done: { index: number; outcome: RawOutcome } | null = null;
  const end = await runJsJob(
    msg.job,
    instances,
    {
      phase: (phase) => {
        // The pool times compiling and loading together, from the moment it handed the job over.
        if (phase === 'load') return;
        port.postMessage({ type: 'phase', phase, done });
        done = null;
      },
      outcome: (index, outcome) => {
        done = { index, outcome };
      },
    },
    msg.startIndex,
    Date.now() + msg.totalLeftMs,
  ).catch((e: unknown) => ({
    kind: 'infrastructure' as const,
    message: `The JavaScript sandbox failed: ${e instanceof Error ? e.message : String(e)}`,
  }));
  port.postMessage({ type: 'end', end, done });
});
port.postMessage({ type: 'ready' });
