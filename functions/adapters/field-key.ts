/**
 * The data-key provider a configuration names: KMS (`FIELD_KEY_ARN`) or a local key file
 * (`FIELD_KEY_FILE`). The KMS client and its commands are loaded on the first data-key request, not
 * at import: a token reader or a connect-link creator that imports the services never loads them,
 * and a handler's init does not pay for them (its first encrypt or decrypt does).
 */
import type { FieldKeyConfig } from '../core/config';
import type { DataKeyProvider } from './field-cipher';
import { localKeyProvider, readLocalKeyFile } from './local-key';

/**
 * The provider for `config`. A local key file is read (and its mode checked) now, so a bad file fails
 * the caller's init; KMS is not called until a field is encrypted or decrypted.
 * @throws {ConfigError} a missing, unreadable or open local key file
 */
export function createFieldKeyProvider(config: FieldKeyConfig): DataKeyProvider {
  if (config.kind === 'local') return localKeyProvider(readLocalKeyFile(config.file));
  let loading: Promise<DataKeyProvider> | undefined;
  const load = () =>
    (loading ??= (async () => {
      const [{ KMSClient }, { kmsKeyProvider }] = await Promise.all([
        import('@aws-sdk/client-kms'),
        import('./kms-key'),
      ]);
      // One client per process, created on first use, as the Lambda invoker of the reader does.
      return kmsKeyProvider(config.keyArn, new KMSClient({ region: config.region }));
    })().catch((error: unknown) => {
      loading = undefined;
      throw error;
    }));
  return {
    keyRef: 'kms',
    generateDataKey: async (purpose) => (await load()).generateDataKey(purpose),
    decryptDataKey: async (encryptedKey, purpose) => (await load()).decryptDataKey(encryptedKey, purpose),
  };
}
