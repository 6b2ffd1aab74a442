/**
 * The reader's production mode: read the token item from DynamoDB and, when the token is too close
 * to expiry, ask the broker's refresh function to refresh it, then read again. The service holds no
 * client secret and never talks to the provider. This is the whole reader of the published package
 * (`published.ts`); the in-repository library (`index.ts`) adds the in-process mode beside it.
 *
 * In AWS the Lambda client is the SDK's default (region, endpoint and credentials of the execution
 * environment). Locally (`DYNAMODB_ENDPOINT` set, as `npm run tokens -- env` prints) it is pointed
 * explicitly at the local stack's stand-in of the refresh function (`AWS_ENDPOINT_URL_LAMBDA`) with
 * the local stack's credentials, read from the same environment object as everything else.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type Env, parseUrlSetting, readStoreConfig } from '../core/config';
import {
  ArgumentError,
  type BrokerError,
  ClientCredentialsRejectedError,
  ConfigError,
  FunctionUnavailableError,
  KeyUnavailableError,
  ProviderUnavailableError,
  ReauthRequiredError,
  RefreshFunctionError,
  RefreshInProgressError,
  type RetryAdvice,
  SecretUnavailableError,
  StoreUnavailableError,
  UnknownUserError,
} from '../core/errors';
import { type AwsFault, callAws } from '../adapters/aws-call';
import { MAX_LEASE_WAIT_MS, REFRESH_FUNCTION_TIMEOUT_SECONDS, retryPauseMs } from '../core/budget';
import { capMarginSeconds, type ReceivedRefreshResult, type RefreshRequest } from '../core/refresh-protocol';
import { type AccessToken, DEFAULT_MARGIN_SECONDS, type GetTokenOptions, isFresh } from '../core/tokens';
import type { Logger } from '../adapters/logger';
import { withoutNodeVersionNotice } from '../adapters/sdk-notice';
import type { TokenStore } from '../adapters/token-store';
import { toAccessToken } from '../flows/single-flight-refresh';

/** Invokes the broker's refresh function; injectable for tests. */
export type RefreshInvoker = (request: RefreshRequest) => Promise<ReceivedRefreshResult>;

/** A reader of tokens. */
export interface TokenReader {
  /**
   * A token valid for at least `marginSeconds` (default 300), refreshed first when needed.
   * @throws {UnknownUserError} | {ReauthRequiredError} | {ProviderUnavailableError} | {RefreshInProgressError}
   * | {ClientCredentialsRejectedError} (the broker's client credentials were refused: an operator must act)
   */
  getAccessToken(userId: string, options?: GetTokenOptions): Promise<AccessToken>;
}

/** Options of `createTokenReader`. */
export interface TokenReaderOptions {
  /** @default process.env */
  readonly env?: Env;
  /** @default a client for the configured endpoint and region */
  readonly dynamo?: DynamoDBClient;
  /** @default invokes `REFRESH_FUNCTION_NAME` with the AWS SDK Lambda client */
  readonly invokeRefresh?: RefreshInvoker;
  /** @default a JSON logger at `LOG_LEVEL` (warn) */
  readonly logger?: Logger;
}

/** How the reader reaches the refresh function: the SDK's defaults in AWS, explicit locally. */
export interface LambdaClientSettings {
  readonly region: string;
  /** The local stack's stand-in (`AWS_ENDPOINT_URL_LAMBDA`); unset in AWS. */
  readonly endpoint?: string;
  /** The local stack's credentials; unset in AWS (the execution role's, through the SDK). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

const set = (env: Env, name: string): boolean => Boolean(env[name]?.trim());

/**
 * Checks that `env` has everything the production mode needs, and fails once, naming every missing
 * variable and where to get it (the construct's grant in AWS, `tokens env` locally).
 * @param invokeRefresh true when a refresh invoker is injected (no function to reach)
 * @throws {ConfigError} a variable is missing
 */
export function requireReaderEnvironment(env: Env, invokeRefresh = false): void {
  const local = set(env, 'DYNAMODB_ENDPOINT');
  const missing = ['TOKENS_TABLE', ...(invokeRefresh ? [] : ['REFRESH_FUNCTION_NAME'])];
  // Without it the SDK would fall back to a profile's region, and DynamoDB to us-east-1.
  if (!set(env, 'AWS_DEFAULT_REGION')) missing.push('AWS_REGION');
  if (local && !invokeRefresh) missing.push('AWS_ENDPOINT_URL_LAMBDA', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY');
  const absent = missing.filter((name) => !set(env, name));
  if (absent.length === 0) return;
  const howInAws =
    "in AWS, give the service the broker's reader grant and environment: broker.addTokenReader(fn) for a Lambda " +
    'function, or broker.grantReadTokens(role) plus broker.readerEnvironment';
  const howLocally =
    'locally, with the broker running (npm start in its repository), load its settings: ' +
    'eval "$(npm run --silent tokens -- env)"';
  // Inside Lambda the local advice is noise; outside it (or with a local endpoint) it is the likely fix.
  const how = local ? howLocally : set(env, 'AWS_LAMBDA_FUNCTION_NAME') ? howInAws : `${howInAws}; ${howLocally}`;
  throw new ConfigError(
    `the token reader's environment is incomplete: ${absent.join(', ')} ${absent.length === 1 ? 'is' : 'are'} not set; ${how}`,
  );
}

/**
 * The Lambda client settings for `env`. Locally the endpoint must be a loopback URL: the stand-in
 * only listens there, and a token request must never leave the machine over plain http.
 * @throws {ConfigError} a malformed `AWS_ENDPOINT_URL_LAMBDA`
 */
export function lambdaClientSettings(env: Env): LambdaClientSettings {
  const { region, endpoint: dynamoEndpoint } = readStoreConfig(env);
  if (!dynamoEndpoint) return { region };
  const endpoint = env.AWS_ENDPOINT_URL_LAMBDA?.trim();
  const accessKeyId = env.AWS_ACCESS_KEY_ID?.trim();
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY?.trim();
  return {
    region,
    endpoint: endpoint ? parseUrlSetting('AWS_ENDPOINT_URL_LAMBDA', endpoint).href : undefined,
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
  };
}

/**
 * Maps a refresh function failure back to the typed error; a code this reader has no class for (a
 * newer broker's, or `INTERNAL`) becomes a {@link RefreshFunctionError} that keeps code and message.
 */
export function errorFromCode(
  userId: string,
  result: { code: string; message: string } & Partial<RetryAdvice>,
): BrokerError {
  const retry = { retryable: result.retryable === true, retryAfterSeconds: result.retryAfterSeconds };
  switch (result.code) {
    case 'UNKNOWN_USER':
      return new UnknownUserError(userId);
    case 'REAUTH_REQUIRED':
      return new ReauthRequiredError(userId);
    case 'REFRESH_IN_PROGRESS':
      return new RefreshInProgressError(userId);
    case 'PROVIDER_UNAVAILABLE':
      return new ProviderUnavailableError(result.message, { retryAfterSeconds: result.retryAfterSeconds });
    case 'STORE_UNAVAILABLE':
      return new StoreUnavailableError(result.message, { retryAfterSeconds: result.retryAfterSeconds });
    case 'KEY_UNAVAILABLE':
      return new KeyUnavailableError(result.message, retry);
    case 'SECRET_UNAVAILABLE':
      return new SecretUnavailableError(result.message, retry);
    case 'PROVIDER_CLIENT_REJECTED':
      return new ClientCredentialsRejectedError(result.message);
    case 'BAD_REQUEST':
      return new ArgumentError(result.message);
    default:
      return new RefreshFunctionError(result.code, result.message, retry);
  }
}

/**
 * How long a reader waits for the refresh function: the function's own timeout (one whole refresh,
 * `core/budget.ts`) and a little for the invoke itself. Beyond it the refresh has failed anyway.
 */
export const REFRESH_INVOKE_BUDGET_MS = REFRESH_FUNCTION_TIMEOUT_SECONDS * 1000 + 5000;

/**
 * Sends `payload` to `functionName` with the AWS SDK Lambda client (loaded and created on first use)
 * and returns the function's answer. Lambda throttling the invoke, a failing or unreachable Lambda,
 * and the function itself crashing or timing out (`FunctionError`) become a retryable
 * {@link FunctionUnavailableError}, or `onFunctionError`'s error for the last.
 */
export function lambdaPayloadInvoker(
  functionName: string,
  settings: LambdaClientSettings,
  budgetMs: number,
  onFunctionError: (functionError: string) => Error = (functionError) =>
    new FunctionUnavailableError(`the function ${functionName} failed (${functionError}); try again`),
  /** The error when the invoke may have run the function (a timeout, a lost answer). @default retryable */
  onUnknownOutcome?: (fault: AwsFault) => Error,
): (payload: string) => Promise<string> {
  let client: Promise<(payload: string) => Promise<string>> | undefined;
  const load = async () => {
    const sdk = await import('@aws-sdk/client-lambda');
    const lambda = withoutNodeVersionNotice(() => new sdk.LambdaClient({ ...settings, maxAttempts: 3 }));
    return async (payload: string) => {
      const out = await callAws(
        budgetMs,
        (options) => lambda.send(new sdk.InvokeCommand({ FunctionName: functionName, Payload: payload }), options),
        (fault, cause) =>
          (fault.outcomeUnknown && onUnknownOutcome?.(fault)) ||
          new FunctionUnavailableError(
            `could not invoke ${functionName}: Lambda is ${fault.throttled ? 'throttling' : 'unavailable'} (${fault.name}); try again`,
            { cause, retryAfterSeconds: fault.retryAfterSeconds },
          ),
      );
      if (out.FunctionError) throw onFunctionError(out.FunctionError);
      return new TextDecoder().decode(out.Payload);
    };
  };
  return async (payload) => {
    client ??= load();
    return (await client)(payload);
  };
}

/** Invokes the refresh function `functionName` (see {@link lambdaPayloadInvoker}). */
export function lambdaInvoker(functionName: string, settings: LambdaClientSettings): RefreshInvoker {
  const send = lambdaPayloadInvoker(functionName, settings, REFRESH_INVOKE_BUDGET_MS);
  return async (request) => JSON.parse(await send(JSON.stringify(request))) as ReceivedRefreshResult;
}

/**
 * Reads the item for `userId`, again (with a short growing pause) while the store is throttled or
 * unavailable, for up to {@link MAX_LEASE_WAIT_MS}: the reader's own wait. A read changes nothing,
 * so trying again is always safe; after the wait the retryable {@link StoreUnavailableError} says
 * "nothing lost, try again" to the caller.
 */
async function readWithin(
  tokens: TokenStore,
  userId: string,
): Promise<Awaited<ReturnType<TokenStore['getForReader']>>> {
  const giveUpAt = Date.now() + MAX_LEASE_WAIT_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      return await tokens.getForReader(userId);
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || Date.now() >= giveUpAt) throw error;
      await new Promise((resolve) => setTimeout(resolve, retryPauseMs(attempt)));
    }
  }
}

/** A reader over the tokens table that refreshes through `invoke`. */
export function createRemoteReader(tokens: TokenStore, invoke: RefreshInvoker): TokenReader {
  return {
    async getAccessToken(userId, opts = {}) {
      const margin = opts.marginSeconds ?? DEFAULT_MARGIN_SECONDS;
      const record = await readWithin(tokens, userId);
      if (!record) throw new UnknownUserError(userId);
      if (record.status === 'reauth_required') throw new ReauthRequiredError(userId, record.statusReason);
      // The refresh function holds the margin to the same cap; a reader does not see when the token
      // was issued, so it assumes Kroger's lifetime.
      const fresh = isFresh(record, Math.floor(Date.now() / 1000), capMarginSeconds(margin));
      if (!opts.forceRefresh && fresh) return toAccessToken(record);
      const result = await invoke({ userId, forceRefresh: opts.forceRefresh, marginSeconds: margin });
      if (!result.ok) throw errorFromCode(userId, result);
      const stored = await readWithin(tokens, userId);
      if (!stored) throw new UnknownUserError(userId);
      return toAccessToken(stored);
    },
  };
}
