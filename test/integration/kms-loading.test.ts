/**
 * Who loads the KMS client, and when (adapters/field-key.ts, reader/kms-on-demand.ts): a token reader
 * never does, even with FIELD_KEY_ARN set; the reader library and the CLI load it on their first
 * data-key request; a KMS key setting without a way to use it fails where a field is touched.
 * The SDK module is replaced by a stand-in that records when it is loaded and what it is sent.
 */
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { ConfigError } from '../../functions/core/errors';
import { createFieldKeyProvider } from '../../functions/adapters/field-key';
import { createTokenReader } from '../../functions/reader/index';
import { kmsKeyProviderOnDemand } from '../../functions/reader/kms-on-demand';
import { seededItem } from '../support/seed';
import { createTestFieldKey, createTestStores, type TestStores } from '../support/stores';

const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555';
const mockLoads: string[] = [];
const mockSent: Array<{ name: string; input: Record<string, unknown> }> = [];

// Jest runs this factory when the module is first required: `mockLoads` says whether and when.
jest.mock('@aws-sdk/client-kms', () => {
  mockLoads.push('@aws-sdk/client-kms');
  class Command {
    constructor(readonly input: Record<string, unknown>) {}
  }
  class GenerateDataKeyCommand extends Command {}
  class DecryptCommand extends Command {}
  class KMSClient {
    constructor(readonly config: Record<string, unknown>) {}
    async send(command: Command) {
      mockSent.push({ name: command.constructor.name, input: command.input });
      return { Plaintext: new Uint8Array(32).fill(7), CiphertextBlob: new Uint8Array([1, 2, 3]) };
    }
  }
  return {
    KMSClient,
    GenerateDataKeyCommand,
    DecryptCommand,
    InvalidCiphertextException: class extends Error {},
    IncorrectKeyException: class extends Error {},
  };
});

let stores: TestStores;

beforeAll(async () => {
  stores = await createTestStores('kmsload');
  const now = Math.floor(Date.now() / 1000);
  await stores.client.send(
    new PutItemCommand({
      TableName: stores.config.tokensTable,
      Item: seededItem('kms-reader', { issuedAt: now - 60, expiresAt: now + 1800 }),
    }),
  );
});

afterAll(() => stores?.client.destroy());

describe('Loading the KMS client', () => {
  it('never happens in a token reader, even when FIELD_KEY_ARN is set', async () => {
    const reader = createTokenReader({
      env: {
        DYNAMODB_ENDPOINT: stores.config.endpoint!,
        TOKENS_TABLE: stores.config.tokensTable,
        REFRESH_FUNCTION_NAME: 'broker-refresh',
        FIELD_KEY_ARN: KEY_ARN,
      },
      dynamo: stores.client,
      invokeRefresh: async () => {
        throw new Error('not expected: the token is fresh');
      },
    });

    await expect(reader.getAccessToken('kms-reader')).resolves.toMatchObject({ userId: 'kms-reader' });
    expect(mockLoads).toEqual([]);
  });

  it('happens on the first data-key request of an on-demand provider, once, with the key and context', async () => {
    const provider = createFieldKeyProvider(
      { kind: 'kms', keyArn: KEY_ARN, region: 'eu-west-1' },
      kmsKeyProviderOnDemand,
    );
    expect(provider.keyRef).toBe('kms');
    expect(mockLoads).toEqual([]);

    const { plaintextKey } = await provider.generateDataKey('tokens');
    await provider.decryptDataKey(Buffer.from([1, 2, 3]), 'tokens');

    expect(plaintextKey).toHaveLength(32);
    expect(mockLoads).toEqual(['@aws-sdk/client-kms']);
    expect(mockSent.map((call) => [call.name, call.input.KeyId, call.input.EncryptionContext])).toEqual([
      ['GenerateDataKeyCommand', KEY_ARN, { purpose: 'tokens' }],
      ['DecryptCommand', KEY_ARN, { purpose: 'tokens' }],
    ]);
  });
});

describe('Function: createFieldKeyProvider', () => {
  it('refuses a KMS key setting in a process given no way to use KMS', () => {
    expect(() => createFieldKeyProvider({ kind: 'kms', keyArn: KEY_ARN, region: 'eu-west-1' }, undefined)).toThrow(
      new ConfigError('FIELD_KEY_ARN is set, but this process was built without a KMS client to use it with'),
    );
  });

  it('reads a local key file at once: a missing one fails the caller, not its first request', () => {
    expect(() => createFieldKeyProvider({ kind: 'local', file: '/nonexistent/field-key' }, undefined)).toThrow(
      ConfigError,
    );
    expect(createFieldKeyProvider({ kind: 'local', file: createTestFieldKey('kmsload').file }, undefined).keyRef).toBe(
      'local',
    );
  });
});
