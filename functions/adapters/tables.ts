/**
 * Tables for local runs (DynamoDB Local), derived from the same schema the CDK stack declares
 * (`functions/core/schema.ts`), created when missing. In AWS the stack owns the tables.
 */
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceInUseException,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import type { StoreConfig } from '../core/config';
import { type KeyAttribute, SESSIONS_TABLE, type TableSchema, TOKENS_TABLE } from '../core/schema';

/** The `CreateTable` input for `schema` under `name` (on-demand billing, as in AWS). */
export function tableDefinition(name: string, schema: TableSchema): CreateTableCommandInput {
  const attributes = new Map<string, KeyAttribute>();
  const keys = (partition: KeyAttribute, sort?: KeyAttribute) => {
    for (const key of [partition, sort]) if (key) attributes.set(key.name, key);
    return [
      { AttributeName: partition.name, KeyType: 'HASH' as const },
      ...(sort ? [{ AttributeName: sort.name, KeyType: 'RANGE' as const }] : []),
    ];
  };
  const keySchema = keys(schema.partitionKey);
  const indexes = schema.indexes.map((index) => ({
    IndexName: index.name,
    KeySchema: keys(index.partitionKey, index.sortKey),
    Projection: { ProjectionType: index.projection },
  }));
  return {
    TableName: name,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [...attributes.values()].map((a) => ({ AttributeName: a.name, AttributeType: a.type })),
    KeySchema: keySchema,
    ...(indexes.length ? { GlobalSecondaryIndexes: indexes } : {}),
  };
}

async function ensureTable(client: DynamoDBClient, name: string, schema: TableSchema): Promise<boolean> {
  try {
    await client.send(new DescribeTableCommand({ TableName: name }));
    return false;
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  }
  try {
    await client.send(new CreateTableCommand(tableDefinition(name, schema)));
  } catch (error) {
    // The SDK retries a create that outlived its request timeout (a busy DynamoDB Local takes
    // seconds); the retry then finds the table the first attempt made.
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  await client.send(
    new UpdateTimeToLiveCommand({
      TableName: name,
      TimeToLiveSpecification: { AttributeName: schema.ttlAttribute, Enabled: true },
    }),
  );
  return true;
}

/** Creates the tokens and sessions tables if they do not exist; returns the names it created. */
export async function ensureTables(client: DynamoDBClient, config: StoreConfig): Promise<string[]> {
  const created: string[] = [];
  if (await ensureTable(client, config.tokensTable, TOKENS_TABLE)) created.push(config.tokensTable);
  if (await ensureTable(client, config.sessionsTable, SESSIONS_TABLE)) created.push(config.sessionsTable);
  return created;
}
