/**
 * Counts dead-grant verdicts across every process that refreshes, so that many users refused the same
 * way in a short time (a provider fault, a proxy answering 400 for everything) do not all lose their
 * grants. One item per refusal shape in the sessions table (which token readers are never granted),
 * keyed under `REFUSAL_COUNTER_KEY_PREFIX`: the count of the current fixed window and of the one
 * before it, for a sliding estimate (`core/refusals.ts` `refusalsInWindow`). Reports counts; the
 * refresher decides.
 */
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { RefusalShapeName } from '../core/errors';
import type { RefusalCounts } from '../core/refusals';
import { REFUSAL_COUNTER_KEY_PREFIX } from '../core/schema';
import { isConditionFailure, num, type StoreClient, storeClient } from './dynamo';

/** Counts refusals per shape. */
export interface RefusalCounter {
  /**
   * Adds one refusal of `shape` at `nowMs` to the window it falls in and returns the counts of that
   * window (this one included) and of the window before.
   */
  count(shape: RefusalShapeName, nowMs: number, windowSeconds: number): Promise<RefusalCounts>;
}

/** Attempts before giving up when other processes move the window at the same moment. */
const MAX_ATTEMPTS = 4;

/** DynamoDB implementation of {@link RefusalCounter} over the sessions table. */
export class DynamoRefusalCounter implements RefusalCounter {
  /** Every call limited and its faults typed (`storeClient`). */
  private readonly client: StoreClient;

  constructor(
    client: StoreClient,
    private readonly table: string,
  ) {
    this.client = storeClient(client);
  }

  async count(shape: RefusalShapeName, nowMs: number, windowSeconds: number): Promise<RefusalCounts> {
    const window = Math.floor(nowMs / 1000 / windowSeconds);
    const key = { id: { S: `${REFUSAL_COUNTER_KEY_PREFIX}${shape}` } };
    // Kept two windows, then DynamoDB's TTL removes a counter nobody touches any more.
    const ttl = { N: String((window + 2) * windowSeconds) };
    for (let attempt = 1; ; attempt++) {
      try {
        // The usual case: the window is current (or a process with a faster clock moved it on).
        const out = await this.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: key,
            UpdateExpression: 'ADD #count :one SET #ttl = :ttl',
            ConditionExpression: '#window >= :window',
            ExpressionAttributeNames: { '#count': 'count', '#ttl': 'ttl', '#window': 'window' },
            ExpressionAttributeValues: { ':one': { N: '1' }, ':ttl': ttl, ':window': { N: String(window) } },
            ReturnValues: 'ALL_NEW',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        const item = out.Attributes ?? {};
        return { current: num(item, 'count') ?? 1, previous: num(item, 'previousCount') ?? 0 };
      } catch (error) {
        if (!isConditionFailure(error) || attempt >= MAX_ATTEMPTS) throw error;
        // A new window (or no counter yet): start it, carrying the last window's count if it was the
        // one just before. Conditional on the window found, so two processes cannot both reset it.
        const found = error.Item;
        const foundWindow = found ? num(found, 'window') : undefined;
        const previous = foundWindow === window - 1 ? (num(found!, 'count') ?? 0) : 0;
        try {
          await this.client.send(
            new UpdateItemCommand({
              TableName: this.table,
              Key: key,
              UpdateExpression: 'SET #window = :window, #count = :one, #previousCount = :previous, #ttl = :ttl',
              ConditionExpression:
                foundWindow === undefined ? 'attribute_not_exists(#window)' : '#window = :foundWindow',
              ExpressionAttributeNames: {
                '#window': 'window',
                '#count': 'count',
                '#previousCount': 'previousCount',
                '#ttl': 'ttl',
              },
              ExpressionAttributeValues: {
                ':window': { N: String(window) },
                ':one': { N: '1' },
                ':previous': { N: String(previous) },
                ':ttl': ttl,
                ...(foundWindow === undefined ? {} : { ':foundWindow': { N: String(foundWindow) } }),
              },
            }),
          );
          return { current: 1, previous };
        } catch (startError) {
          // Another process started the window first: count into it on the next attempt.
          if (!isConditionFailure(startError)) throw startError;
        }
      }
    }
  }
}
