/**
 * `completeConnection`: what an app backend calls when the browser comes back to its return URL
 * with `?connect_code=...`. The app passes its own signed-in user's id; the broker stores the grant
 * under that user only if the code's connect link was created for that same user. A link forwarded
 * to someone else thus binds nothing: their browser brings the code back to the app under *their*
 * session, the ids differ, and the code is cancelled.
 *
 * Two modes, like the token reader:
 * - remote (`COMPLETE_FUNCTION_NAME` set; an app in AWS): invokes the broker's complete function,
 *   which answers ids only. The app's role needs `lambda:InvokeFunction` on it and nothing on the
 *   tokens table: `grantCreateLoginLinks()` grants exactly that (with the link writes).
 * - in process (the tables reachable directly; local runs, the CLI): the same flow, here.
 *
 * @example
 * import { completeConnection, ConnectionRefusedError } from 'kroger-token-broker';
 * const { userId, profileId } = await completeConnection(req.query.connect_code, session.userId);
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Env } from '../core/config';
import {
  type CompleteRequest,
  type Connection,
  parseAppUserId,
  parseConnectCode,
  type ReceivedCompleteResult,
} from '../core/connect';
import { ArgumentError, type BrokerError, CompleteFunctionError, ConnectionRefusedError } from '../core/errors';
import { createLogger, type Logger } from '../adapters/logger';
import { completeConnection as complete } from '../flows/complete-flow';
import { createServices, eventPublisher, sessionStore, tokenStore } from '../services';

/** Invokes the broker's complete function; injectable for tests. */
export type CompleteInvoker = (request: CompleteRequest) => Promise<ReceivedCompleteResult>;

/** Options of {@link completeConnection}. */
export interface CompleteConnectionOptions {
  /** @default process.env */
  readonly env?: Env;
  /** @default a client for the configured endpoint and region (in-process mode) */
  readonly dynamo?: DynamoDBClient;
  /** @default invokes `COMPLETE_FUNCTION_NAME` with the AWS SDK Lambda client */
  readonly invokeComplete?: CompleteInvoker;
  /** @default a JSON logger at `LOG_LEVEL` (warn) */
  readonly logger?: Logger;
}

const REFUSALS: Readonly<Record<string, ConstructorParameters<typeof ConnectionRefusedError>[0]>> = {
  CONNECT_CODE_UNKNOWN: 'unknown',
  CONNECT_CODE_USED: 'used',
  CONNECT_CODE_EXPIRED: 'expired',
  CONNECT_CODE_FOREIGN: 'foreign',
  CONNECT_CODE_CANCELLED: 'cancelled',
};

/** The typed error for a complete function failure; unknown codes keep code and message. */
function errorFromResult(result: { code: string; message: string }): BrokerError {
  const refusal = REFUSALS[result.code];
  if (refusal) return new ConnectionRefusedError(refusal);
  if (result.code === 'BAD_REQUEST') return new ArgumentError(result.message);
  return new CompleteFunctionError(result.code, result.message);
}

function lambdaInvoker(functionName: string, region: string | undefined): CompleteInvoker {
  let send: Promise<(payload: string) => Promise<string>> | undefined;
  const load = async () => {
    const sdk = await import('@aws-sdk/client-lambda');
    // The region of the environment given (a deployed stack's for `tokens --stack`).
    const lambda = new sdk.LambdaClient(region ? { region } : {});
    return async (payload: string) => {
      const out = await lambda.send(new sdk.InvokeCommand({ FunctionName: functionName, Payload: payload }));
      if (out.FunctionError) throw new CompleteFunctionError(out.FunctionError, 'the complete function failed');
      return new TextDecoder().decode(out.Payload);
    };
  };
  return async (request) => {
    send ??= load();
    return JSON.parse(await (await send)(JSON.stringify(request))) as ReceivedCompleteResult;
  };
}

/**
 * Completes the connection of `connectCode` (from the `connect_code` query parameter of the link's
 * return URL, or pasted by the person) for `appUserId`, the app's own signed-in user: stores the
 * grant under `appUserId` and returns it with the connected Kroger profile id. Call it only for the
 * user your app has authenticated in this request, never for an id taken from the request itself.
 * @throws {ArgumentError} a malformed or oversized code, or a bad app user id (checked before any I/O)
 * @throws {ConnectionRefusedError} the code is unknown, used, expired, cancelled, or was created for
 * another app user (which cancels it); `error.code` says which, nothing was stored
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.7
 */
export async function completeConnection(
  connectCode: string,
  appUserId: string,
  options: CompleteConnectionOptions = {},
): Promise<Connection> {
  const request = { connectCode: parseConnectCode(connectCode), appUserId: parseAppUserId(appUserId) };
  const env = options.env ?? process.env;
  const functionName = env.COMPLETE_FUNCTION_NAME?.trim();
  if (functionName || options.invokeComplete) {
    const invoke = options.invokeComplete ?? lambdaInvoker(functionName!, env.AWS_REGION?.trim());
    const result = await invoke(request);
    if (!result.ok) throw errorFromResult(result);
    return { userId: result.userId, profileId: result.profileId };
  }
  const logger =
    options.logger ?? createLogger({ level: env.LOG_LEVEL ?? 'warn', base: { service: 'kroger-token-broker' } });
  const services = createServices(env, { logger, dynamo: options.dynamo });
  return complete(
    {
      sessions: sessionStore(services),
      tokens: tokenStore(services),
      events: eventPublisher(services),
      logger,
    },
    request,
  );
}
