/**
 * A KMS key provider factory that loads the KMS client on the first data-key request: for the reader
 * library and the CLI, which may refresh in process (and so decrypt) but usually never do. Not for
 * the Lambda handlers: a dynamic import keeps the bundler from dropping the KMS commands they never
 * call, so they import adapters/kms-key.ts statically instead.
 */
import type { DataKeyProvider } from '../adapters/field-cipher';
import type { KmsKeyProviderFactory } from '../adapters/field-key';

/** See the module documentation. A failed load is not cached: the next request tries again. */
export const kmsKeyProviderOnDemand: KmsKeyProviderFactory = (keyArn, region) => {
  let loading: Promise<DataKeyProvider> | undefined;
  const load = () =>
    (loading ??= import('../adapters/kms-key')
      .then(({ createKmsKeyProvider }) => createKmsKeyProvider(keyArn, region))
      .catch((error: unknown) => {
        loading = undefined;
        throw error;
      }));
  return {
    keyRef: 'kms',
    generateDataKey: async (purpose) => (await load()).generateDataKey(purpose),
    decryptDataKey: async (encryptedKey, purpose) => (await load()).decryptDataKey(encryptedKey, purpose),
  };
};
