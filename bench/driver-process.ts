/**
 * The callback bench's driver (bench/processes.ts starts it): the client of both sides, in a process
 * of its own, timing each request itself. It sends GET /callback to the stack process as a browser
 * would, and does the same I/O as the callback directly (bench/direct-callback.ts). One process for
 * both, so JIT and garbage-collector state are the same for both sides, and the bench process, busy
 * with logins and bookkeeping, times neither. Driven over IPC between timed requests.
 */
import '../functions/adapters/quiet';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { createDynamoClient } from '../functions/adapters/dynamo';
import { readStoreConfig } from '../functions/core/config';
import { createServices, fieldCipher } from '../functions/services';
import { directCallback, get, type PendingCallback } from './direct-callback';
import { serveWorker } from './worker';

let direct: ((pending: PendingCallback) => ReturnType<ReturnType<typeof directCallback>>) | undefined;
let warm: ((count: number) => Promise<void>) | undefined;
let destroy: (() => void) | undefined;

const cpuSince = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

serveWorker(
  { kind: 'ready' },
  async (request) => {
    switch (request.kind) {
      case 'configure': {
        // The same client factory as the handlers: only what is around the I/O differs.
        const dynamo = createDynamoClient(readStoreConfig(request.stack.env));
        destroy = () => dynamo.destroy();
        // The stack's field key (its local key file, named in its environment).
        const cipher = fieldCipher(createServices(request.stack.env));
        direct = directCallback({ stack: request.stack, dynamo, trivialUrl: request.trivialUrl, cipher });
        const { stack, trivialUrl } = request;
        warm = async (count) => {
          for (let i = 0; i < count; i++) {
            await dynamo.send(
              new GetItemCommand({ TableName: stack.env.SESSIONS_TABLE, Key: { id: { S: `warm#${i}` } } }),
            );
            await fetch(`${stack.sandbox!.apiBaseUrl}/v1/identity/profile`, {
              headers: { authorization: 'Bearer not-a-token', accept: 'application/json' },
            }).then((res) => res.text());
            await get(trivialUrl);
          }
        };
        return { kind: 'ok' };
      }
      case 'warm':
        await warm?.(request.count);
        return { kind: 'ok' };
      case 'direct': {
        if (!direct) throw new Error('not configured');
        const cpu = process.cpuUsage();
        const times = await direct(request.pending);
        return { kind: 'direct', times, cpuMs: cpuSince(cpu) };
      }
      case 'callback': {
        const cpu = process.cpuUsage();
        const started = performance.now();
        const res = await get(request.url, request.cookie);
        const ms = performance.now() - started;
        return {
          kind: 'callback',
          ms,
          cpuMs: cpuSince(cpu),
          status: res.status,
          location: res.headers.get('location'),
        };
      }
      default:
        return undefined;
    }
  },
  async () => destroy?.(),
);
