/**
 * Data keys from AWS KMS: `GenerateDataKey` (AES_256) to encrypt, `Decrypt` to unwrap, always under
 * the configured key ARN and with the encryption context `{purpose}` (`tokens` or `sessions`). IAM and
 * the key policy allow each broker role only the purposes and operations it needs (infra/broker/grants.ts).
 *
 * The user id is not in the KMS context: it is bound by the envelope's AES-GCM additional data
 * (core/envelope.ts), which lets one cached data key serve many users; a KMS context per user would
 * make every field cost its own KMS call.
 * @see https://docs.aws.amazon.com/kms/latest/developerguide/encrypt_context.html
 */
import {
  DecryptCommand,
  GenerateDataKeyCommand,
  IncorrectKeyException,
  InvalidCiphertextException,
  KMSClient,
} from '@aws-sdk/client-kms';
import type { FieldPurpose } from '../core/envelope';
import { DATA_KEY_BYTES } from '../core/envelope';
import { KMS_CALL_BUDGET_MS } from '../core/budget';
import { DecryptionFailedError, KeyUnavailableError } from '../core/errors';
import { type AwsFault, AWS_CLIENT_LIMITS, callAws } from './aws-call';
import type { DataKeyProvider } from './field-cipher';

/** The KMS encryption context of a data key for `purpose`: the same on GenerateDataKey and Decrypt. */
export const kmsEncryptionContext = (purpose: FieldPurpose): Record<string, string> => ({ purpose });

/** The name of an SDK error for a message: its name only, never a request or response body. */
function named(error: unknown): string {
  return error instanceof Error ? error.name : 'unknown error';
}

/** A throttled, slow or failing KMS: retryable, unlike a key that is disabled or not granted. */
const kmsUnavailable = (operation: string, purpose: FieldPurpose) => (fault: AwsFault, cause: unknown) =>
  new KeyUnavailableError(`kms:${operation} for "${purpose}" failed (${fault.name}); try again`, {
    cause,
    retryable: true,
    retryAfterSeconds: fault.retryAfterSeconds,
  });

/**
 * A {@link DataKeyProvider} over KMS.
 * @param keyArn the key's full ARN: Decrypt names it too, so a blob wrapped by another key is refused
 * @param client a KMS client, created once per process by the caller
 */
export function kmsKeyProvider(keyArn: string, client: Pick<KMSClient, 'send'>): DataKeyProvider {
  return {
    keyRef: 'kms',
    async generateDataKey(purpose) {
      let out;
      try {
        out = await callAws(
          KMS_CALL_BUDGET_MS,
          (options) =>
            client.send(
              new GenerateDataKeyCommand({
                KeyId: keyArn,
                KeySpec: 'AES_256',
                EncryptionContext: kmsEncryptionContext(purpose),
              }),
              options,
            ),
          kmsUnavailable('GenerateDataKey', purpose),
        );
      } catch (error) {
        if (error instanceof KeyUnavailableError) throw error;
        throw new KeyUnavailableError(`kms:GenerateDataKey for "${purpose}" failed (${named(error)})`, {
          cause: error,
        });
      }
      if (out.Plaintext?.length !== DATA_KEY_BYTES || !out.CiphertextBlob?.length) {
        throw new KeyUnavailableError(`kms:GenerateDataKey for "${purpose}" answered without a 256-bit data key`);
      }
      return { plaintextKey: Buffer.from(out.Plaintext), encryptedKey: Buffer.from(out.CiphertextBlob) };
    },
    async decryptDataKey(encryptedKey, purpose) {
      let out;
      try {
        out = await callAws(
          KMS_CALL_BUDGET_MS,
          (options) =>
            client.send(
              new DecryptCommand({
                KeyId: keyArn,
                CiphertextBlob: encryptedKey,
                EncryptionContext: kmsEncryptionContext(purpose),
              }),
              options,
            ),
          kmsUnavailable('Decrypt', purpose),
        );
      } catch (error) {
        if (error instanceof KeyUnavailableError) throw error;
        // The blob is not a data key of this key for this purpose: the same answer on every retry.
        if (
          error instanceof InvalidCiphertextException ||
          error instanceof IncorrectKeyException ||
          (error instanceof Error && /^(InvalidCiphertextException|IncorrectKeyException)$/.test(error.name))
        ) {
          throw new DecryptionFailedError(
            `kms:Decrypt refused the data key as not wrapped by this key for "${purpose}" (${named(error)})`,
            { cause: error },
          );
        }
        throw new KeyUnavailableError(`kms:Decrypt for "${purpose}" failed (${named(error)})`, { cause: error });
      }
      if (out.Plaintext?.length !== DATA_KEY_BYTES) {
        throw new KeyUnavailableError(`kms:Decrypt for "${purpose}" answered without a 256-bit data key`);
      }
      return Buffer.from(out.Plaintext);
    },
  };
}

/**
 * A {@link DataKeyProvider} over a new KMS client for the key's region (a `KmsKeyProviderFactory`).
 * Import it statically where it is used: the bundler then keeps only the two commands called.
 */
export function createKmsKeyProvider(keyArn: string, region: string): DataKeyProvider {
  return kmsKeyProvider(keyArn, new KMSClient({ ...AWS_CLIENT_LIMITS, region }));
}
