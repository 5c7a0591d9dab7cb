import { parentPort, workerData } from 'node:worker_threads';
import type { SandboxJob } from '../sandbox.types.ts';
import { QuickJsInstances, runJsJob } from './js-sandbox.ts';

// One job at a time; the pool (js-pool.ts) watches the phases and terminates this thread when a
// phase outlives its deadline.
const port = parentPort!;
const instances = new QuickJsInstances(workerData.wasm as WebAssembly.Module);

port.on('message', async (msg: { job: SandboxJob; startIndex: number; totalLeftMs: number }) => {
  const end = await runJsJob(
    msg.job,
    instances,
    {
      phase: (phase) => port.postMessage({ type: 'phase', phase }),
      outcome: (index, outcome) => port.postMessage({ type: 'outcome', index, outcome }),
    },
    msg.startIndex,
    Date.now() + msg.totalLeftMs,
  ).catch((e: unknown) => ({
    kind: 'infrastructure' as const,
    message: `The JavaScript sandbox failed: ${e instanceof Error ? e.message : String(e)}`,
  }));
  port.postMessage({ type: 'end', end });
});
port.postMessage({ type: 'ready' });
