/**
 * Per-container wiring shared by the Lambda entry files: configuration is read once at import (a bad
 * value fails the init, naming the variable) and SDK clients are created once and reused.
 */
import { readLogLevel, readStoreConfig, type StoreConfig } from './core/config';
import { createDynamoClient } from './adapters/dynamo';
import { createLogger, type Logger } from './adapters/logger';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/** Store configuration of this process. */
export const storeConfig: StoreConfig = readStoreConfig(process.env);

/** The one DynamoDB client of this process. */
export const dynamo: DynamoDBClient = createDynamoClient(storeConfig);

/** The process logger, tagged with the function name Lambda sets. */
export const logger: Logger = createLogger({
  level: readLogLevel(process.env),
  base: { service: 'kroger-token-broker', function: process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'local' },
});
