/**
 * The envelope format of an encrypted field (a refresh token, a code verifier): AES-256-GCM under a
 * data key, the data key itself encrypted by a key-encryption key (KMS in AWS, a local key file in
 * `npm start`) and carried beside the ciphertext. One self-describing string per attribute:
 *
 *     v1.<key ref>.<encrypted data key>.<iv>.<ciphertext>.<tag>      (base64url parts)
 *
 * The additional authenticated data binds the ciphertext to where it is stored: the purpose (table),
 * the attribute name and the item id (the user id, the login attempt's id), and to the header itself.
 * A ciphertext copied into another user's item, another attribute or another table fails to decrypt.
 *
 * Pure: no I/O; the data key comes in as bytes (adapters/field-cipher.ts gets and caches it).
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14 (refresh tokens are credentials to protect)
 * @see https://nvlpubs.nist.gov/nistpubs/Legacy/SP/nistspecialpublication800-38d.pdf (GCM, 96-bit IVs)
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DecryptionFailedError } from './errors';

/** The only version written; a future format gets `v2` and this one stays readable. */
export const ENVELOPE_VERSION = 'v1';

/**
 * What a field's key is used for. It is also the KMS encryption context (`purpose`), so IAM can let
 * a role use the key for one table's fields and not the other's.
 */
export type FieldPurpose = 'tokens' | 'sessions';

/** Where an encrypted value lives: bound into the ciphertext as additional authenticated data. */
export interface FieldContext {
  readonly purpose: FieldPurpose;
  /** The attribute name, e.g. `refreshToken`. */
  readonly field: string;
  /** The item's key: the user id in the tokens table, `attempt#<state>` in the sessions table. */
  readonly id: string;
}

/** Names the key-encryption key a data key was wrapped with: `kms` or `local`. */
export type KeyRef = 'kms' | 'local';

/** A parsed envelope. */
export interface Envelope {
  readonly keyRef: KeyRef;
  /** The data key as the key-encryption key wrapped it (a KMS ciphertext blob, or the local wrap). */
  readonly encryptedKey: Buffer;
  /** The same, as stored (base64url): the cache key of the decrypted data key. */
  readonly encryptedKeyText: string;
  readonly iv: Buffer;
  readonly ciphertext: Buffer;
  readonly tag: Buffer;
}

/** AES-256-GCM: 32-byte keys, 96-bit random IVs, 128-bit tags. */
export const DATA_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const B64URL = /^[A-Za-z0-9_-]*$/;
const KEY_REFS: readonly string[] = ['kms', 'local'] satisfies KeyRef[];

/** `"refreshToken" of tokens item "u1"`: names a field in messages, never its value. */
export function describeField(context: FieldContext): string {
  return `"${context.field}" of ${context.purpose} item "${context.id}"`;
}

/**
 * True when `stored` has the envelope's shape. A value without it is a plaintext written before
 * fields were encrypted: still read, and replaced by an envelope on the next write.
 */
export function isEnvelope(stored: string): boolean {
  const parts = stored.split('.');
  return (
    parts.length === 6 &&
    parts[0] === ENVELOPE_VERSION &&
    KEY_REFS.includes(parts[1]) &&
    parts.slice(2).every((part) => B64URL.test(part))
  );
}

/**
 * Parses an envelope.
 * @throws {DecryptionFailedError} not an envelope of this version, or a part of the wrong length
 */
export function parseEnvelope(stored: string, context: FieldContext): Envelope {
  if (!isEnvelope(stored)) {
    throw new DecryptionFailedError(`the encrypted ${describeField(context)} is malformed`);
  }
  const [, keyRef, encryptedKeyText, iv, ciphertext, tag] = stored.split('.');
  const envelope: Envelope = {
    keyRef: keyRef as KeyRef,
    encryptedKey: Buffer.from(encryptedKeyText, 'base64url'),
    encryptedKeyText,
    iv: Buffer.from(iv, 'base64url'),
    ciphertext: Buffer.from(ciphertext, 'base64url'),
    tag: Buffer.from(tag, 'base64url'),
  };
  if (envelope.iv.length !== IV_BYTES || envelope.tag.length !== TAG_BYTES || envelope.encryptedKey.length === 0) {
    throw new DecryptionFailedError(`the encrypted ${describeField(context)} is malformed`);
  }
  return envelope;
}

/**
 * The additional authenticated data: canonical JSON (keys sorted) of the context and the header, so
 * neither the place nor the wrapped key can be swapped without the tag failing.
 */
export function additionalData(keyRef: KeyRef, encryptedKeyText: string, context: FieldContext): Buffer {
  const fields = {
    edk: encryptedKeyText,
    field: context.field,
    id: context.id,
    keyRef,
    purpose: context.purpose,
    v: ENVELOPE_VERSION,
  };
  return Buffer.from(JSON.stringify(fields, Object.keys(fields).sort()), 'utf8');
}

/**
 * Encrypts `plaintext` under `dataKey` and returns the envelope string.
 * @param wrapped the data key as the key-encryption key wrapped it, and which key that was
 */
export function seal(
  dataKey: Buffer,
  wrapped: { readonly keyRef: KeyRef; readonly encryptedKeyText: string },
  context: FieldContext,
  plaintext: string,
): string {
  if (dataKey.length !== DATA_KEY_BYTES) throw new Error(`a data key must be ${DATA_KEY_BYTES} bytes`);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', dataKey, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(additionalData(wrapped.keyRef, wrapped.encryptedKeyText, context));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [
    ENVELOPE_VERSION,
    wrapped.keyRef,
    wrapped.encryptedKeyText,
    iv.toString('base64url'),
    ciphertext.toString('base64url'),
    cipher.getAuthTag().toString('base64url'),
  ].join('.');
}

/**
 * Decrypts a parsed envelope with its (already unwrapped) data key.
 * @throws {DecryptionFailedError} the tag does not verify: moved, altered, or another key
 */
export function open(dataKey: Buffer, envelope: Envelope, context: FieldContext): string {
  try {
    const decipher = createDecipheriv('aes-256-gcm', dataKey, envelope.iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(additionalData(envelope.keyRef, envelope.encryptedKeyText, context));
    decipher.setAuthTag(envelope.tag);
    return Buffer.concat([decipher.update(envelope.ciphertext), decipher.final()]).toString('utf8');
  } catch (error) {
    throw new DecryptionFailedError(
      `the encrypted ${describeField(context)} does not decrypt: it was moved from another item or field, altered, or written under another key`,
      { cause: error },
    );
  }
}
