/**
 * The DynamoDB client, created once per container, and small attribute helpers shared by the
 * stores. Locally (`DYNAMODB_ENDPOINT`) it talks to DynamoDB Local with throwaway credentials.
 */
import { type AttributeValue, ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { StoreConfig } from '../core/config';
import {
  DYNAMODB_CONNECTION_TIMEOUT_MS,
  DYNAMODB_MAX_ATTEMPTS,
  DYNAMODB_REQUEST_TIMEOUT_MS,
} from '../core/refresh-budget';
import { withoutNodeVersionNotice } from './sdk-notice';

/** A DynamoDB item in the low-level attribute-value form. */
export type Item = Record<string, AttributeValue>;

/**
 * Timeouts and retries of every DynamoDB call: bounded, so one refresh has a known longest duration
 * and the refresh lease can be made longer than it (see `core/refresh-budget.ts`). Without them the
 * SDK waits on a stalled connection for minutes, long after the lease ran out.
 */
export const DYNAMODB_CLIENT_LIMITS = {
  maxAttempts: DYNAMODB_MAX_ATTEMPTS,
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
  // Nothing here changes the client's middleware after creation, which is what the cache requires.
  const cacheMiddleware = true;
  if (config.endpoint) {
    const key = config.localAccessKey ?? 'local';
    return withoutNodeVersionNotice(
      () =>
        new DynamoDBClient({
          ...DYNAMODB_CLIENT_LIMITS,
          endpoint: config.endpoint,
          region: config.region,
          credentials: { accessKeyId: key, secretAccessKey: key },
          cacheMiddleware,
        }),
    );
  }
  return withoutNodeVersionNotice(
    () => new DynamoDBClient({ ...DYNAMODB_CLIENT_LIMITS, region: config.region, cacheMiddleware }),
  );
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
