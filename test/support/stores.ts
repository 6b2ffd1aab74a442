/**
 * Fresh tables in the shared DynamoDB Local for one test file, so files never see each other's data,
 * and a field key of the file's own (a local key file, as `npm start` makes): the stores encrypt
 * refresh tokens and code verifiers under it, through the same code as in AWS.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { readStoreConfig, type StoreConfig } from '../../functions/core/config';
import { createDynamoClient } from '../../functions/adapters/dynamo';
import { createFieldCipher, type FieldCipher } from '../../functions/adapters/field-cipher';
import { ensureLocalKeyFile, localKeyProvider, readLocalKeyFile } from '../../functions/adapters/local-key';
import { DynamoSessionStore } from '../../functions/adapters/session-store';
import { ensureTables } from '../../functions/adapters/tables';
import { DynamoTokenStore } from '../../functions/adapters/token-store';

/**
 * The timeout of a file's `beforeAll` that starts real parts (a sandbox, tables): they are ready in
 * about 2 s on an idle machine, but on a shared 2-core one, beside the run's Java, Chromium and
 * bundler, a sandbox once took over 20 s, and the hook's default (the 30 s test timeout) would fail
 * the whole file for a start that was merely slow. Above the sandbox's own 60 s ready limit, so a
 * start that really fails reports its stderr instead of a bare hook timeout.
 */
export const START_REAL_PARTS_TIMEOUT_MS = 90_000;

export interface TestStores {
  readonly config: StoreConfig;
  readonly client: DynamoDBClient;
  readonly tokens: DynamoTokenStore;
  readonly sessions: DynamoSessionStore;
  /** The local key file the stores encrypt with: `FIELD_KEY_FILE` for handlers and readers of this file. */
  readonly fieldKeyFile: string;
  readonly cipher: FieldCipher;
}

/** A new local key file (mode 0600) in the run's key directory (global setup), and a cipher over it. */
export function createTestFieldKey(prefix: string): { file: string; cipher: FieldCipher } {
  const dir = process.env.TEST_FIELD_KEYS_DIR ?? mkdtempSync(join(tmpdir(), 'broker-field-keys-'));
  const file = join(dir, `${prefix}-${randomBytes(4).toString('hex')}.key`);
  ensureLocalKeyFile(file);
  return { file, cipher: createFieldCipher(localKeyProvider(readLocalKeyFile(file))) };
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
  const key = createTestFieldKey(prefix);
  return {
    config,
    client,
    tokens: new DynamoTokenStore(client, config.tokensTable, key.cipher),
    sessions: new DynamoSessionStore(client, config.sessionsTable, key.cipher),
    fieldKeyFile: key.file,
    cipher: key.cipher,
  };
}
