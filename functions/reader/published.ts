/**
 * The root export of the published package (`import ... from 'kroger-token-broker'`): the reader
 * library as other services use it. It is everything `index.ts` exports (the error classes, the
 * types, `createLoginLink`, and whatever is added there later: `export *` passes it on), except that
 * `createTokenReader`, `getAccessToken` and `completeConnection` are the production mode only:
 *
 * - the service never holds the client secret: a refresh goes through the broker's refresh function
 *   (in AWS, or locally through `npm start`'s stand-in of it, reached with `npm run tokens -- env`);
 * - so the in-process mode (which needs the secret and the provider settings) stays in this
 *   repository, for the broker, the CLI and the tests. Leaving it out also keeps oauth4webapi and the
 *   Secrets Manager and EventBridge clients out of every consumer's install: the package depends on
 *   the DynamoDB and Lambda clients only.
 *
 * A missing variable fails at the first call, once, naming every missing one and how to get it.
 *
 * @example
 * import { getAccessToken, ReauthRequiredError } from 'kroger-token-broker';
 * const { accessToken } = await getAccessToken('user-123');
 */
import { type Connection, parseAppUserId, parseConnectCode } from '../core/connect';
import { createLogger } from '../adapters/logger';
import type { AccessToken, GetTokenOptions } from '../core/tokens';
import { createServices, tokenStore } from '../services';
import {
  createRemoteReader,
  lambdaClientSettings,
  lambdaInvoker,
  requireReaderEnvironment,
  type TokenReader,
  type TokenReaderOptions,
} from './remote';
import {
  completeInvoker,
  type CompleteConnectionOptions,
  completeThroughFunction,
  requireCompleteEnvironment,
} from './connect-remote';

// Local declarations take precedence over `export *`: these three replace index.ts's.
export * from './index';

/**
 * Creates a reader from the environment: `TOKENS_TABLE`, `REFRESH_FUNCTION_NAME` and `AWS_REGION`
 * (what `broker.addTokenReader(fn)` sets in AWS), or what `npm run tokens -- env` prints locally
 * (adds `DYNAMODB_ENDPOINT`, `AWS_ENDPOINT_URL_LAMBDA` and the local stack's credentials).
 * @throws {ConfigError} one error naming every missing variable and how to get it
 */
export function createTokenReader(options: TokenReaderOptions = {}): TokenReader {
  const env = options.env ?? process.env;
  requireReaderEnvironment(env, Boolean(options.invokeRefresh));
  const settings = lambdaClientSettings(env);
  const logger =
    options.logger ?? createLogger({ level: env.LOG_LEVEL ?? 'warn', base: { service: 'kroger-token-reader' } });
  const tokens = tokenStore(createServices(env, { logger, dynamo: options.dynamo }));
  return createRemoteReader(
    tokens,
    options.invokeRefresh ?? lambdaInvoker(env.REFRESH_FUNCTION_NAME!.trim(), settings),
  );
}

let defaultReader: TokenReader | undefined;

/**
 * A valid access token for `userId`, using a reader created from `process.env` on the first call
 * (a configuration error rejects that call and is raised again by the next one).
 * @throws {UnknownUserError} | {ReauthRequiredError} | {ProviderUnavailableError} | {RefreshInProgressError} | {ConfigError}
 * @see createTokenReader
 */
export async function getAccessToken(userId: string, options?: GetTokenOptions): Promise<AccessToken> {
  defaultReader ??= createTokenReader();
  return defaultReader.getAccessToken(userId, options);
}

/**
 * Completes the connection of `connectCode` (from the `connect_code` query parameter of the link's
 * return URL) for `appUserId`, your app's own signed-in user, through the broker's complete function
 * (`COMPLETE_FUNCTION_NAME`, which `broker.addLoginLinkCreator(fn)` sets; locally what
 * `npm run tokens -- env` prints): the grant is stored under `appUserId`, and the function answers
 * ids only. Call it only for the user your app authenticated in this request.
 * @throws {ArgumentError} a malformed or oversized code, or a bad app user id (checked before anything is sent)
 * @throws {ConnectionRefusedError} unknown, used, expired, cancelled, or another app user's code (which cancels it)
 * @throws {ConfigError} one error naming every missing variable and how to get it
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.7
 */
export async function completeConnection(
  connectCode: string,
  appUserId: string,
  options: CompleteConnectionOptions = {},
): Promise<Connection> {
  const request = { connectCode: parseConnectCode(connectCode), appUserId: parseAppUserId(appUserId) };
  const env = options.env ?? process.env;
  requireCompleteEnvironment(env, Boolean(options.invokeComplete));
  return completeThroughFunction(
    request,
    options.invokeComplete ?? completeInvoker(env.COMPLETE_FUNCTION_NAME!.trim(), lambdaClientSettings(env)),
  );
}
