/**
 * Table definitions for local runs (DynamoDB Local): the same keys, index and TTL attribute as the
 * CDK stack declares, created when missing. In AWS the stack owns the tables.
 */
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import type { StoreConfig } from '../core/config';
import { DUE_INDEX } from './token-store';

/** Key schema of the tokens table and its sparse refresher index. */
export function tokensTableDefinition(name: string): CreateTableCommandInput {
  return {
    TableName: name,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'userId', AttributeType: 'S' },
      { AttributeName: 'refreshShard', AttributeType: 'N' },
      { AttributeName: 'nextRefreshAt', AttributeType: 'N' },
    ],
    KeySchema: [{ AttributeName: 'userId', KeyType: 'HASH' }],
    GlobalSecondaryIndexes: [
      {
        IndexName: DUE_INDEX,
        KeySchema: [
          { AttributeName: 'refreshShard', KeyType: 'HASH' },
          { AttributeName: 'nextRefreshAt', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
    ],
  };
}

/** Key schema of the sessions table (login attempts and connect links). */
export function sessionsTableDefinition(name: string): CreateTableCommandInput {
  return {
    TableName: name,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
  };
}

async function ensureTable(client: DynamoDBClient, input: CreateTableCommandInput): Promise<boolean> {
  try {
    await client.send(new DescribeTableCommand({ TableName: input.TableName }));
    return false;
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  }
  await client.send(new CreateTableCommand(input));
  await client.send(
    new UpdateTimeToLiveCommand({
      TableName: input.TableName,
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
    }),
  );
  return true;
}

/** Creates the tokens and sessions tables if they do not exist; returns the names it created. */
export async function ensureTables(client: DynamoDBClient, config: StoreConfig): Promise<string[]> {
  const created: string[] = [];
  if (await ensureTable(client, tokensTableDefinition(config.tokensTable))) created.push(config.tokensTable);
  if (await ensureTable(client, sessionsTableDefinition(config.sessionsTable))) created.push(config.sessionsTable);
  return created;
}
