/**
 * The read path: `getAccessToken` of the reader library in its production mode (what another service
 * in AWS runs), against DynamoDB Local and the sandbox provider, for
 *
 * - a fresh token (one read),
 * - an expired one (reader read -> invoke the refresh function -> take the lease, which returns the
 *   item; provider call; save -> reader re-read),
 * - 100 concurrent readers of one expired token (one provider call; the waiters' extra latency
 *   over the reader whose invocation held the lease).
 *
 * The refresh function is the real handler, invoked through the local stack's stand-in of the Lambda
 * Invoke API with the AWS SDK's Lambda client, as a local service's reader invokes it (SigV4, HTTP,
 * JSON both ways; no Lambda scheduling, cold starts or network hops). For comparison, the same paths
 * through a refresh function that reads the item before taking the lease (the broker before it went
 * straight to the lease), served by a second stand-in the same way. DynamoDB requests are counted by
 * middleware on the reader's client and on the handlers' shared client, provider calls by the
 * sandbox's own counters.
 */
import { randomBytes } from 'node:crypto';
import { UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { readStoreConfig } from '../functions/core/config';
import { createDynamoClient } from '../functions/adapters/dynamo';
import { createLogger } from '../functions/adapters/logger';
import { handleRefreshRequest } from '../functions/flows/refresh-function-flow';
import { createTokenReader, type RefreshInvoker } from '../functions/reader/index';
import { lambdaClientSettings, lambdaInvoker } from '../functions/reader/remote';
import { tokenRefresher } from '../functions/services';
import { startLambdaInvoke } from '../infra/local/lambda-invoke';
import type { LocalStack } from '../infra/local/stack';
import { get, startLogin, storedGrant } from './callback-latency';
import { type DynamoCounter, type DynamoRequest, HttpClock, type LogTap } from './instrument';
import { int, median, progress, quantile, round, table } from './stats';

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
  /** The reader whose invocation refreshed: the first to answer. */
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
   * The same through a refresh function that reads the item before taking the lease, as the broker
   * did before it went straight to the lease: what that change saved, measured.
   */
  readonly readFirst: { readonly expired: ReadPathResult['expired']; readonly concurrent: ConcurrentResult };
  /** Log bytes the refresh function writes per refresh at INFO. */
  readonly refreshLogBytes: number;
}

const latency = (values: number[]): Latency => ({
  p50: round(median(values), 2),
  p95: round(quantile(values, 0.95), 2),
  samples: values.length,
});

/** What a DynamoDB request did: the command, and for an UpdateItem which of the refresher's writes. */
function kindOf(r: DynamoRequest): string {
  if (r.command !== 'UpdateItemCommand') return r.command.replace(/Command$/, '');
  if (/#leaseOwner = :leaseOwner/.test(r.update ?? '')) return 'UpdateItem (take the lease)';
  if (/^REMOVE #leaseOwner, #leaseUntil$/.test(r.update ?? '')) return 'UpdateItem (release the lease)';
  if (/#accessToken/.test(r.update ?? '')) return 'UpdateItem (save the tokens)';
  return 'UpdateItem';
}

function counts(requests: readonly DynamoRequest[]): RequestCounts {
  const out: RequestCounts = {};
  for (const r of requests) {
    const key = `${r.client === 'reader' ? 'reader' : 'refresh fn'}: ${kindOf(r)}${r.ok ? '' : ', refused'}`;
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

  const readerDynamo = createDynamoClient(readStoreConfig(env));
  counter.attach(readerDynamo, 'reader');
  const quiet = createLogger({ level: 'warn', write: () => undefined });
  let invocations = 0;
  /** A reader as a local service runs it (`tokens env`): its invocations of the refresh function counted. */
  const reader = (readerEnv: Record<string, string>) => {
    const invoke = lambdaInvoker(readerEnv.REFRESH_FUNCTION_NAME, lambdaClientSettings(readerEnv));
    const counted: RefreshInvoker = async (request) => {
      invocations++;
      return invoke(request);
    };
    return createTokenReader({ env: readerEnv, dynamo: readerDynamo, invokeRefresh: counted, logger: quiet });
  };
  // The deployed refresh function, behind the stack's own stand-in of the Lambda Invoke API.
  const deployed = reader(stack.readerEnv);
  // The same handler, its refresher reading the item before taking the lease; behind a stand-in of
  // its own, so both go through the same transport.
  const refresher = tokenRefresher(stack.services);
  const readFirstHandler = (event: unknown) =>
    handleRefreshRequest(event, {
      refresher: { refreshForReader: (id, options) => refresher.getAccessToken(id, options) },
      logger: stack.services.logger,
    });
  const credentials = { accessKeyId: `BENCH${randomBytes(6).toString('hex').toUpperCase()}`, secret: randomBytes(18) };
  const readFirstLambda = await startLambdaInvoke({
    accessKeyId: credentials.accessKeyId,
    region: stack.readerEnv.AWS_REGION,
    functions: { 'read-first': readFirstHandler },
  });
  const readFirst = reader({
    ...stack.readerEnv,
    REFRESH_FUNCTION_NAME: 'read-first',
    AWS_ENDPOINT_URL_LAMBDA: readFirstLambda.endpoint,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secret.toString('base64url'),
  });

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

  /**
   * Runs `reads` sequential reads through each of `targets`, interleaved (the order alternates, so a
   * busy moment of the machine hits all alike), `before` each (untimed); returns, per target, the
   * latencies and what each read sent.
   */
  const sequential = async (
    name: string,
    targets: Array<ReturnType<typeof reader>>,
    reads: number,
    before?: () => Promise<void>,
    after?: (target: number) => void,
  ): Promise<Array<PathResult & { runs: DynamoRequest[][]; times: number[] }>> => {
    const state = targets.map(() => ({ times: [] as number[], runs: [] as DynamoRequest[][], calls: 0 }));
    for (let i = 0; i < reads + 2; i++) {
      const order = targets.map((_, k) => k);
      if (i % 2 === 1) order.reverse();
      for (const k of order) {
        await before?.();
        const calls0 = await providerCalls();
        const mark = counter.mark;
        const started = performance.now();
        const token = await targets[k].getAccessToken(userId);
        const ms = performance.now() - started;
        if (token.expiresAt <= Date.now() / 1000) throw new Error(`${name}: got an expired token`);
        state[k].calls += (await providerCalls()) - calls0;
        if (i < 2) {
          after?.(-1); // warm-up: drop what the clock saw
          continue;
        }
        state[k].times.push(ms);
        state[k].runs.push(counter.since(mark).filter((r) => r.client === 'reader' || r.client === 'handler'));
        after?.(k);
      }
    }
    const results = [];
    for (const [k, target] of targets.entries()) {
      // Units in a separate, counted run (asking for ConsumedCapacity changes the requests a little).
      counter.askCapacity = true;
      await before?.();
      const mark = counter.mark;
      await target.getAccessToken(userId);
      counter.askCapacity = false;
      const units = counter.since(mark);
      after?.(-1);
      results.push({
        latency: latency(state[k].times),
        requests: counts(state[k].runs[state[k].runs.length - 1] ?? []),
        providerCalls: round(state[k].calls / (reads + 2), 2),
        writeUnits: units.reduce((sum, r) => sum + (r.writeUnits ?? 0), 0),
        readUnits: units.reduce((sum, r) => sum + (r.readUnits ?? 0), 0),
        runs: state[k].runs,
        times: state[k].times,
      });
    }
    return results;
  };

  /** `readers` concurrent reads of one just-expired token, `rounds` times. */
  const concurrent = async (targets: Array<ReturnType<typeof reader>>): Promise<ConcurrentResult[]> => {
    const state = targets.map(() => ({
      holder: [] as number[],
      waiters: [] as number[],
      extra: [] as number[],
      perRound: [] as number[],
      all: [] as DynamoRequest[],
      invocations: 0,
    }));
    for (let round = 0; round < options.rounds; round++) {
      // Each refresh function in turn, the order alternating by round.
      const order = targets.map((_, k) => k);
      if (round % 2 === 1) order.reverse();
      for (const t of order) {
        const s = state[t];
        await expire();
        const calls0 = await providerCalls();
        const invocations0 = invocations;
        const mark = counter.mark;
        const results = await Promise.all(
          Array.from({ length: options.readers }, async () => {
            const started = performance.now();
            await targets[t].getAccessToken(userId);
            return performance.now() - started;
          }),
        );
        const sent = counter.since(mark);
        s.all.push(...sent);
        s.perRound.push((await providerCalls()) - calls0);
        s.invocations += invocations - invocations0;
        if (!sent.some((r) => r.ok && kindOf(r) === 'UpdateItem (save the tokens)')) {
          throw new Error('no reader refreshed the token');
        }
        // The holder: the reader whose invocation refreshed answers first (the others wait for its
        // write, then back off before reading it). An invocation's requests cannot be told apart by
        // reader once they have crossed the stand-in's HTTP.
        const holderIndex = results.indexOf(Math.min(...results));
        s.holder.push(results[holderIndex]);
        results.forEach((ms, k) => {
          if (k === holderIndex) return;
          s.waiters.push(ms);
          s.extra.push(ms - results[holderIndex]);
        });
      }
    }
    return state.map((s) => ({
      readers: options.readers,
      rounds: options.rounds,
      providerCallsPerRound: s.perRound,
      holder: latency(s.holder),
      waiters: latency(s.waiters),
      waitersExtra: latency(s.extra),
      requestsPerRound: divide(
        counts(s.all.filter((r) => r.client === 'reader' || r.client === 'handler')),
        options.rounds,
      ),
      invocationsPerRound: round(s.invocations / options.rounds, 2),
    }));
  };

  /**
   * `reads` sequential reads of a just-expired token through each of `targets`, interleaved, with
   * the time of each step from the requests' own timings: medians over the runs.
   */
  const expiredPaths = async (targets: Array<ReturnType<typeof reader>>) => {
    const clock = new HttpClock();
    clock.start();
    const providerMs = targets.map(() => [] as number[]);
    const serverMs = targets.map(() => [] as number[]);
    try {
      const results = await sequential(
        'expired',
        targets,
        options.expiredReads,
        async () => {
          await expire();
          clock.clear();
        },
        (k) => {
          const token = clock.take('/token').reduce((sum, v) => sum + v, 0);
          const server = clock.take('/invocations').reduce((sum, v) => sum + v, 0);
          if (k < 0) return;
          providerMs[k].push(token);
          serverMs[k].push(server);
        },
      );
      return results.map((run, t) => {
        const steps: Record<string, number[]> = {};
        const add = (step: string, ms: number) => (steps[step] ??= []).push(ms);
        run.runs.forEach((requests, k) => {
          const by = (kind: string) => requests.filter((r) => kindOf(r) === kind).reduce((sum, r) => sum + r.ms, 0);
          const readerRequests = requests.filter((r) => r.client === 'reader');
          const handler = requests.filter((r) => r.client !== 'reader');
          add('reader: read', readerRequests[0]?.ms ?? 0);
          if (handler.some((r) => kindOf(r) === 'GetItem')) add('refresh fn: read', by('GetItem'));
          add('refresh fn: take the lease', by('UpdateItem (take the lease)'));
          add('provider: POST /token', providerMs[t][k] ?? 0);
          add('refresh fn: save the tokens', by('UpdateItem (save the tokens)'));
          add('reader: re-read', readerRequests[1]?.ms ?? 0);
          const handlerIo = handler.reduce((sum, r) => sum + r.ms, 0) + (providerMs[t][k] ?? 0);
          add('refresh fn: handler and flow code around its I/O', (serverMs[t][k] ?? 0) - handlerIo);
          add(
            'invoke: the SDK Lambda client, HTTP and JSON both ways',
            run.times[k] - (serverMs[t][k] ?? 0) - readerRequests.reduce((sum, r) => sum + r.ms, 0),
          );
        });
        const { runs: _runs, times: _times, ...result } = run;
        return {
          ...result,
          steps: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, round(median(v), 2)])),
        };
      });
    } finally {
      clock.stop();
    }
  };

  try {
    progress(`read path: ${options.freshReads} reads of a fresh token...`);
    const [{ runs: _fr, times: _ft, ...fresh }] = await sequential('fresh', [deployed], options.freshReads);

    progress(
      `read path: ${options.expiredReads} reads of an expired token through the local Lambda stand-in, ` +
        'each refresh function in turn...',
    );
    const logBefore = logs.bytes;
    const [expired, readFirstExpired] = await expiredPaths([deployed, readFirst]);
    // Refresh function log lines of one refresh (both functions log alike; the counted runs' share too).
    const refreshLogBytes = Math.round((logs.bytes - logBefore) / (2 * (options.expiredReads + 3)));

    progress(
      `read path: ${options.rounds} rounds of ${options.readers} concurrent readers of one expired token, ` +
        'each refresh function in turn...',
    );
    const [concurrentDeployed, readFirstConcurrent] = await concurrent([deployed, readFirst]);
    return {
      fresh,
      expired,
      concurrent: concurrentDeployed,
      readFirst: { expired: readFirstExpired, concurrent: readFirstConcurrent },
      refreshLogBytes,
    };
  } finally {
    readerDynamo.destroy();
    await readFirstLambda.stop();
  }
}

const fmtCounts = (c: RequestCounts) =>
  Object.entries(c)
    .map(([k, v]) => `${v} × ${k}`)
    .join('<br>');

/** The section as markdown. */
export function readPathMarkdown(result: ReadPathResult): string {
  const ms = (v: number) => `${v.toFixed(2)} ms`;
  const c = result.concurrent;
  const rf = result.readFirst;
  const row = (name: string, p: PathResult) => [
    name,
    ms(p.latency.p50),
    ms(p.latency.p95),
    p.latency.samples,
    fmtCounts(p.requests),
    p.providerCalls,
    p.readUnits ?? '',
    p.writeUnits ?? '',
  ];
  const concurrentRow = (name: string, x: ConcurrentResult) => [
    name,
    x.providerCallsPerRound.join(', '),
    ms(x.holder.p50),
    ms(x.waiters.p50),
    ms(x.waiters.p95),
    ms(x.waitersExtra.p50),
    ms(x.waitersExtra.p95),
    x.invocationsPerRound,
    fmtCounts(x.requestsPerRound),
  ];
  const steps = (p: ReadPathResult['expired']) =>
    Object.entries(p.steps)
      .map(([k, v]) => `${k} ${ms(v)}`)
      .join(', ');
  return [
    '### Read path: `getAccessToken` in production mode',
    '',
    'The reader library as another service runs it (`tokens env`), against DynamoDB Local and the sandbox; the refresh function is ' +
      "the real handler, invoked with the AWS SDK's Lambda client through the local stack's stand-in of the Lambda Invoke API " +
      '(SigV4, HTTP and JSON both ways; no Lambda scheduling, cold start or network hop). Requests are counted by middleware on ' +
      "both DynamoDB clients; RCU and WCU are DynamoDB Local's ConsumedCapacity of one more, counted call.",
    '',
    table(
      ['path', 'p50', 'p95', 'runs', 'DynamoDB requests per call', 'provider calls', 'RCU', 'WCU'],
      [
        row('fresh token', result.fresh),
        row('expired token', result.expired),
        row('expired, refresh fn reading before the lease (before)', rf.expired),
      ],
    ),
    '',
    `Steps of the expired path (medians): ${steps(result.expired)}. Before, reading first: ${steps(rf.expired)}. ` +
      "The reader invokes the refresh function only after reading the item itself, and the lease update returns the item: the refresh function's " +
      'own first read was redundant, and it now goes straight to the lease (a forced refresh still reads first).',
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
      [concurrentRow('deployed (lease first)', c), concurrentRow('reading first (before)', rf.concurrent)],
    ),
    '',
    `All ${int(c.readers)} readers run in one process here (in AWS each waiter's invocation is its own Lambda, billed while it ` +
      "sleeps between lease attempts); the waiters' extra latency is their back-off (100 ms doubling, ±50% jitter) after the holder saved.",
  ].join('\n');
}
