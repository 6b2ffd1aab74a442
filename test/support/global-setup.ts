/**
 * Starts the real parts the integration tests share, once per run: DynamoDB Local (the official
 * jar). Tests find it through DYNAMODB_ENDPOINT; their local field key files go into one directory
 * (TEST_FIELD_KEYS_DIR), removed by the teardown.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDynamoLocal } from '../../infra/local/dynamodb-local';

export default async function globalSetup(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  process.env.TEST_FIELD_KEYS_DIR = mkdtempSync(join(tmpdir(), 'broker-field-keys-'));
  // Java answers in a few seconds when idle; the margin is for a shared, busy machine (see START_REAL_PARTS_TIMEOUT_MS).
  const dynamo = await startDynamoLocal({ timeoutMs: 90_000 });
  process.env.DYNAMODB_ENDPOINT = dynamo.endpoint;
  process.env.AWS_REGION ??= 'us-east-1';
  (globalThis as { __dynamoLocal?: { stop(): Promise<void> } }).__dynamoLocal = dynamo;
}
