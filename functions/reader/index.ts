/**
 * The reader library other services import: a valid Kroger access token for a user, refreshed
 * first when needed, without the service ever holding the client secret.
 *
 * Two modes, chosen from the environment:
 * - remote (`REFRESH_FUNCTION_NAME` set; a service in AWS): reads the token item from DynamoDB and,
 *   when it is too close to expiry, invokes the broker's refresh function, then re-reads. Needs
 *   `dynamodb:GetItem` on the tokens table, `kms:Decrypt` on its key and `lambda:InvokeFunction` on
 *   the refresh function, which the construct's `grantReadTokens()` grants.
 * - in-process (`CLIENT_SECRET` or `CLIENT_SECRET_ARN` and the provider settings; the broker itself,
 *   local runs, the CLI): refreshes directly, single-flight through the same DynamoDB lease.
 *
 * @example
 * import { getAccessToken, ReauthRequiredError } from 'kroger-token-broker';
 * const { accessToken } = await getAccessToken('user-123');
 * await fetch('https://api.kroger.com/v1/cart/add', { headers: { authorization: `Bearer ${accessToken}` } });
 */
import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  type Env,
  isAllowedTarget,
  loginUrlFromRedirect,
  readFlowConfig,
  readProviderConfig,
  readSecretConfig,
  readStoreConfig,
} from '../core/config';
import {
  BrokerError,
  ConfigError,
  ProviderUnavailableError,
  ReauthRequiredError,
  RefreshInProgressError,
  UnknownUserError,
} from '../core/errors';
import { DEFAULT_MARGIN_SECONDS, isFresh } from '../core/tokens';
import { createDynamoClient } from '../adapters/dynamo';
import { createEventPublisher } from '../adapters/event-bus';
import { createLogger, type Logger } from '../adapters/logger';
import { createProviderClient } from '../adapters/provider';
import { createSecretSource } from '../adapters/secret';
import { DynamoSessionStore } from '../adapters/session-store';
import { DynamoTokenStore, type TokenStore } from '../adapters/token-store';
import {
  type AccessToken,
  createTokenRefresher,
  toAccessToken,
  type GetTokenOptions,
  type TokenRefresher,
} from '../flows/refresh-flow';

export { ProviderUnavailableError, ReauthRequiredError, RefreshInProgressError, UnknownUserError, BrokerError };
export type { AccessToken, GetTokenOptions };

/** What the refresh function answers (never a token: the reader re-reads the table). */
export type RefreshFunctionResult =
  | { readonly ok: true; readonly expiresAt: number }
  | { readonly ok: false; readonly code: string; readonly message: string };

/** Invokes the broker's refresh function; injectable for tests. */
export type RefreshInvoker = (request: {
  userId: string;
  forceRefresh?: boolean;
  marginSeconds?: number;
}) => Promise<RefreshFunctionResult>;

/** A reader of tokens. */
export interface TokenReader {
  /**
   * A token valid for at least `marginSeconds` (default 300), refreshed first when needed.
   * @throws {UnknownUserError} | {ReauthRequiredError} | {ProviderUnavailableError} | {RefreshInProgressError}
   */
  getAccessToken(userId: string, options?: GetTokenOptions): Promise<AccessToken>;
}

/** Options of {@link createTokenReader}. */
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

/** Maps a refresh function error code back to the typed error. */
function errorFromCode(userId: string, result: { code: string; message: string }): Error {
  switch (result.code) {
    case 'UNKNOWN_USER':
      return new UnknownUserError(userId);
    case 'REAUTH_REQUIRED':
      return new ReauthRequiredError(userId);
    case 'REFRESH_IN_PROGRESS':
      return new RefreshInProgressError(userId);
    default:
      return new ProviderUnavailableError(result.message);
  }
}

function lambdaInvoker(functionName: string): RefreshInvoker {
  let client: Promise<(payload: string) => Promise<string>> | undefined;
  const load = async () => {
    const sdk = await import('@aws-sdk/client-lambda');
    const lambda = new sdk.LambdaClient({});
    return async (payload: string) => {
      const out = await lambda.send(new sdk.InvokeCommand({ FunctionName: functionName, Payload: payload }));
      if (out.FunctionError) throw new ProviderUnavailableError(`the refresh function failed (${out.FunctionError})`);
      return new TextDecoder().decode(out.Payload);
    };
  };
  return async (request) => {
    client ??= load();
    return JSON.parse(await (await client)(JSON.stringify(request))) as RefreshFunctionResult;
  };
}

/** Creates a reader from the environment; see the module documentation for the two modes. */
export function createTokenReader(options: TokenReaderOptions = {}): TokenReader {
  const env = options.env ?? process.env;
  const logger =
    options.logger ?? createLogger({ level: env.LOG_LEVEL ?? 'warn', base: { service: 'kroger-token-reader' } });
  const storeConfig = readStoreConfig(env);
  const dynamo = options.dynamo ?? createDynamoClient(storeConfig);
  const tokens = new DynamoTokenStore(dynamo, storeConfig.tokensTable);
  const functionName = env.REFRESH_FUNCTION_NAME?.trim();

  if (functionName || options.invokeRefresh) {
    const invoke = options.invokeRefresh ?? lambdaInvoker(functionName!);
    return {
      async getAccessToken(userId, opts = {}) {
        const margin = opts.marginSeconds ?? DEFAULT_MARGIN_SECONDS;
        const record = await tokens.getForReader(userId);
        if (!record) throw new UnknownUserError(userId);
        if (record.status === 'reauth_required') throw new ReauthRequiredError(userId, record.statusReason);
        if (!opts.forceRefresh && isFresh(record, Math.floor(Date.now() / 1000), margin)) return toAccessToken(record);
        const result = await invoke({ userId, forceRefresh: opts.forceRefresh, marginSeconds: margin });
        if (!result.ok) throw errorFromCode(userId, result);
        const fresh = await tokens.getForReader(userId);
        if (!fresh) throw new UnknownUserError(userId);
        return toAccessToken(fresh);
      },
    };
  }
  return createLocalRefresher(env, tokens, logger);
}

/** The in-process refresher, wired from the environment (needs the provider settings and secret). */
function createLocalRefresher(env: Env, tokens: TokenStore, logger: Logger): TokenRefresher {
  let provider;
  try {
    provider = readProviderConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new ConfigError(
        `${error.message} (a reader needs REFRESH_FUNCTION_NAME, or the provider settings and the client secret)`,
      );
    }
    throw error;
  }
  // The secret is looked up only when a refresh is needed: reading a fresh token needs no secret.
  let secret: ReturnType<typeof createSecretSource> | undefined;
  const getSecret = () => {
    secret ??= createSecretSource(readSecretConfig(env));
    return secret();
  };
  return createTokenRefresher({
    tokens,
    client: createProviderClient(provider, getSecret),
    events: createEventPublisher(env, logger),
    logger,
  });
}

let defaultReader: TokenReader | undefined;

/**
 * A valid access token for `userId`, using a reader created once from `process.env`.
 * @see createTokenReader
 */
export function getAccessToken(userId: string, options?: GetTokenOptions): Promise<AccessToken> {
  defaultReader ??= createTokenReader();
  return defaultReader.getAccessToken(userId, options);
}

/** Default lifetime of a connect link. */
export const LINK_TTL_SECONDS = 900;

/**
 * Creates a one-time connect link: a login started from it stores the tokens under `appUserId`.
 * Needs write access to the sessions table, so it belongs to the app's backend, not to readers.
 * @param options.loginUrl the broker's `/login` URL @default `LOGIN_URL`, else derived from `REDIRECT_URL`
 * @param options.returnTo where to send the browser after success; must be on `RETURN_TO_ALLOWLIST`
 */
export async function createLoginLink(
  appUserId: string,
  options: { env?: Env; dynamo?: DynamoDBClient; ttlSeconds?: number; returnTo?: string; loginUrl?: string } = {},
): Promise<{ loginUrl: string; expiresAt: number }> {
  const env = options.env ?? process.env;
  if (!appUserId || appUserId.length > 256) {
    throw new ConfigError('appUserId must be 1 to 256 characters');
  }
  const ttl = options.ttlSeconds ?? LINK_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl <= 0 || ttl > 7 * 86_400) throw new ConfigError('ttlSeconds must be 1 to 604800');
  if (options.returnTo && !isAllowedTarget(options.returnTo, readFlowConfig(env).returnToAllowlist)) {
    throw new ConfigError('returnTo is not on RETURN_TO_ALLOWLIST');
  }
  const redirect = env.REDIRECT_URL;
  if (!options.loginUrl && !env.LOGIN_URL && !redirect) {
    throw new ConfigError('LOGIN_URL environment variable is not set (nor REDIRECT_URL to derive it from)');
  }
  const base = options.loginUrl ?? env.LOGIN_URL ?? loginUrlFromRedirect(redirect!);
  const storeConfig = readStoreConfig(env);
  const sessions = new DynamoSessionStore(options.dynamo ?? createDynamoClient(storeConfig), storeConfig.sessionsTable);
  const id = randomBytes(32).toString('base64url');
  const expiresAt = Math.floor(Date.now() / 1000) + ttl;
  await sessions.putLink({ id, appUserId, returnTo: options.returnTo, expiresAt });
  const url = new URL(base);
  url.searchParams.set('session', id);
  return { loginUrl: url.href, expiresAt };
}
