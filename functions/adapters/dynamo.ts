/**
 * The DynamoDB client, created once per container, and small attribute helpers shared by the
 * stores. Locally (`DYNAMODB_ENDPOINT`) it talks to DynamoDB Local with throwaway credentials.
 */
import { type AttributeValue, ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { StoreConfig } from '../core/config';
import {
  DYNAMODB_CALL_BUDGET_MS,
  DYNAMODB_CONNECTION_TIMEOUT_MS,
  DYNAMODB_MAX_ATTEMPTS,
  DYNAMODB_REQUEST_TIMEOUT_MS,
} from '../core/budget';
import { StoreUnavailableError } from '../core/errors';
import { callAws, gateAttempts, hasAttemptGate } from './aws-call';
import { withoutNodeVersionNotice } from './sdk-notice';

/** A DynamoDB item in the low-level attribute-value form. */
export type Item = Record<string, AttributeValue>;

/**
 * Timeouts and retries of every DynamoDB call: bounded, so one refresh has a known longest duration
 * and the refresh lease can be made longer than it (see `core/budget.ts`). Without them the
 * SDK waits on a stalled connection for minutes, long after the lease ran out.
 */
export const DYNAMODB_CLIENT_LIMITS = {
  maxAttempts: DYNAMODB_MAX_ATTEMPTS,
  // A throttled client also slows its own sending rate, instead of retrying at full speed into a
  // table that is already over its capacity.
  retryMode: 'adaptive',
  requestHandler: {
    connectionTimeout: DYNAMODB_CONNECTION_TIMEOUT_MS,
    requestTimeout: DYNAMODB_REQUEST_TIMEOUT_MS,
    // Without it, the SDK only warns when requestTimeout passes and keeps waiting.
    throwOnRequestTimeout: true,
  },
} as const;

/**
 * Creates the client. Against a local endpoint it sends `config.localAccessKey` (else `local`) and no
 * AWS credentials: DynamoDB Local accepts any key and keeps one database per key, and a developer
 * machine may have no AWS credentials at all.
 */
export function createDynamoClient(config: StoreConfig): DynamoDBClient {
  // The middleware stack is resolved once per command class instead of on every send (a clone and
  // sort of some thirty steps): about 0.1-0.4 ms of CPU per request, measured by `npm run bench`.
  // The only middleware added is the attempt gate, before the first send, which the cache allows;
  // the store calls pass no options, which would turn the cache off (`storeClient`).
  const cacheMiddleware = true;
  if (config.endpoint) {
    const key = config.localAccessKey ?? 'local';
    return withoutNodeVersionNotice(() =>
      gateAttempts(
        new DynamoDBClient({
          ...DYNAMODB_CLIENT_LIMITS,
          endpoint: config.endpoint,
          region: config.region,
          credentials: { accessKeyId: key, secretAccessKey: key },
          cacheMiddleware,
        }),
      ),
    );
  }
  return withoutNodeVersionNotice(() =>
    gateAttempts(new DynamoDBClient({ ...DYNAMODB_CLIENT_LIMITS, region: config.region, cacheMiddleware })),
  );
}

/** What the stores need of a DynamoDB client: `send`. */
export type StoreClient = Pick<DynamoDBClient, 'send'>;

/** The operation a command sends (`GetItem`), from its schema: class names do not survive minifying. */
function operationOf(command: unknown): string | undefined {
  const schema = (command as { schema?: unknown }).schema;
  return Array.isArray(schema) && typeof schema[2] === 'string' ? schema[2] : undefined;
}

/**
 * The stores' view of `client`: every call limited to {@link DYNAMODB_CALL_BUDGET_MS} (and to the
 * request's deadline), and a throttled, slow, failing or unreachable DynamoDB turned into a
 * {@link StoreUnavailableError} naming the operation. A refused condition, a validation error or
 * access denied stay as the SDK raised them. The client itself is not changed: a consumer's own
 * client keeps behaving as the consumer set it up for its other calls.
 */
export function storeClient(client: StoreClient): StoreClient {
  // The broker's own clients refuse late attempts through their gate; any other client (a consumer's)
  // gets the abort signal in the send options instead.
  const gated = hasAttemptGate(client);
  const send = (command: Parameters<DynamoDBClient['send']>[0], options?: object) =>
    callAws(
      DYNAMODB_CALL_BUDGET_MS,
      ({ abortSignal }) =>
        gated && options === undefined ? client.send(command) : client.send(command, { ...options, abortSignal }),
      (fault, cause) => {
        const operation = operationOf(command);
        return new StoreUnavailableError(
          `DynamoDB ${operation ?? 'call'} failed: ${fault.throttled ? 'throttled' : 'unavailable'} (${fault.name})`,
          { cause, operation, outcomeUnknown: fault.outcomeUnknown, retryAfterSeconds: fault.retryAfterSeconds },
        );
      },
    );
  return { send: send as DynamoDBClient['send'] };
}

/** True for a failed `ConditionExpression`. */
export function isConditionFailure(error: unknown): error is ConditionalCheckFailedException {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error instanceof Error && error.name === 'ConditionalCheckFailedException')
  );
}

/** String attribute, or undefined. */
export const s = (value: string | undefined): AttributeValue | undefined =>
  value === undefined ? undefined : { S: value };

/** Number attribute, or undefined. */
export const n = (value: number | undefined): AttributeValue | undefined =>
  value === undefined ? undefined : { N: String(value) };

/** Drops undefined attributes, so optional fields are absent rather than null. */
export function compact(values: Record<string, AttributeValue | undefined>): Item {
  const out: Item = {};
  for (const [key, value] of Object.entries(values)) {
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** Reads a string attribute. */
export const str = (item: Item, key: string): string | undefined => item[key]?.S;

/** Reads a number attribute. */
export const num = (item: Item, key: string): number | undefined =>
  item[key]?.N === undefined ? undefined : Number(item[key].N);
