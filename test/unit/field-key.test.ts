/**
 * The field key provider a configuration names (adapters/field-key.ts): the KMS client is loaded on
 * the first data-key request, never at import, so token readers never load it and a handler's init
 * does not pay for it; a local key file is read at once, so a bad one fails the init.
 */
import { ConfigError } from '../../functions/core/errors';
import { createFieldKeyProvider } from '../../functions/adapters/field-key';
import { createTestFieldKey } from '../support/stores';

const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555';
const mockLoads: string[] = [];
const mockSent: Array<{ name: string; input: Record<string, unknown> }> = [];

// The SDK module, as a stand-in that records when it is loaded (jest runs the factory on first require).
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

describe('Function: createFieldKeyProvider', () => {
  it('loads the KMS client on the first data-key request only, then reuses it', async () => {
    const provider = createFieldKeyProvider({ kind: 'kms', keyArn: KEY_ARN, region: 'eu-west-1' });
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

  it('reads a local key file at once: a missing one fails the caller, not its first request', () => {
    expect(() => createFieldKeyProvider({ kind: 'local', file: '/nonexistent/field-key' })).toThrow(ConfigError);
    expect(createFieldKeyProvider({ kind: 'local', file: createTestFieldKey('field-key').file }).keyRef).toBe('local');
  });
});
