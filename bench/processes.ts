/**
 * The callback bench's processes, each doing one side's work in a process of its own, driven over an
 * IPC channel between timed requests (never during one):
 *
 * - the stack process (bench/stack-process.ts): the local stack as `npm start` runs it, on the
 *   bench's DynamoDB Local with fresh tables; the bench is its HTTP client;
 * - the driver process (bench/driver-process.ts): the client of both sides, timing each request
 *   itself: GET /callback as a browser would, and the same I/O as the callback done directly
 *   (bench/direct-callback.ts). One process for both, so JIT and GC state, which the bench
 *   process's own work (logins, bookkeeping) would skew, are the same for both.
 *
 * Both run TypeScript through tsx (`node --import tsx`), as `npm start` does.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DirectPart, PendingCallback, StackEndpoints } from './direct-callback';
import type { CpuBreakdown } from './profile';

/** What the stack process announces once it listens. */
export interface StackReady extends StackEndpoints {
  readonly kind: 'ready';
  readonly pid: number;
}

/** What the bench may ask a worker. */
export type WorkerRequestBody =
  | { readonly kind: 'cpu' | 'since' | 'profile-start' | 'stop' }
  | { readonly kind: 'profile-stop'; readonly file?: string }
  | { readonly kind: 'instrument'; readonly on: boolean }
  | { readonly kind: 'direct'; readonly pending: PendingCallback }
  | { readonly kind: 'callback'; readonly url: string; readonly cookie: string }
  | { readonly kind: 'warm'; readonly count: number }
  | { readonly kind: 'configure'; readonly stack: StackEndpoints; readonly trivialUrl: string };

/** A request with its id. */
export type WorkerRequest = { readonly id: number } & WorkerRequestBody;

/** One DynamoDB request the stack's handlers sent (while instrumented). */
export interface SentDynamoRequest {
  readonly command: string;
  readonly ms: number;
  readonly ok: boolean;
}

/** What a worker may answer. */
export type WorkerResponseBody =
  | { readonly kind: 'ok' }
  | { readonly kind: 'cpu'; readonly cpuMs: number }
  | { readonly kind: 'since'; readonly requests: SentDynamoRequest[]; readonly http: Record<string, number[]> }
  | { readonly kind: 'profile'; readonly breakdown: CpuBreakdown }
  | { readonly kind: 'direct'; readonly times: Record<DirectPart, number>; readonly cpuMs: number }
  | {
      readonly kind: 'callback';
      readonly ms: number;
      readonly cpuMs: number;
      readonly status: number;
      readonly location: string | null;
    }
  | { readonly kind: 'error'; readonly message: string };

/** An answer with the id of its request. */
export type WorkerResponse = { readonly id: number } & WorkerResponseBody;

/** What every worker answers. */
export interface Worker {
  /** The worker's process CPU time (user + system) so far, ms. */
  cpuMs(): Promise<number>;
  /** Starts a CPU profile of the worker (the inspector's sampler, as `node --cpu-prof`). */
  profileStart(): Promise<void>;
  /** Ends it; the raw profile goes to `file` when given. */
  profileStop(file?: string): Promise<CpuBreakdown>;
  stop(): Promise<void>;
}

/** A running stack process. */
export interface StackProcess extends Worker, StackReady {
  /** Bytes and lines the handlers wrote to stdout (their log, a file) so far: read when asked. */
  readonly log: { readonly bytes: number; readonly lines: number };
  /**
   * Turns the instruments on or off: SDK middleware counting the handlers' DynamoDB requests, and
   * diagnostics channel subscribers timing the server's and fetch's requests.
   */
  instrument(on: boolean): Promise<void>;
  /** DynamoDB requests and HTTP timings since the previous call (while instrumented). */
  since(): Promise<{ requests: SentDynamoRequest[]; http: Record<string, number[]> }>;
}

/** A running driver process: the client of both sides. */
export interface DriverProcess extends Worker {
  /**
   * Sends `count` of each request the direct path sends that needs no login (a DynamoDB read, a
   * profile request the sandbox refuses, a page from the trivial server), so the code it runs (SDK,
   * fetch, the trivial server's) is compiled as hot as the stack's, which serves every /login too.
   */
  warm(count: number): Promise<void>;
  /** Does the callback's I/O for `pending` directly, timed in the driver: each part's ms and its CPU ms. */
  direct(pending: PendingCallback): Promise<{ times: Record<DirectPart, number>; cpuMs: number }>;
  /** GET `url` as a browser would (keep-alive, the cookie), timed in the driver: ms, CPU ms, the answer. */
  callback(
    url: string,
    cookie: string,
  ): Promise<{ ms: number; cpuMs: number; status: number; location: string | null }>;
}

/** Spawns `script` with an IPC channel; resolves with its first message and a way to ask it. */
async function spawnWorker<Ready>(
  name: string,
  script: string,
  env: NodeJS.ProcessEnv,
  stdout: 'ignore' | number,
): Promise<{ ready: Ready; ask: (request: WorkerRequestBody) => Promise<WorkerResponse>; stop(): Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(__dirname, script)], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    cwd: join(__dirname, '..'),
    stdio: ['ignore', stdout, 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-4000)));
  const pending = new Map<number, (response: WorkerResponse) => void>();
  let nextId = 1;
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the ${name} process did not start in 120 s: ${stderr}`)), 120_000);
    let started = false;
    child.on('message', (message: { kind?: string; id?: number }) => {
      if (!started) {
        started = true;
        clearTimeout(timer);
        resolve(message as Ready);
        return;
      }
      const response = message as WorkerResponse;
      pending.get(response.id)?.(response);
      pending.delete(response.id);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the ${name} process exited (${code}): ${stderr}`));
    });
  });
  const ask = (request: WorkerRequestBody): Promise<WorkerResponse> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, (response) =>
        response.kind === 'error' ? reject(new Error(`${name} process: ${response.message}`)) : resolve(response),
      );
      child.send({ id, ...request });
    });
  let stopped = false;
  return {
    ready,
    ask,
    async stop() {
      if (stopped) return;
      stopped = true;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await Promise.race([ask({ kind: 'stop' }).catch(() => undefined), exited]);
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** The answers every worker gives, over `ask`. */
function workerBase(name: string, ask: (request: WorkerRequestBody) => Promise<WorkerResponse>) {
  return {
    async cpuMs() {
      const response = await ask({ kind: 'cpu' });
      return response.kind === 'cpu' ? response.cpuMs : Number.NaN;
    },
    async profileStart() {
      await ask({ kind: 'profile-start' });
    },
    async profileStop(file?: string) {
      const response = await ask({ kind: 'profile-stop', file });
      if (response.kind !== 'profile') throw new Error(`${name} process: no profile`);
      return response.breakdown;
    },
  };
}

/**
 * The environment of a local stack the bench measures, in its process or in the bench's: its own
 * tables on the shared DynamoDB Local, any free port, no scheduled refresher, INFO logs.
 */
export function benchStackEnv(dynamoEndpoint: string, suffix: string): Record<string, string> {
  return {
    PORT: '0',
    DYNAMODB_ENDPOINT: dynamoEndpoint,
    TOKENS_TABLE: `bench-tokens-${suffix}`,
    SESSIONS_TABLE: `bench-sessions-${suffix}`,
    REFRESH_SCHEDULE_SECONDS: '0',
    LOG_LEVEL: 'INFO',
    // Lambda's Node 24 would not warn; Node 20 here would, once per client.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

/** Starts the stack process against `dynamoEndpoint`, with fresh tables. */
export async function startStackProcess(dynamoEndpoint: string): Promise<StackProcess> {
  const suffix = randomBytes(4).toString('hex');
  // The handlers' log goes to a file, as `npm start > broker.log` would: the bench, which is the
  // stack's HTTP client, must not also be the reader woken by every log line (under `npm start` that
  // is a terminal; in Lambda, the runtime's log agent).
  const logDir = mkdtempSync(join(tmpdir(), 'kroger-bench-stack-'));
  const logFile = join(logDir, 'stdout.log');
  const logFd = openSync(logFile, 'w');
  let worker;
  try {
    worker = await spawnWorker<StackReady>(
      'stack',
      'stack-process.ts',
      {
        ...benchStackEnv(dynamoEndpoint, suffix),
      },
      logFd,
    );
  } finally {
    closeSync(logFd);
  }
  const { ready, ask, stop } = worker;
  return {
    ...ready,
    ...workerBase('stack', ask),
    log: {
      get bytes() {
        return statSync(logFile).size;
      },
      get lines() {
        return readFileSync(logFile).reduce((n, byte) => (byte === 10 ? n + 1 : n), 0);
      },
    },
    async instrument(on) {
      await ask({ kind: 'instrument', on });
    },
    async since() {
      const response = await ask({ kind: 'since' });
      return response.kind === 'since' ? response : { requests: [], http: {} };
    },
    async stop() {
      await stop();
      rmSync(logDir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts the driver process: it reaches the same DynamoDB Local, tables and sandbox as `stack`, and
 * `trivialUrl` for the page's round trip.
 */
export async function startDriverProcess(stack: StackEndpoints, trivialUrl: string): Promise<DriverProcess> {
  const { ask, stop } = await spawnWorker<{ kind: 'ready' }>(
    'driver',
    'driver-process.ts',
    { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    'ignore',
  );
  // Over IPC, not the environment: the sandbox's client secret is part of it.
  await ask({ kind: 'configure', stack, trivialUrl });
  return {
    ...workerBase('driver', ask),
    async warm(count) {
      await ask({ kind: 'warm', count });
    },
    async direct(pending) {
      const response = await ask({ kind: 'direct', pending });
      if (response.kind !== 'direct') throw new Error('driver process: no result');
      return { times: response.times, cpuMs: response.cpuMs };
    },
    async callback(url, cookie) {
      const response = await ask({ kind: 'callback', url, cookie });
      if (response.kind !== 'callback') throw new Error('driver process: no result');
      return { ms: response.ms, cpuMs: response.cpuMs, status: response.status, location: response.location };
    },
    stop,
  };
}
