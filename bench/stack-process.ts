/**
 * The local stack in a process of its own, as `npm start` runs it (bench/processes.ts starts it):
 * the bench drives it over HTTP only, so its adapter, handlers, logging and SDK work cost this
 * process's CPU, not the bench's. Over IPC, between timed requests, it tells where it listens (and
 * the sandbox's generated client secret, which the direct path authenticates with too), its CPU time,
 * CPU profiles, and while instrumented the DynamoDB and HTTP timings of the last request. The
 * instruments (SDK middleware, diagnostics channel subscribers) are off unless asked for.
 */
import '../functions/adapters/quiet';
import { startLocalStack } from '../infra/local/stack';
import { dynamoClient } from '../functions/services';
import { DynamoCounter, forgetResolvedMiddleware, HttpClock } from './instrument';
import type { StackReady } from './processes';
import { serveWorker } from './worker';

async function main(): Promise<void> {
  const stack = await startLocalStack(process.env);
  const counter = new DynamoCounter();
  const clock = new HttpClock();
  const dynamo = dynamoClient(stack.services);
  let mark = counter.mark;
  const sandbox = stack.sandbox;
  const ready: StackReady = {
    kind: 'ready',
    pid: process.pid,
    baseUrl: stack.baseUrl,
    loginUrl: stack.loginUrl,
    env: stack.env,
    sandbox: sandbox && {
      oauth2BaseUrl: sandbox.oauth2BaseUrl,
      apiBaseUrl: sandbox.apiBaseUrl,
      clientId: sandbox.clientId,
      clientSecret: sandbox.clientSecret,
    },
  };
  serveWorker(
    ready,
    async (request) => {
      switch (request.kind) {
        case 'instrument':
          if (request.on) {
            counter.attach(dynamo, 'handler');
            clock.start();
          } else {
            dynamo.middlewareStack.remove('bench-counter-handler');
            forgetResolvedMiddleware(dynamo);
            clock.stop();
          }
          mark = counter.mark;
          clock.clear();
          return { kind: 'ok' };
        case 'since': {
          const requests = counter.since(mark).map((r) => ({ command: r.command, ms: r.ms, ok: r.ok }));
          mark = counter.mark;
          const http: Record<string, number[]> = {};
          for (const [path, list] of clock.done) http[path] = list;
          clock.clear();
          return { kind: 'since', requests, http };
        }
        default:
          return undefined;
      }
    },
    async () => {
      clock.stop();
      await stack.stop();
    },
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`bench stack process failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
