/**
 * The child side of bench/processes.ts: answers the requests every worker answers (its CPU time,
 * CPU profiles, stop) and hands the others to the worker's own handler.
 */
import { CpuProfiler } from './profile';
import type { WorkerRequest, WorkerRequestBody, WorkerResponse, WorkerResponseBody } from './processes';

/**
 * Serves the bench's requests over the IPC channel, one at a time as they come, after announcing
 * `ready`. A failed request is answered with its error message; the process exits after `stop`.
 */
export function serveWorker(
  ready: object,
  handle: (request: WorkerRequestBody) => Promise<WorkerResponseBody | undefined>,
  onStop: () => Promise<void>,
): void {
  const send = (message: object) => process.send?.(message);
  const profiler = new CpuProfiler();
  let profilerOpen = false;
  process.on('message', (request: WorkerRequest) => {
    void (async () => {
      const reply = (body: WorkerResponseBody) => send({ id: request.id, ...body } satisfies WorkerResponse);
      try {
        switch (request.kind) {
          case 'cpu': {
            const used = process.cpuUsage();
            reply({ kind: 'cpu', cpuMs: (used.user + used.system) / 1000 });
            return;
          }
          case 'profile-start':
            if (!profilerOpen) await profiler.open();
            profilerOpen = true;
            await profiler.start();
            reply({ kind: 'ok' });
            return;
          case 'profile-stop':
            reply({ kind: 'profile', breakdown: await profiler.stop(request.file) });
            return;
          case 'stop':
            if (profilerOpen) profiler.close();
            await onStop();
            reply({ kind: 'ok' });
            process.exit(0);
            return;
          default: {
            const body = await handle(request);
            reply(body ?? { kind: 'error', message: `unknown request "${request.kind}"` });
          }
        }
      } catch (error) {
        reply({ kind: 'error', message: error instanceof Error ? error.message : String(error) });
      }
    })();
  });
  // The bench went away: do not outlive it.
  process.on('disconnect', () => void onStop().finally(() => process.exit(0)));
  send(ready);
}
