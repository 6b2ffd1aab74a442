/**
 * The reader library other services import: a valid Kroger access token for a user, refreshed
 * first when needed, without the service ever holding the client secret.
 *
 * Two modes, chosen from the environment:
 * - remote (`REFRESH_FUNCTION_NAME` set; a service in AWS, or locally against `npm start`'s stand-in
 *   of the refresh function): reads the token item from DynamoDB and, when it is too close to
 *   expiry, invokes the broker's refresh function, then re-reads (`remote.ts`). Needs
 *   `dynamodb:GetItem` on the tokens table, `kms:Decrypt` on its key and `lambda:InvokeFunction` on
 *   the refresh function, which the construct's `grantReadTokens()` grants.
 * - in-process (`CLIENT_SECRET` or `CLIENT_SECRET_ARN` and the provider settings; the broker itself,
 *   local runs, the CLI): refreshes directly, single-flight through the same DynamoDB lease. Not in
 *   the published package (`published.ts`), which is the remote mode only.
 *
 * @example
 * import { getAccessToken, ReauthRequiredError } from 'kroger-token-broker';
 * const { accessToken } = await getAccessToken('user-123');
 * await fetch('https://api.kroger.com/v1/cart/add', { headers: { authorization: `Bearer ${accessToken}` } });
 */
import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type Env, isAllowedTarget, loginUrlFromRedirect, readFlowConfig } from '../core/config';
import { carriesConnectCode } from '../core/connect';
import {
  ArgumentError,
  BrokerError,
  ClientCredentialsRejectedError,
  ConfigError,
  ProviderUnavailableError,
  ReauthRequiredError,
  RefreshFunctionError,
  RefreshInProgressError,
  UnknownUserError,
} from '../core/errors';
import {
  MAX_USER_ID_LENGTH,
  type ReceivedRefreshResult,
  type RefreshFunctionResult,
  type RefreshRequest,
} from '../core/refresh-protocol';
import { createLogger } from '../adapters/logger';
import type { AccessToken, GetTokenOptions } from '../core/tokens';
import { createServices, providerConfig, sessionStore, tokenRefresher, tokenStore } from '../services';
import { kmsKeyProviderOnDemand } from './kms-on-demand';
import {
  createRemoteReader,
  lambdaClientSettings,
  lambdaInvoker,
  type RefreshInvoker,
  type TokenReader,
  type TokenReaderOptions,
} from './remote';

export {
  ArgumentError,
  BrokerError,
  ClientCredentialsRejectedError,
  ConfigError,
  ProviderUnavailableError,
  ReauthRequiredError,
  RefreshFunctionError,
  RefreshInProgressError,
  UnknownUserError,
};
// Temporary unavailability of a dependency: each says `retryable` and, where known, `retryAfterSeconds`.
export {
  DEPENDENCIES,
  type Dependency,
  DependencyUnavailableError,
  FunctionUnavailableError,
  KeyUnavailableError,
  type RetryAdvice,
  SecretUnavailableError,
  StoreUnavailableError,
} from '../core/errors';
export { ERROR_CODES, type ErrorCode } from '../core/errors';
export { CompleteFunctionError, type ConnectRefusal, ConnectionRefusedError } from '../core/errors';
export type { Connection } from '../core/connect';
export { completeConnection, type CompleteConnectionOptions } from './connect';
export type { AccessToken, GetTokenOptions, ReceivedRefreshResult, RefreshFunctionResult, RefreshRequest };
export type { RefreshInvoker, TokenReader, TokenReaderOptions };

/** Creates a reader from the environment; see the module documentation for the two modes. */
export function createTokenReader(options: TokenReaderOptions = {}): TokenReader {
  const env = options.env ?? process.env;
  const logger =
    options.logger ?? createLogger({ level: env.LOG_LEVEL ?? 'warn', base: { service: 'kroger-token-reader' } });
  // KMS is loaded only if an in-process refresh ever decrypts: a remote reader never does.
  const services = createServices(env, { logger, dynamo: options.dynamo, kmsKeyProvider: kmsKeyProviderOnDemand });
  const tokens = tokenStore(services);
  const functionName = env.REFRESH_FUNCTION_NAME?.trim();

  if (functionName || options.invokeRefresh) {
    return createRemoteReader(tokens, options.invokeRefresh ?? lambdaInvoker(functionName!, lambdaClientSettings(env)));
  }
  // In process: the provider settings are checked now; the secret is looked up only when a refresh
  // is needed (reading a fresh token needs no secret).
  try {
    providerConfig(services);
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new ConfigError(
        `${error.message} (a reader needs REFRESH_FUNCTION_NAME, or the provider settings and the client secret)`,
      );
    }
    throw error;
  }
  return tokenRefresher(services);
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
 * Creates a one-time connect link for `appUserId`. A sign-in started from it stores nothing yet: it
 * yields a one-time connect code, sent to `returnTo` as `?connect_code=...` (or shown for the person
 * to paste into the app), which the app completes for its own signed-in user with
 * {@link completeConnection}. Needs write access to the sessions table, so it belongs to the app's
 * backend, not to readers.
 * @param options.loginUrl the broker's `/login` URL @default `LOGIN_URL`, else derived from `REDIRECT_URL`
 * @param options.returnTo where to send the browser with the connect code; must be on `RETURN_TO_ALLOWLIST`
 */
export async function createLoginLink(
  appUserId: string,
  options: { env?: Env; dynamo?: DynamoDBClient; ttlSeconds?: number; returnTo?: string; loginUrl?: string } = {},
): Promise<{ loginUrl: string; expiresAt: number }> {
  const env = options.env ?? process.env;
  if (!appUserId || appUserId.length > MAX_USER_ID_LENGTH) {
    throw new ArgumentError(`appUserId must be 1 to ${MAX_USER_ID_LENGTH} characters`);
  }
  const ttl = options.ttlSeconds ?? LINK_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl <= 0 || ttl > 7 * 86_400) throw new ArgumentError('ttlSeconds must be 1 to 604800');
  if (options.returnTo && !isAllowedTarget(options.returnTo, readFlowConfig(env).returnToAllowlist)) {
    throw new ArgumentError('returnTo is not on RETURN_TO_ALLOWLIST');
  }
  if (options.returnTo && carriesConnectCode(options.returnTo)) {
    throw new ArgumentError('returnTo must not carry a "connect_code" parameter: the broker adds it');
  }
  const redirect = env.REDIRECT_URL;
  if (!options.loginUrl && !env.LOGIN_URL && !redirect) {
    throw new ConfigError('LOGIN_URL environment variable is not set (nor REDIRECT_URL to derive it from)');
  }
  const base = options.loginUrl ?? env.LOGIN_URL ?? loginUrlFromRedirect(redirect!);
  const sessions = sessionStore(createServices(env, { dynamo: options.dynamo }));
  const id = randomBytes(32).toString('base64url');
  const expiresAt = Math.floor(Date.now() / 1000) + ttl;
  await sessions.putLink({ id, appUserId, returnTo: options.returnTo, expiresAt });
  const url = new URL(base);
  url.searchParams.set('session', id);
  return { loginUrl: url.href, expiresAt };
}
