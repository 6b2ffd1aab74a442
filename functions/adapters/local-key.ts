/**
 * Data keys without KMS, for `npm start` and the tests: a 256-bit master key in a file only its owner
 * can read (mode 0600, `.local/field-key` beside `.local/stack.json`), wrapping each data key with
 * AES-256-GCM. It stands in for KMS behind the same {@link DataKeyProvider} interface, so the local
 * stack runs the very envelope and cache code Lambda runs.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { DATA_KEY_BYTES, type FieldPurpose } from '../core/envelope';
import { ConfigError, DecryptionFailedError } from '../core/errors';
import type { DataKeyProvider } from './field-cipher';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** What a wrapped data key is bound to: the purpose, as KMS binds it by the encryption context. */
const wrapContext = (purpose: FieldPurpose) => Buffer.from(`kroger-token-broker/local-data-key/${purpose}`, 'utf8');

/** A {@link DataKeyProvider} wrapping data keys under `masterKey` (32 bytes). */
export function localKeyProvider(masterKey: Buffer): DataKeyProvider {
  if (masterKey.length !== DATA_KEY_BYTES) throw new Error(`a local master key must be ${DATA_KEY_BYTES} bytes`);
  // A copy: the caller's buffer may be reused or cleared.
  const key = Buffer.from(masterKey);
  return {
    keyRef: 'local',
    async generateDataKey(purpose) {
      const plaintextKey = randomBytes(DATA_KEY_BYTES);
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(wrapContext(purpose));
      const wrapped = Buffer.concat([cipher.update(plaintextKey), cipher.final()]);
      return { plaintextKey, encryptedKey: Buffer.concat([iv, wrapped, cipher.getAuthTag()]) };
    },
    async decryptDataKey(encryptedKey, purpose) {
      if (encryptedKey.length !== IV_BYTES + DATA_KEY_BYTES + TAG_BYTES) {
        throw new DecryptionFailedError(`the data key for "${purpose}" is malformed`);
      }
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, encryptedKey.subarray(0, IV_BYTES), {
          authTagLength: TAG_BYTES,
        });
        decipher.setAAD(wrapContext(purpose));
        decipher.setAuthTag(encryptedKey.subarray(IV_BYTES + DATA_KEY_BYTES));
        return Buffer.concat([
          decipher.update(encryptedKey.subarray(IV_BYTES, IV_BYTES + DATA_KEY_BYTES)),
          decipher.final(),
        ]);
      } catch (error) {
        throw new DecryptionFailedError(
          `the data key for "${purpose}" was not wrapped by this local key file (another FIELD_KEY_FILE?)`,
          { cause: error },
        );
      }
    },
  };
}

/** True when group or others may read or write the file (POSIX modes; Windows has none to check). */
const tooOpen = (mode: number) => process.platform !== 'win32' && (mode & 0o077) !== 0;

/**
 * Reads the master key from a key file made by {@link ensureLocalKeyFile}.
 * @throws {ConfigError} the file is missing, readable by other users, or not a 256-bit key
 */
export function readLocalKeyFile(file: string): Buffer {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    throw new ConfigError(`FIELD_KEY_FILE "${file}" does not exist (npm start creates .local/field-key)`);
  }
  if (tooOpen(mode)) {
    // As ssh does with a private key: a key others can read protects nothing. The value is not read.
    throw new ConfigError(
      `FIELD_KEY_FILE "${file}" may be read by other users (mode ${(mode & 0o777).toString(8)}): run chmod 600 "${file}"`,
    );
  }
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url');
  if (key.length !== DATA_KEY_BYTES) {
    throw new ConfigError(`FIELD_KEY_FILE "${file}" does not hold a 256-bit key (base64url)`);
  }
  return key;
}

/**
 * Creates a key file with a new random key, readable by its owner only, unless it exists (then it is
 * kept: items encrypted under it stay readable across runs). The directory is created as needed.
 * @returns whether a new key was created
 * @throws {ConfigError} an existing file is readable by others or not a key
 */
export function ensureLocalKeyFile(file: string): boolean {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    // Exclusive and 0600 from the first byte: no moment where the key is on disk with wider rights.
    fd = openSync(file, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    readLocalKeyFile(file);
    return false;
  }
  try {
    writeSync(fd, `${randomBytes(DATA_KEY_BYTES).toString('base64url')}\n`);
  } finally {
    closeSync(fd);
  }
  // The umask cannot widen 0600, but a filesystem ignoring the open mode is set right here.
  chmodSync(file, 0o600);
  return true;
}
