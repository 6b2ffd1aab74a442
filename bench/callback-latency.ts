/**
 * Section 2, callback latency: full logins against DynamoDB Local and the sandbox provider (login
 * flow -> sign-in and consent -> callback flow), with every I/O call of `handleCallback` timed. The
 * server-side time is the whole `handleCallback`; what it must wait for is the sum of its I/O calls
 * (consume the login attempt, exchange the code, fetch the profile, save the tokens, publish the
 * event). Their ratio is what the callback adds on top of its I/O.
 */
import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { readProviderConfig, readStoreConfig } from '../functions/core/config';
import { createDynamoClient } from '../functions/adapters/dynamo';
import { logEventPublisher } from '../functions/adapters/events';
import { createLogger } from '../functions/adapters/logger';
import { createProviderClient } from '../functions/adapters/provider';
import { DynamoSessionStore } from '../functions/adapters/session-store';
import { ensureTables } from '../functions/adapters/tables';
import { DynamoTokenStore } from '../functions/adapters/token-store';
import { type CallbackDeps, handleCallback } from '../functions/flows/callback-flow';
import { handleLogin, type LoginDeps } from '../functions/flows/login-flow';
import { completeAuthorization } from '../infra/local/sandbox/headless';
import { startSandbox } from '../infra/local/sandbox/launch';
import { cookiePair, getEvent } from '../test/support/events';
import { median, progress, quantile, ratio, round, table } from './stats';

/** Goal of the issue: the callback takes at most 1.10x the I/O it waits for. */
export const CALLBACK_GOAL = 1.1;

/** The adapter calls that are timed as I/O, in the order the callback makes them. */
const IO_CALLS = ['consumeAttempt', 'exchangeCode', 'fetchProfileId', 'saveLogin', 'publish'] as const;
type IoCall = (typeof IO_CALLS)[number];

/** Median and p90, in milliseconds. */
export interface Spread {
  readonly p50: number;
  readonly p90: number;
}

/** Everything section 2 measured. */
export interface CallbackLatencyResult {
  readonly logins: number;
  readonly warmup: number;
  /** Whole `handleCallback`. */
  readonly totalMs: Spread;
  /** Sum of the timed I/O calls of one callback. */
  readonly ioMs: Spread;
  /** total - I/O: the callback's own work (parsing, validation, logging, the page). */
  readonly ownMs: Spread;
  /** total / I/O per login. */
  readonly ratio: Spread;
  readonly calls: Record<IoCall, Spread>;
  readonly goal: number;
}

/** Per-login I/O time, filled by the timing wrappers. */
interface IoClock {
  byCall: Partial<Record<IoCall, number>>;
}

/**
 * Returns `target` with the named async methods wrapped to add their duration to `clock`. The
 * wrapper inherits from the target, so everything else (fields, other methods) is the target's own.
 */
function timed<T extends object>(target: T, names: ReadonlyArray<IoCall & keyof T>, clock: IoClock): T {
  const wrapper = Object.create(target) as T;
  for (const name of names) {
    const method = target[name] as unknown as (...args: unknown[]) => Promise<unknown>;
    Object.defineProperty(wrapper, name, {
      value: async (...args: unknown[]) => {
        const started = performance.now();
        try {
          return await method.apply(target, args);
        } finally {
          clock.byCall[name] = (clock.byCall[name] ?? 0) + performance.now() - started;
        }
      },
    });
  }
  return wrapper;
}

const spread = (values: number[]): Spread => ({ p50: round(median(values)), p90: round(quantile(values, 0.9)) });

/**
 * Runs the section against the DynamoDB Local at `dynamoEndpoint`; starts (and stops) its own
 * sandbox provider. `warmup` logins run first and are not counted.
 */
export async function measureCallbackLatency(
  dynamoEndpoint: string,
  options: { logins: number; warmup: number },
): Promise<CallbackLatencyResult> {
  const redirectUri = 'http://localhost:3990/callback';
  progress('callback: starting the sandbox provider...');
  const sandbox = await startSandbox({
    clientId: 'bench-client',
    clientSecret: randomBytes(24).toString('base64url'),
    redirectUris: [redirectUri],
  });
  let dynamo: DynamoDBClient | undefined;
  try {
    const suffix = randomBytes(4).toString('hex');
    const storeConfig = readStoreConfig({
      DYNAMODB_ENDPOINT: dynamoEndpoint,
      TOKENS_TABLE: `bench-callback-tokens-${suffix}`,
      SESSIONS_TABLE: `bench-callback-sessions-${suffix}`,
    });
    dynamo = createDynamoClient(storeConfig);
    await ensureTables(dynamo, storeConfig);
    const provider = readProviderConfig({
      CLIENT_ID: sandbox.clientId,
      OAUTH2_BASE_URL: sandbox.oauth2BaseUrl,
      API_BASE_URL: sandbox.apiBaseUrl,
      REDIRECT_URL: redirectUri,
      OAUTH2_ISSUER: sandbox.issuer,
    });
    // Lines are formatted as in production (the cost stays in the measurement) but not written.
    const logger = createLogger({ write: () => undefined });
    const sessions = new DynamoSessionStore(dynamo, storeConfig.sessionsTable);
    const loginDeps: LoginDeps = { provider, flow: { returnToAllowlist: [] }, sessions, logger };
    const clock: IoClock = { byCall: {} };
    const callbackDeps: CallbackDeps = {
      provider,
      client: timed(
        createProviderClient(provider, async () => sandbox.clientSecret),
        ['exchangeCode', 'fetchProfileId'],
        clock,
      ),
      sessions: timed(sessions, ['consumeAttempt'], clock),
      tokens: timed(new DynamoTokenStore(dynamo, storeConfig.tokensTable), ['saveLogin'], clock),
      events: timed(logEventPublisher(logger), ['publish'], clock),
      logger,
    };

    const totals: number[] = [];
    const ios: number[] = [];
    const byCall = Object.fromEntries(IO_CALLS.map((name) => [name, [] as number[]])) as Record<IoCall, number[]>;
    const count = options.warmup + options.logins;
    for (let i = 0; i < count; i++) {
      const started = await handleLogin(getEvent('/login'), loginDeps);
      const back = await completeAuthorization(started.headers.location, { login: `bench-user-${i}` });
      const event = getEvent('/callback', back.search.slice(1), [cookiePair(started.cookies?.[0])]);

      clock.byCall = {};
      const t0 = performance.now();
      const result = await handleCallback(event, callbackDeps);
      const total = performance.now() - t0;
      // A stored grant ends in a 303 to the callback's clean result page (rendered by a second
      // request, not timed here: it does no I/O), with the binding cookie expired.
      if (result.statusCode !== 303 || result.headers.location !== redirectUri)
        throw new Error(`callback answered ${result.statusCode} to ${result.headers.location ?? '(no location)'}`);
      if (i < options.warmup) continue;

      totals.push(total);
      ios.push(Object.values(clock.byCall).reduce((sum, ms) => sum + ms, 0));
      for (const name of IO_CALLS) byCall[name].push(clock.byCall[name] ?? 0);
      if ((i + 1 - options.warmup) % 10 === 0) progress(`callback: ${i + 1 - options.warmup}/${options.logins} logins`);
    }

    return {
      logins: options.logins,
      warmup: options.warmup,
      totalMs: spread(totals),
      ioMs: spread(ios),
      ownMs: spread(totals.map((total, i) => total - ios[i])),
      ratio: {
        p50: round(median(totals.map((total, i) => total / ios[i])), 3),
        p90: round(
          quantile(
            totals.map((total, i) => total / ios[i]),
            0.9,
          ),
          3,
        ),
      },
      calls: Object.fromEntries(IO_CALLS.map((name) => [name, spread(byCall[name])])) as Record<IoCall, Spread>,
      goal: CALLBACK_GOAL,
    };
  } finally {
    dynamo?.destroy();
    await sandbox.stop();
  }
}

/** The section as markdown. */
export function callbackMarkdown(result: CallbackLatencyResult): string {
  const ms = (value: number) => `${value.toFixed(2)} ms`;
  const rows: Array<[string, Spread]> = [
    ['**handleCallback (server-side total)**', result.totalMs],
    ['**I/O it waits for (sum)**', result.ioMs],
    ...IO_CALLS.map((name): [string, Spread] => [`  ${name}`, result.calls[name]]),
    ['own work (total - I/O)', result.ownMs],
  ];
  return [
    '### Callback latency on the local stack',
    '',
    `${result.logins} full logins (after ${result.warmup} warm-up) against DynamoDB Local and the sandbox provider; ` +
      `each I/O adapter call of the callback is timed. Goal: total / I/O ≤ ${result.goal.toFixed(2)}x.`,
    '',
    table(
      ['', 'p50', 'p90'],
      rows.map(([name, s]) => [name, ms(s.p50), ms(s.p90)]),
    ),
    '',
    `Ratio total / I/O per login: p50 **${ratio(result.ratio.p50)}**, p90 ${ratio(result.ratio.p90)} ` +
      `(${round(result.ratio.p50, 2) <= result.goal ? 'within' : '**over**'} the goal).`,
  ].join('\n');
}
