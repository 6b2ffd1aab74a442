/**
 * The data-key provider a configuration names: KMS (`FIELD_KEY_ARN`) or a local key file
 * (`FIELD_KEY_FILE`). This module does not import the KMS client: whoever may use a KMS key hands in
 * the factory. The Lambda handlers pass adapters/kms-key.ts, imported statically so the bundler keeps
 * only the two KMS commands used; the reader library and the CLI pass a factory that loads it on first
 * use (reader/kms-on-demand.ts), so a token reader, which never decrypts, never loads it.
 */
import type { FieldKeyConfig } from '../core/config';
import { ConfigError } from '../core/errors';
import type { DataKeyProvider } from './field-cipher';
import { localKeyProvider, readLocalKeyFile } from './local-key';

/** Makes the KMS provider for a key ARN in its region (`createKmsKeyProvider` in adapters/kms-key.ts). */
export type KmsKeyProviderFactory = (keyArn: string, region: string) => DataKeyProvider;

/**
 * The provider for `config`. A local key file is read (and its mode checked) now, so a bad file fails
 * the caller's init; KMS is not called until a field is encrypted or decrypted.
 * @param kms makes the KMS provider; required when `config` names a KMS key
 * @throws {ConfigError} a missing, unreadable or open local key file; a KMS key without a factory
 */
export function createFieldKeyProvider(
  config: FieldKeyConfig,
  kms: KmsKeyProviderFactory | undefined,
): DataKeyProvider {
  if (config.kind === 'local') return localKeyProvider(readLocalKeyFile(config.file));
  if (!kms) {
    throw new ConfigError('FIELD_KEY_ARN is set, but this process was built without a KMS client to use it with');
  }
  return kms(config.keyArn, config.region);
}
