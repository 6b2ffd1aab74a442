/**
 * Counting what a path really does, without guessing: DynamoDB requests seen by the SDK client's own
 * middleware stack, tagged with the caller through AsyncLocalStorage, and the log bytes a handler
 * writes to stdout (what Lambda ships to CloudWatch Logs).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/** One DynamoDB request as the client sent it. */
export interface DynamoRequest {
  /** Which client sent it (the name given to {@link DynamoCounter.attach}). */
  readonly client: string;
  /** `GetItemCommand`, `UpdateItemCommand`, ... */
  readonly command: string;
  /** The context tag active when it was sent (see {@link DynamoCounter.run}). */
  readonly tag?: string;
  /** False when DynamoDB refused it (a failed condition counts too: it is billed). */
  readonly ok: boolean;
  /**
   * Set when {@link DynamoCounter.askCapacity} was on: read or write units, table and indexes
   * together, and of those the global secondary indexes' share. Unset for a refused write (DynamoDB
   * bills it, at least 1 WCU; DynamoDB Local does not say how much).
   */
  readonly readUnits?: number;
  readonly writeUnits?: number;
  readonly indexUnits?: number;
  /** The UpdateExpression (no values), to tell a lease write from a token write. */
  readonly update?: string;
  readonly ms: number;
}

/**
 * Records every request of the DynamoDB clients attached to it. With `askCapacity` it adds
 * `ReturnConsumedCapacity: 'INDEXES'` to each request (DynamoDB Local then reports units, global
 * secondary indexes included); leave it off while timing, so the requests are exactly the code's.
 */
export class DynamoCounter {
  readonly requests: DynamoRequest[] = [];
  askCapacity = false;
  /** Tag for requests sent outside {@link run} (sequential phases). */
  tag?: string;
  private readonly context = new AsyncLocalStorage<string>();

  /** Adds the counting middleware to `client` (idempotent per name). */
  attach(client: DynamoDBClient, name: string): void {
    const step = `bench-counter-${name}`;
    forgetResolvedMiddleware(client);
    client.middlewareStack.remove(step);
    client.middlewareStack.add(
      (next, ctx) => async (args) => {
        const input = args.input as Record<string, unknown>;
        if (this.askCapacity) input.ReturnConsumedCapacity = 'INDEXES';
        const started = performance.now();
        const tag = this.context.getStore() ?? this.tag;
        const record = (ok: boolean, output?: Record<string, unknown>) => {
          const capacity = output?.ConsumedCapacity as
            { CapacityUnits?: number; GlobalSecondaryIndexes?: Record<string, { CapacityUnits?: number }> } | undefined;
          const command = ctx.commandName ?? 'unknown';
          const units = capacity?.CapacityUnits;
          const isRead = /^(Get|BatchGet|Query|Scan)/.test(command);
          this.requests.push({
            client: name,
            command,
            tag,
            ok,
            readUnits: isRead ? units : undefined,
            writeUnits: isRead ? undefined : units,
            indexUnits:
              capacity?.GlobalSecondaryIndexes &&
              Object.values(capacity.GlobalSecondaryIndexes).reduce((sum, i) => sum + (i.CapacityUnits ?? 0), 0),
            update: typeof input.UpdateExpression === 'string' ? input.UpdateExpression : undefined,
            ms: performance.now() - started,
          });
        };
        try {
          const result = await next(args);
          record(true, result.output as unknown as Record<string, unknown>);
          return result;
        } catch (error) {
          // A refused conditional write still consumed capacity; DynamoDB Local does not say how much.
          record(false);
          throw error;
        }
      },
      { step: 'initialize', name: step },
    );
  }

  /**
   * Runs `fn` with every request it causes tagged `tag` (AsyncLocalStorage follows the awaits).
   * Its hooks slow every promise of the process: call {@link stopTagging} before timing anything else.
   */
  run<T>(tag: string, fn: () => Promise<T>): Promise<T> {
    return this.context.run(tag, fn);
  }

  stopTagging(): void {
    this.context.disable();
  }

  /** Requests recorded from `since` (an index into {@link requests}) on. */
  since(index: number): DynamoRequest[] {
    return this.requests.slice(index);
  }

  get mark(): number {
    return this.requests.length;
  }
}

/**
 * A client created with `cacheMiddleware` (as the broker's are) resolves its middleware stack once
 * per command class and keeps the result: after adding or removing a step, the cache must go.
 */
export function forgetResolvedMiddleware(client: DynamoDBClient): void {
  delete (client as unknown as { handlers?: unknown }).handlers;
}

/**
 * A DynamoDB client for the bench's own table work (create, seed, scan, delete) against DynamoDB
 * Local: the SDK's defaults, without the broker's short request timeouts, so a busy DynamoDB Local
 * slows it down instead of failing it (a create or delete retried after a timeout finds the first
 * attempt's work done and fails).
 */
export function benchAdminClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
}

/** `{GetItemCommand: 2, UpdateItemCommand: 1}` style counts, with a `client/` prefix. */
export function countByCommand(requests: readonly DynamoRequest[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of requests) {
    const key = `${r.client}: ${r.command.replace(/Command$/, '')}${r.ok ? '' : ' (refused)'}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/**
 * Takes over `process.stdout.write` while installed: the handlers' JSON log lines are counted (bytes
 * and lines) and dropped, so stdout stays the report. A real write to a pipe is a syscall of a few
 * microseconds; the milliseconds measured here are not changed by dropping it.
 */
export class LogTap {
  bytes = 0;
  lines = 0;
  private original?: typeof process.stdout.write;

  install(): void {
    if (this.original) return;
    this.original = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      this.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      this.lines += 1;
      const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }) as typeof process.stdout.write;
  }

  uninstall(): void {
    if (this.original) process.stdout.write = this.original;
    this.original = undefined;
  }

  /** Bytes and lines written while `fn` ran (other concurrent writers included). */
  async measure<T>(fn: () => Promise<T>): Promise<{ result: T; bytes: number; lines: number }> {
    const bytes = this.bytes;
    const lines = this.lines;
    const result = await fn();
    return { result, bytes: this.bytes - bytes, lines: this.lines - lines };
  }
}

/**
 * Times HTTP without touching the code under test: Node's diagnostics channels for the HTTP server
 * (`http.server.request.start` / `response.finish`) and for fetch (`undici:request:create` /
 * `trailers`), matched by path.
 */
export class HttpClock {
  /** path -> durations of completed requests, in order. */
  readonly done = new Map<string, number[]>();
  private readonly open = new Map<object, { path: string; started: number }>();
  private readonly onStart = (message: unknown) => {
    const { request } = message as { request: { url?: string; path?: string } };
    this.open.set(request, {
      path: new URL(request.url ?? request.path ?? '/', 'http://x').pathname,
      started: performance.now(),
    });
  };
  private readonly onEnd = (message: unknown) => {
    const { request } = message as { request: object };
    const entry = this.open.get(request);
    if (!entry) return;
    this.open.delete(request);
    const list = this.done.get(entry.path) ?? [];
    list.push(performance.now() - entry.started);
    this.done.set(entry.path, list);
  };
  private readonly channels: Array<[string, (message: unknown) => void]> = [
    ['http.server.request.start', this.onStart],
    ['http.server.response.finish', this.onEnd],
    ['undici:request:create', this.onStart],
    ['undici:request:trailers', this.onEnd],
  ];

  start(): void {
    for (const [name, fn] of this.channels) subscribe(name, fn);
  }

  stop(): void {
    for (const [name, fn] of this.channels) unsubscribe(name, fn);
  }

  /** Takes (and forgets) the durations recorded for paths ending in `suffix`. */
  take(suffix: string): number[] {
    const out: number[] = [];
    for (const [path, list] of this.done) {
      if (path.endsWith(suffix)) {
        out.push(...list);
        this.done.delete(path);
      }
    }
    return out;
  }

  clear(): void {
    this.done.clear();
  }
}
