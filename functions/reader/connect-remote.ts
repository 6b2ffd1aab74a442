/**
 * Completing a connection through the broker's complete function: what an app backend's
 * `completeConnection` does in AWS (and locally through `npm start`'s stand-in of the function).
 * The backend holds no right that reveals a token: it invokes the function, which answers ids only.
 * This is the whole `completeConnection` of the published package (`published.ts`); the
 * in-repository library (`connect.ts`) adds the in-process mode beside it.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Env } from '../core/config';
import type { CompleteRequest, Connection, ReceivedCompleteResult } from '../core/connect';
import {
  ArgumentError,
  type BrokerError,
  CompleteFunctionError,
  type ConnectRefusal,
  ConfigError,
  ConnectionRefusedError,
  KeyUnavailableError,
  type RetryAdvice,
  StoreUnavailableError,
} from '../core/errors';
import type { Logger } from '../adapters/logger';
import { COMPLETE_FUNCTION_TIMEOUT_SECONDS } from '../core/budget';
import { type LambdaClientSettings, lambdaPayloadInvoker } from './remote';

/** How long an app waits for the complete function: its timeout and a little for the invoke. */
const COMPLETE_INVOKE_BUDGET_MS = COMPLETE_FUNCTION_TIMEOUT_SECONDS * 1000 + 5000;

/** Invokes the broker's complete function; injectable for tests. */
export type CompleteInvoker = (request: CompleteRequest) => Promise<ReceivedCompleteResult>;

/** Options of `completeConnection`. */
export interface CompleteConnectionOptions {
  /** @default process.env */
  readonly env?: Env;
  /** @default a client for the configured endpoint and region (in-process mode, this repository only) */
  readonly dynamo?: DynamoDBClient;
  /** @default invokes `COMPLETE_FUNCTION_NAME` with the AWS SDK Lambda client */
  readonly invokeComplete?: CompleteInvoker;
  /** @default a JSON logger at `LOG_LEVEL` (warn) (in-process mode, this repository only) */
  readonly logger?: Logger;
}

const REFUSALS: Readonly<Record<string, ConnectRefusal>> = {
  CONNECT_CODE_UNKNOWN: 'unknown',
  CONNECT_CODE_USED: 'used',
  CONNECT_CODE_EXPIRED: 'expired',
  CONNECT_CODE_FOREIGN: 'foreign',
  CONNECT_CODE_CANCELLED: 'cancelled',
};

/**
 * The typed error for a complete function failure: a refusal, a dependency that was unavailable
 * (retryable, as the function said), or a code this library does not know (keeps code, message and
 * whether to retry).
 */
export function completeErrorFromResult(result: { code: string; message: string } & Partial<RetryAdvice>): BrokerError {
  const refusal = REFUSALS[result.code];
  if (refusal) return new ConnectionRefusedError(refusal);
  if (result.code === 'BAD_REQUEST') return new ArgumentError(result.message);
  const retry = { retryable: result.retryable === true, retryAfterSeconds: result.retryAfterSeconds };
  switch (result.code) {
    case 'STORE_UNAVAILABLE':
      return new StoreUnavailableError(result.message, { retryAfterSeconds: result.retryAfterSeconds });
    case 'KEY_UNAVAILABLE':
      return new KeyUnavailableError(result.message, retry);
    default:
      return new CompleteFunctionError(result.code, result.message, retry);
  }
}

/**
 * Invokes the complete function `functionName`. A crash or timeout of the function itself stays a
 * {@link CompleteFunctionError}: the completion may have happened, and trying again would only hear
 * "used".
 */
export function completeInvoker(functionName: string, settings: LambdaClientSettings): CompleteInvoker {
  const send = lambdaPayloadInvoker(
    functionName,
    settings,
    COMPLETE_INVOKE_BUDGET_MS,
    (functionError) => new CompleteFunctionError(functionError, 'the complete function failed'),
    (fault) =>
      new CompleteFunctionError(
        fault.name,
        'the answer was lost: the connection may have been completed (completing again answers "used" if it was)',
      ),
  );
  return async (request) => JSON.parse(await send(JSON.stringify(request))) as ReceivedCompleteResult;
}

/** Completes `request` through `invoke`, mapping a refusal back to its typed error. */
export async function completeThroughFunction(request: CompleteRequest, invoke: CompleteInvoker): Promise<Connection> {
  const result = await invoke(request);
  if (!result.ok) throw completeErrorFromResult(result);
  return { userId: result.userId, profileId: result.profileId };
}

const set = (env: Env, name: string): boolean => Boolean(env[name]?.trim());

/**
 * Checks that `env` names the complete function and how to reach it, failing once with every
 * missing variable and where to get it.
 * @param injected true when an invoker is injected (no function to reach)
 * @throws {ConfigError} a variable is missing
 */
export function requireCompleteEnvironment(env: Env, injected = false): void {
  if (injected) return;
  const missing = ['COMPLETE_FUNCTION_NAME'];
  if (!set(env, 'AWS_DEFAULT_REGION')) missing.push('AWS_REGION');
  if (set(env, 'DYNAMODB_ENDPOINT'))
    missing.push('AWS_ENDPOINT_URL_LAMBDA', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY');
  const absent = missing.filter((name) => !set(env, name));
  if (absent.length === 0) return;
  throw new ConfigError(
    `completeConnection needs the broker's complete function: ${absent.join(', ')} ${absent.length === 1 ? 'is' : 'are'} not set; ` +
      "in AWS, give the backend the link creator's grant and environment: broker.addLoginLinkCreator(fn), or " +
      'broker.grantCreateLoginLinks(role) plus broker.loginLinkEnvironment; locally, with the broker running ' +
      '(npm start), load its settings: eval "$(npm run --silent tokens -- env)"',
  );
}
