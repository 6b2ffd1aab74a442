/**
 * The KMS key provider (adapters/kms-key.ts). KMS has no local twin, so its client is mocked with
 * aws-sdk-client-mock, behind a small fake that keeps KMS's one rule that matters here: Decrypt
 * returns the data key only for the key and the encryption context it was generated under.
 */
import { randomBytes } from 'node:crypto';
import {
  DecryptCommand,
  type DecryptCommandInput,
  DisabledException,
  GenerateDataKeyCommand,
  type GenerateDataKeyCommandInput,
  InvalidCiphertextException,
  KMSClient,
} from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import type { FieldContext } from '../../functions/core/envelope';
import { DecryptionFailedError, KeyUnavailableError } from '../../functions/core/errors';
import { createFieldCipher } from '../../functions/adapters/field-cipher';
import { kmsKeyProvider } from '../../functions/adapters/kms-key';

const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555';
const OTHER_KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/99999999-2222-3333-4444-555555555555';
const kms = mockClient(KMSClient);
const at = (id: string): FieldContext => ({ purpose: 'tokens', field: 'refreshToken', id });
/** An AWS error KMS's model does not name (AccessDeniedException, ThrottlingException), as the SDK throws it. */
const awsError = (name: string, message: string) => Object.assign(new Error(message), { name, $metadata: {} });

/** A fake KMS: the "ciphertext blob" records key, context and data key; Decrypt checks the first two. */
function fakeKms() {
  kms.on(GenerateDataKeyCommand).callsFake((input: GenerateDataKeyCommandInput) => {
    const plaintext = randomBytes(32);
    const blob = Buffer.from(
      JSON.stringify({ key: input.KeyId, context: input.EncryptionContext, k: plaintext.toString('base64') }),
    );
    return { KeyId: input.KeyId, Plaintext: new Uint8Array(plaintext), CiphertextBlob: new Uint8Array(blob) };
  });
  kms.on(DecryptCommand).callsFake((input: DecryptCommandInput) => {
    const blob = JSON.parse(Buffer.from(input.CiphertextBlob!).toString('utf8'));
    if (blob.key !== input.KeyId || JSON.stringify(blob.context) !== JSON.stringify(input.EncryptionContext)) {
      throw new InvalidCiphertextException({ message: 'invalid ciphertext', $metadata: {} });
    }
    return { KeyId: blob.key, Plaintext: new Uint8Array(Buffer.from(blob.k, 'base64')) };
  });
}

beforeEach(() => {
  kms.reset();
});

describe('Function: kmsKeyProvider', () => {
  describe('Method: generateDataKey', () => {
    it('asks the configured key for an AES_256 data key with the encryption context {purpose}', async () => {
      fakeKms();
      const provider = kmsKeyProvider(KEY_ARN, new KMSClient({}));

      const { plaintextKey, encryptedKey } = await provider.generateDataKey('sessions');

      expect(plaintextKey).toHaveLength(32);
      expect(encryptedKey.length).toBeGreaterThan(0);
      expect(kms.commandCalls(GenerateDataKeyCommand).map((call) => call.args[0].input)).toEqual([
        { KeyId: KEY_ARN, KeySpec: 'AES_256', EncryptionContext: { purpose: 'sessions' } },
      ]);
    });

    it.each([
      ['access denied (the role lacks kms:GenerateDataKey)', awsError('AccessDeniedException', 'not authorized')],
      ['throttling', awsError('ThrottlingException', 'rate exceeded')],
      ['a disabled key', new DisabledException({ message: 'disabled', $metadata: {} })],
      ['a network failure', awsError('TimeoutError', 'socket hang up')],
    ])('throws KeyUnavailableError naming the operation on %s', async (_what, error) => {
      kms.on(GenerateDataKeyCommand).rejects(error);
      const provider = kmsKeyProvider(KEY_ARN, new KMSClient({}));

      const failure = provider.generateDataKey('tokens');

      await expect(failure).rejects.toThrow(KeyUnavailableError);
      await expect(failure).rejects.toThrow(`kms:GenerateDataKey for "tokens" failed (${error.name})`);
    });

    it('throws KeyUnavailableError for an answer without a 256-bit key', async () => {
      kms.on(GenerateDataKeyCommand).resolves({ Plaintext: new Uint8Array(16), CiphertextBlob: new Uint8Array(8) });
      await expect(kmsKeyProvider(KEY_ARN, new KMSClient({})).generateDataKey('tokens')).rejects.toThrow(
        /answered without a 256-bit data key/,
      );
    });
  });

  describe('Method: decryptDataKey', () => {
    it('names the key and the same encryption context on Decrypt as on GenerateDataKey', async () => {
      fakeKms();
      const provider = kmsKeyProvider(KEY_ARN, new KMSClient({}));
      const { plaintextKey, encryptedKey } = await provider.generateDataKey('tokens');

      const unwrapped = await provider.decryptDataKey(encryptedKey, 'tokens');

      expect(unwrapped.equals(plaintextKey)).toBe(true);
      const [decrypt] = kms.commandCalls(DecryptCommand).map((call) => call.args[0].input);
      expect(decrypt).toEqual({
        KeyId: KEY_ARN,
        CiphertextBlob: encryptedKey,
        EncryptionContext: kms.commandCalls(GenerateDataKeyCommand)[0].args[0].input.EncryptionContext,
      });
    });

    it('throws DecryptionFailedError for a data key made for another purpose (KMS refuses the context)', async () => {
      fakeKms();
      const provider = kmsKeyProvider(KEY_ARN, new KMSClient({}));
      const { encryptedKey } = await provider.generateDataKey('sessions');

      await expect(provider.decryptDataKey(encryptedKey, 'tokens')).rejects.toThrow(DecryptionFailedError);
    });

    it('throws DecryptionFailedError for a data key of another KMS key', async () => {
      fakeKms();
      const { encryptedKey } = await kmsKeyProvider(OTHER_KEY_ARN, new KMSClient({})).generateDataKey('tokens');

      await expect(kmsKeyProvider(KEY_ARN, new KMSClient({})).decryptDataKey(encryptedKey, 'tokens')).rejects.toThrow(
        /kms:Decrypt refused the data key as not wrapped by this key for "tokens"/,
      );
    });

    it('throws KeyUnavailableError (not DecryptionFailedError) when the role may not decrypt', async () => {
      kms.on(DecryptCommand).rejects(awsError('AccessDeniedException', 'not authorized'));
      const failure = kmsKeyProvider(KEY_ARN, new KMSClient({})).decryptDataKey(Buffer.from('blob'), 'tokens');

      await expect(failure).rejects.toThrow(KeyUnavailableError);
      await expect(failure).rejects.toThrow('kms:Decrypt for "tokens" failed (AccessDeniedException)');
    });
  });

  describe('with the cached field cipher', () => {
    it('makes 1 GenerateDataKey for 500 encrypted refresh tokens, then a new one after the use bound', async () => {
      fakeKms();
      const cipher = createFieldCipher(kmsKeyProvider(KEY_ARN, new KMSClient({})), { policy: { encryptMaxUses: 500 } });

      for (let i = 0; i < 500; i++) await cipher.encrypt(at(`u${i}`), `t${i}`);
      expect(kms.commandCalls(GenerateDataKeyCommand)).toHaveLength(1);
      await cipher.encrypt(at('u500'), 't500');

      expect(kms.commandCalls(GenerateDataKeyCommand)).toHaveLength(2);
      expect(kms.commandCalls(DecryptCommand)).toHaveLength(0);
    });

    it('makes 1 Decrypt for 200 refresh tokens another process sealed under one data key', async () => {
      fakeKms();
      const writer = createFieldCipher(kmsKeyProvider(KEY_ARN, new KMSClient({})));
      const stored = await Promise.all(Array.from({ length: 200 }, (_, i) => writer.encrypt(at(`u${i}`), `t${i}`)));
      const reader = createFieldCipher(kmsKeyProvider(KEY_ARN, new KMSClient({})));

      const values = await Promise.all(stored.map((value, i) => reader.decrypt(at(`u${i}`), value)));

      expect(values[199]).toBe('t199');
      expect(kms.commandCalls(DecryptCommand)).toHaveLength(1);
    });

    it("refuses a refresh token copied into another user's item, with no KMS call for it", async () => {
      fakeKms();
      const cipher = createFieldCipher(kmsKeyProvider(KEY_ARN, new KMSClient({})));
      const victims = await cipher.encrypt(at('victim'), 'victims-refresh-token');
      const calls = kms.calls().length;

      await expect(cipher.decrypt(at('attacker'), victims)).rejects.toThrow(DecryptionFailedError);
      expect(kms.calls()).toHaveLength(calls);
    });

    it('never puts the data key or the plaintext in an error message', async () => {
      fakeKms();
      const cipher = createFieldCipher(kmsKeyProvider(KEY_ARN, new KMSClient({})));
      const stored = await cipher.encrypt(at('u1'), 'the-refresh-token');
      const dataKey = JSON.parse(Buffer.from(stored.split('.')[2], 'base64url').toString('utf8')).k as string;

      const error = (await cipher.decrypt(at('u2'), stored).catch((e: unknown) => e)) as Error;

      expect(error).toBeInstanceOf(DecryptionFailedError);
      for (const text of [error.message, String(error.cause)]) {
        expect(text).not.toContain('the-refresh-token');
        expect(text).not.toContain(dataKey);
      }
    });
  });
});
