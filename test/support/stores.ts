/**
 * Fresh tables in the shared DynamoDB Local for one test file, so files never see each other's data.
 */
import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { readStoreConfig, type StoreConfig } from '../../functions/core/config';
import { createDynamoClient } from '../../functions/adapters/dynamo';
import { DynamoSessionStore } from '../../functions/adapters/session-store';
import { ensureTables } from '../../functions/adapters/tables';
import { DynamoTokenStore } from '../../functions/adapters/token-store';

export interface TestStores {
  readonly config: StoreConfig;
  readonly client: DynamoDBClient;
  readonly tokens: DynamoTokenStore;
  readonly sessions: DynamoSessionStore;
}

/** Creates uniquely named tokens and sessions tables in DynamoDB Local. */
export async function createTestStores(prefix: string): Promise<TestStores> {
  if (!process.env.DYNAMODB_ENDPOINT) throw new Error('DYNAMODB_ENDPOINT is not set: run through jest (global setup)');
  const suffix = randomBytes(4).toString('hex');
  const config = readStoreConfig({
    DYNAMODB_ENDPOINT: process.env.DYNAMODB_ENDPOINT,
    TOKENS_TABLE: `${prefix}-tokens-${suffix}`,
    SESSIONS_TABLE: `${prefix}-sessions-${suffix}`,
  });
  const client = createDynamoClient(config);
  await ensureTables(client, config);
  return {
    config,
    client,
    tokens: new DynamoTokenStore(client, config.tokensTable),
    sessions: new DynamoSessionStore(client, config.sessionsTable),
  };
}
