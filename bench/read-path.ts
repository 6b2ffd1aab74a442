/**
 * The read path: `getAccessToken` of the reader library in its remote mode (what another service in
 * AWS runs), against DynamoDB Local and the sandbox provider, for
 *
 * - a fresh token (one read),
 * - an expired one (reader read -> invoke the refresh function -> its read, lease, provider call,
 *   save -> reader re-read),
 * - 100 concurrent readers of one expired token (one provider call; the waiters' extra latency
 *   over the reader whose invocation held the lease).
 *
 * The refresh function is the real handler (`functions/refresh.ts`) called in this process through
 * the reader's `invokeRefresh` option; the transport is one function ({@link RefreshTransport}) so a
 * local Lambda stand-in can replace it. DynamoDB requests are counted by middleware on the reader's
 * client and on the handlers' shared client, provider calls by the sandbox's own counters.
 */
import { UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { readProviderConfig, readStoreConfig } from '../functions/core/config';
import { createDynamoClient } from '../functions/adapters/dynamo';
import { logEventPublisher } from '../functions/adapters/events';
import { createLogger } from '../functions/adapters/logger';
import { createProviderClient } from '../functions/adapters/provider';
import { DynamoTokenStore } from '../functions/adapters/token-store';
import { fieldCipher } from '../functions/services';
import { createTokenRefresher } from '../functions/flows/single-flight-refresh';
import { createTokenReader, type ReceivedRefreshResult, type RefreshInvoker } from '../functions/reader/index';
import { createRefreshFunctionHandler } from '../functions/handlers';
import type { LocalStack } from '../infra/local/stack';
import { get, startLogin, storedGrant } from './callback-latency';
import { type DynamoCounter, type DynamoRequest, HttpClock, type LogTap } from './instrument';
import { int, median, progress, quantile, round, table } from './stats';

/**
 * How the reader reaches the refresh function. Today: the handler called in this process, with the
 * request and answer passed through JSON as Lambda would. Later: the local Lambda stand-in.
 */
export type RefreshTransport = RefreshInvoker;

/** The real refresh handler behind a JSON boundary, in this process. */
export function inProcessTransport(handler: (event: unknown) => Promise<ReceivedRefreshResult>): RefreshTransport {
  return async (request) => JSON.parse(JSON.stringify(await handler(JSON.parse(JSON.stringify(request)))));
}

/** p50 / p95 in milliseconds. */
export interface Latency {
  readonly p50: number;
  readonly p95: number;
  readonly samples: number;
}

/** DynamoDB requests of one path, by client and command (refused conditional writes apart). */
export type RequestCounts = Record<string, number>;

/** One measured path. */
export interface PathResult {
  readonly latency: Latency;
  /** Requests per `getAccessToken` (the same every time for the single-reader paths). */
  readonly requests: RequestCounts;
  /** Provider token calls per `getAccessToken`. */
  readonly providerCalls: number;
  /** Write and read units per call, from DynamoDB Local's ConsumedCapacity (a separate, counted run). */
  readonly writeUnits?: number;
  readonly readUnits?: number;
}

/** The concurrent case. */
export interface ConcurrentResult {
  readonly readers: number;
  readonly rounds: number;
  /** Provider token calls per round (the goal is 1). */
  readonly providerCallsPerRound: number[];
  /** The reader whose invocation refreshed. */
  readonly holder: Latency;
  /** The others. */
  readonly waiters: Latency;
  /** Waiter latency minus the holder's, same round. */
  readonly waitersExtra: Latency;
  /** DynamoDB requests per round, all readers together. */
  readonly requestsPerRound: RequestCounts;
  /** Refresh function invocations per round. */
  readonly invocationsPerRound: number;
}

/** Everything the section measured. */
export interface ReadPathResult {
  readonly fresh: PathResult;
  /** Expired, through the real refresh handler. */
  readonly expired: PathResult & {
    /** Median milliseconds of each step of the path. */
    readonly steps: Record<string, number>;
  };
  readonly concurrent: ConcurrentResult;
  /**
   * The same through a refresh function that goes straight to the lease (as the scheduled refresher
   * does: the lease update returns the item), skipping its first read. Not the deployed code: what
   * the fix would save, measured.
   */
  readonly leaseFirst: { readonly expired: PathResult; readonly concurrent: ConcurrentResult };
  /** Log bytes the refresh function writes per refresh at INFO. */
  readonly refreshLogBytes: number;
}

const latency = (values: number[]): Latency => ({
  p50: round(median(values), 2),
  p95: round(quantile(values, 0.95), 2),
  samples: values.length,
});

function counts(requests: readonly DynamoRequest[]): RequestCounts {
  const out: RequestCounts = {};
  for (const r of requests) {
    const kind =
      r.command === 'UpdateItemCommand'
        ? /#leaseOwner = :leaseOwner/.test(r.update ?? '')
          ? 'UpdateItem (take the lease)'
          : /REMOVE #leaseOwner, #leaseUntil$/.test(r.update ?? '')
            ? 'UpdateItem (release the lease)'
            : /#accessToken/.test(r.update ?? '')
              ? 'UpdateItem (save the tokens)'
              : 'UpdateItem'
        : r.command.replace(/Command$/, '');
    const key = `${r.client === 'reader' ? 'reader' : 'refresh fn'}: ${kind}${r.ok ? '' : ', refused'}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

function divide(total: RequestCounts, by: number): RequestCounts {
  return Object.fromEntries(Object.entries(total).map(([k, v]) => [k, round(v / by, 2)]));
}

/**
 * Runs the section on the bench stack: one real login makes the user, the rest goes through the
 * reader. `handlerDynamo` is the handlers' shared client (counted as `handler`).
 */
export async function measureReadPath(
  stack: LocalStack,
  deps: { counter: DynamoCounter; handlerDynamo: DynamoDBClient; logs: LogTap },
  options: { freshReads: number; expiredReads: number; readers: number; rounds: number },
): Promise<ReadPathResult> {
  const sandbox = stack.sandbox;
  if (!sandbox) throw new Error('the read path bench needs the sandbox provider');
  const { counter, logs } = deps;
  const env = stack.env;
  const userId = 'bench-reader';
  const pending = await startLogin(stack, userId);
  const done = await get(`${stack.baseUrl}/callback${pending.search}`, pending.cookie);
  if (!storedGrant(stack, done)) throw new Error(`login for the read path answered ${done.status}`);

  // The real refresh function, configured from the same environment the stack gave the handlers.
  const refreshHandler = createRefreshFunctionHandler(stack.services);
  const readerDynamo = createDynamoClient(readStoreConfig(env));
  counter.attach(readerDynamo, 'reader');
  const quiet = createLogger({ level: 'warn', write: () => undefined });
  const reader = (transport: RefreshTransport) =>
    createTokenReader({
      env: { TOKENS_TABLE: env.TOKENS_TABLE, DYNAMODB_ENDPOINT: env.DYNAMODB_ENDPOINT },
      dynamo: readerDynamo,
      invokeRefresh: transport,
      logger: quiet,
    });

  // What-if: a refresh function that takes the lease first (`dueBy: 0` makes the flow skip its first
  // read and decide on the item the lease update returns, exactly as for the scheduled refresher).
  const provider = readProviderConfig(env);
  const leaseFirstRefresher = createTokenRefresher({
    tokens: new DynamoTokenStore(deps.handlerDynamo, env.TOKENS_TABLE, fieldCipher(stack.services)),
    client: createProviderClient(provider, async () => sandbox.clientSecret),
    events: logEventPublisher(quiet),
    logger: quiet,
  });
  const leaseFirstHandler = async (event: unknown): Promise<ReceivedRefreshResult> => {
    const { userId: id, marginSeconds } = event as { userId: string; marginSeconds?: number };
    try {
      // `dueBy` is the sweep's internal option (not in the reader's types): it makes the flow go
      // straight to the lease.
      const options = { marginSeconds, dueBy: 0 } as Parameters<typeof leaseFirstRefresher.getAccessToken>[1];
      const token = await leaseFirstRefresher.getAccessToken(id, options);
      return { ok: true, expiresAt: token.expiresAt };
    } catch (error) {
      return { ok: false, code: (error as { code?: string }).code ?? 'INTERNAL', message: (error as Error).message };
    }
  };

  let invocations = 0;
  const counted =
    (transport: RefreshTransport): RefreshTransport =>
    async (request) => {
      invocations++;
      return transport(request);
    };
  const deployed = reader(counted(inProcessTransport(refreshHandler)));
  const leaseFirst = reader(counted(inProcessTransport(leaseFirstHandler)));

  const expire = async () => {
    const past = String(Math.floor(Date.now() / 1000) - 60);
    await readerDynamo.send(
      new UpdateItemCommand({
        TableName: env.TOKENS_TABLE,
        Key: { userId: { S: userId } },
        UpdateExpression: 'SET expiresAt = :past, nextRefreshAt = :past',
        ExpressionAttributeValues: { ':past': { N: past } },
      }),
    );
  };
  const providerCalls = async () => (await sandbox.stats()).refreshToken;

  /** Runs `reads` sequential reads, `before` each (untimed); returns latencies and what they sent. */
  const sequential = async (
    name: string,
    target: typeof deployed,
    reads: number,
    before?: () => Promise<void>,
    after?: () => void,
  ): Promise<PathResult & { runs: DynamoRequest[][]; times: number[] }> => {
    const times: number[] = [];
    const runs: DynamoRequest[][] = [];
    const calls0 = await providerCalls();
    for (let i = 0; i < reads + 2; i++) {
      await before?.();
      const mark = counter.mark;
      const started = performance.now();
      const token = await target.getAccessToken(userId);
      const ms = performance.now() - started;
      if (token.expiresAt <= Date.now() / 1000) throw new Error(`${name}: got an expired token`);
      if (i < 2) continue; // warm-up
      times.push(ms);
      runs.push(counter.since(mark).filter((r) => r.client === 'reader' || r.client === 'handler'));
      after?.();
    }
    const calls = (await providerCalls()) - calls0;
    // Units in a separate, counted run (asking for ConsumedCapacity changes the requests a little).
    counter.askCapacity = true;
    await before?.();
    const mark = counter.mark;
    await target.getAccessToken(userId);
    counter.askCapacity = false;
    const units = counter.since(mark);
    return {
      latency: latency(times),
      requests: counts(runs[runs.length - 1] ?? []),
      providerCalls: round(calls / (reads + 2), 2),
      writeUnits: units.reduce((s, r) => s + (r.writeUnits ?? 0), 0),
      readUnits: units.reduce((s, r) => s + (r.readUnits ?? 0), 0),
      runs,
      times,
    };
  };

  /** `readers` concurrent reads of one just-expired token, `rounds` times. */
  const concurrent = async (target: typeof deployed): Promise<ConcurrentResult> => {
    const holder: number[] = [];
    const waiters: number[] = [];
    const extra: number[] = [];
    const perRound: number[] = [];
    const all: DynamoRequest[] = [];
    const invocations0 = invocations;
    for (let round = 0; round < options.rounds; round++) {
      await expire();
      const calls0 = await providerCalls();
      const mark = counter.mark;
      const results = await Promise.all(
        Array.from({ length: options.readers }, (_, k) =>
          counter.run(`r${k}`, async () => {
            const started = performance.now();
            await target.getAccessToken(userId);
            return performance.now() - started;
          }),
        ),
      );
      const sent = counter.since(mark);
      all.push(...sent);
      perRound.push((await providerCalls()) - calls0);
      const saver = sent.find((r) => r.ok && /#accessToken/.test(r.update ?? ''))?.tag;
      const holderIndex = saver ? Number(saver.slice(1)) : -1;
      if (holderIndex < 0) throw new Error('no reader refreshed the token');
      holder.push(results[holderIndex]);
      results.forEach((ms, k) => {
        if (k === holderIndex) return;
        waiters.push(ms);
        extra.push(ms - results[holderIndex]);
      });
    }
    counter.stopTagging();
    return {
      readers: options.readers,
      rounds: options.rounds,
      providerCallsPerRound: perRound,
      holder: latency(holder),
      waiters: latency(waiters),
      waitersExtra: latency(extra),
      requestsPerRound: divide(
        counts(all.filter((r) => r.client === 'reader' || r.client === 'handler')),
        options.rounds,
      ),
      invocationsPerRound: round((invocations - invocations0) / options.rounds, 2),
    };
  };

  progress(`read path: ${options.freshReads} reads of a fresh token...`);
  const fresh = await sequential('fresh', deployed, options.freshReads);

  progress(`read path: ${options.expiredReads} reads of an expired token (real refresh handler, in process)...`);
  const clock = new HttpClock();
  clock.start();
  const logBefore = logs.bytes;
  const providerMs: number[] = [];
  const expiredRun = await sequential(
    'expired',
    deployed,
    options.expiredReads,
    async () => {
      await expire();
      clock.clear();
    },
    () => providerMs.push(clock.take('/token').reduce((sum, v) => sum + v, 0)),
  );
  // Refresh function log lines of one refresh (the last, counted run's share).
  const refreshLogBytes = Math.round((logs.bytes - logBefore) / (options.expiredReads + 3));
  clock.stop();
  // Steps of the expired path, from the requests' own timings (medians over the runs).
  const stepOf = (run: DynamoRequest[], i: number) => run[i]?.ms ?? 0;
  const steps: Record<string, number[]> = {
    'reader: read': [],
    'refresh fn: read': [],
    'refresh fn: take the lease': [],
    'refresh fn: save the tokens': [],
    'reader: re-read': [],
  };
  steps['provider: POST /token'] = providerMs;
  steps['the rest: invoke (JSON both ways), handler and flow code, SDK and fetch work around the wire'] = [];
  expiredRun.runs.forEach((run, k) => {
    const names = Object.keys(steps).slice(0, 5);
    for (let i = 0; i < names.length; i++) steps[names[i]].push(stepOf(run, i));
    const known = run.reduce((sum, r) => sum + r.ms, 0) + (providerMs[k] ?? 0);
    steps['the rest: invoke (JSON both ways), handler and flow code, SDK and fetch work around the wire'].push(
      expiredRun.times[k] - known,
    );
  });
  const stepMedians = Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, round(median(v), 2)]));

  progress(`read path: ${options.rounds} rounds of ${options.readers} concurrent readers of one expired token...`);
  const concurrentDeployed = await concurrent(deployed);

  progress('read path: the same with a refresh function that takes the lease first...');
  const leaseFirstExpired = await sequential('lease first', leaseFirst, options.expiredReads, expire);
  const leaseFirstConcurrent = await concurrent(leaseFirst);
  readerDynamo.destroy();

  const { runs: _fr, times: _ft, ...freshResult } = fresh;
  const { runs: _er, times: _et, ...expiredResult } = expiredRun;
  const { runs: _lr, times: _lt, ...leaseFirstResult } = leaseFirstExpired;
  return {
    fresh: freshResult,
    expired: { ...expiredResult, steps: stepMedians },
    concurrent: concurrentDeployed,
    leaseFirst: { expired: leaseFirstResult, concurrent: leaseFirstConcurrent },
    refreshLogBytes,
  };
}

const fmtCounts = (c: RequestCounts) =>
  Object.entries(c)
    .map(([k, v]) => `${v} × ${k}`)
    .join('<br>');

/** The section as markdown. */
export function readPathMarkdown(result: ReadPathResult): string {
  const ms = (v: number) => `${v.toFixed(2)} ms`;
  const c = result.concurrent;
  const lf = result.leaseFirst;
  return [
    '### Read path: `getAccessToken` in remote mode',
    '',
    'The reader library as another service runs it, against DynamoDB Local and the sandbox; the refresh function is the real ' +
      'handler (`functions/refresh.ts`) invoked in this process through `invokeRefresh`, request and answer passed through JSON ' +
      '(no local Lambda stand-in yet, so no invoke latency is included). Requests are counted by middleware on both DynamoDB clients.',
    '',
    table(
      ['path', 'p50', 'p95', 'runs', 'DynamoDB requests per call', 'provider calls', 'RCU', 'WCU'],
      [
        [
          'fresh token',
          ms(result.fresh.latency.p50),
          ms(result.fresh.latency.p95),
          result.fresh.latency.samples,
          fmtCounts(result.fresh.requests),
          result.fresh.providerCalls,
          result.fresh.readUnits ?? '',
          result.fresh.writeUnits ?? '',
        ],
        [
          'expired token',
          ms(result.expired.latency.p50),
          ms(result.expired.latency.p95),
          result.expired.latency.samples,
          fmtCounts(result.expired.requests),
          result.expired.providerCalls,
          result.expired.readUnits ?? '',
          result.expired.writeUnits ?? '',
        ],
        [
          'expired, refresh fn taking the lease first (what-if)',
          ms(lf.expired.latency.p50),
          ms(lf.expired.latency.p95),
          lf.expired.latency.samples,
          fmtCounts(lf.expired.requests),
          lf.expired.providerCalls,
          lf.expired.readUnits ?? '',
          lf.expired.writeUnits ?? '',
        ],
      ],
    ),
    '',
    `Steps of the expired path (medians): ${Object.entries(result.expired.steps)
      .map(([k, v]) => `${k} ${ms(v)}`)
      .join(', ')}. ` +
      `The refresh function's first read returns the item the reader has just read, and the lease update returns it again: ` +
      `taking the lease first saves one strongly consistent read per refresh.`,
    '',
    `**${c.readers} concurrent readers of one expired token**, ${c.rounds} rounds:`,
    '',
    table(
      [
        'refresh function',
        'provider calls per round',
        'holder p50',
        'waiters p50',
        'waiters p95',
        "waiters' extra p50",
        'extra p95',
        'invocations per round',
        'DynamoDB requests per round',
      ],
      [
        [
          'deployed',
          c.providerCallsPerRound.join(', '),
          ms(c.holder.p50),
          ms(c.waiters.p50),
          ms(c.waiters.p95),
          ms(c.waitersExtra.p50),
          ms(c.waitersExtra.p95),
          c.invocationsPerRound,
          fmtCounts(c.requestsPerRound),
        ],
        [
          'lease first (what-if)',
          lf.concurrent.providerCallsPerRound.join(', '),
          ms(lf.concurrent.holder.p50),
          ms(lf.concurrent.waiters.p50),
          ms(lf.concurrent.waiters.p95),
          ms(lf.concurrent.waitersExtra.p50),
          ms(lf.concurrent.waitersExtra.p95),
          lf.concurrent.invocationsPerRound,
          fmtCounts(lf.concurrent.requestsPerRound),
        ],
      ],
    ),
    '',
    `All ${int(c.readers)} readers run in one process here (in AWS each waiter's invocation is its own Lambda, billed while it ` +
      "sleeps between lease attempts); the waiters' extra latency is their back-off (100 ms doubling, ±50% jitter) after the holder saved.",
  ].join('\n');
}
