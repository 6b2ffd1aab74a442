/**
 * Field encryption for the stores: refresh tokens, code verifiers (and pending connections) are
 * sealed into envelopes (core/envelope.ts) on write and opened on read, inside the adapters, so the
 * flows keep seeing plaintext and a table scan, an export or a restored backup sees none.
 *
 * Data keys come from a {@link DataKeyProvider}: KMS in AWS (adapters/kms-key.ts), a local key file in
 * `npm start` and the tests (adapters/local-key.ts). The same envelope code runs on both. KMS calls
 * are amortized by a cache, as the AWS Encryption SDK's caching materials manager does:
 * - encrypting reuses one data key per purpose for at most {@link CachePolicy.encryptMaxAgeMs} and
 *   {@link CachePolicy.encryptMaxUses} fields, so a leaked data key exposes a bounded set of fields;
 * - decrypting keeps a bounded LRU of unwrapped data keys, each for at most
 *   {@link CachePolicy.decryptMaxAgeMs}, so a revoked `kms:Decrypt` takes effect within that time.
 * Concurrent requests for the same data key share one provider call.
 */
import { DecryptionFailedError } from '../core/errors';
import type { PlaintextFieldPolicy } from '../core/schema';
import {
  describeField,
  type FieldContext,
  type FieldPurpose,
  type KeyRef,
  open,
  parseEnvelope,
  seal,
} from '../core/envelope';

/** Makes and unwraps data keys under one key-encryption key. The only I/O of field encryption. */
export interface DataKeyProvider {
  /** Written into each envelope, so a value is never handed to the wrong kind of key. */
  readonly keyRef: KeyRef;
  /**
   * A fresh 256-bit data key, in plaintext and wrapped. `purpose` is the KMS encryption context.
   * @throws {KeyUnavailableError} the key could not be used
   */
  generateDataKey(purpose: FieldPurpose): Promise<{ plaintextKey: Buffer; encryptedKey: Buffer }>;
  /**
   * Unwraps a data key made by {@link generateDataKey} for the same purpose.
   * @throws {DecryptionFailedError} it was not wrapped by this key for this purpose
   * @throws {KeyUnavailableError} the key could not be used
   */
  decryptDataKey(encryptedKey: Buffer, purpose: FieldPurpose): Promise<Buffer>;
}

/** Encrypts and decrypts single attribute values, bound to where they are stored. */
export interface FieldCipher {
  /** The envelope string to store for `plaintext` at `context`. */
  encrypt(context: FieldContext, plaintext: string): Promise<string>;
  /**
   * The plaintext of an envelope stored at `context`.
   * @throws {DecryptionFailedError} malformed, moved from another item or field, altered, or another key
   * @throws {KeyUnavailableError} the key could not be used (nothing was changed; may clear by itself)
   */
  decrypt(context: FieldContext, stored: string): Promise<string>;
  /**
   * Makes sure a data key to encrypt `purpose` is at hand (from the cache, or from the key provider
   * now), so a flow can find out that the key cannot be used before it spends something it cannot
   * get back (a person's sign-in attempt, a single-use code).
   * @throws {KeyUnavailableError} the key could not be used
   */
  ready(purpose: FieldPurpose): Promise<void>;
}

/** Bounds of the data-key cache. */
export interface CachePolicy {
  /** How long one data key encrypts new fields. @default 5 minutes */
  readonly encryptMaxAgeMs: number;
  /** How many fields one data key encrypts. @default 1000 */
  readonly encryptMaxUses: number;
  /** How long an unwrapped data key is kept for decrypting. @default 15 minutes */
  readonly decryptMaxAgeMs: number;
  /** How many unwrapped data keys are kept (least recently used dropped first). @default 100 */
  readonly decryptMaxEntries: number;
}

/**
 * The defaults. One refresh decrypts the stored token and encrypts the new one: with these bounds a
 * warm process makes about one GenerateDataKey per 5 minutes per purpose and one Decrypt per data key
 * it meets, instead of two KMS calls per refresh (`bench/kms-calls.ts` counts them).
 */
export const DEFAULT_CACHE_POLICY: CachePolicy = {
  encryptMaxAgeMs: 5 * 60_000,
  encryptMaxUses: 1000,
  decryptMaxAgeMs: 15 * 60_000,
  decryptMaxEntries: 100,
};

interface ActiveKey {
  readonly dataKey: Buffer;
  readonly encryptedKeyText: string;
  readonly createdAt: number;
  uses: number;
}

interface CachedKey {
  readonly dataKey: Buffer;
  readonly cachedAt: number;
}

/**
 * A field cipher over `provider` with a data-key cache.
 * @param options.now epoch milliseconds; injectable for tests
 */
export function createFieldCipher(
  provider: DataKeyProvider,
  options: { policy?: Partial<CachePolicy>; now?: () => number } = {},
): FieldCipher {
  const policy = { ...DEFAULT_CACHE_POLICY, ...options.policy };
  const now = options.now ?? Date.now;
  const active = new Map<FieldPurpose, ActiveKey>();
  const generating = new Map<FieldPurpose, Promise<ActiveKey>>();
  const unwrapped = new Map<string, CachedKey>();
  const unwrapping = new Map<string, Promise<Buffer>>();

  const remember = (cacheKey: string, dataKey: Buffer) => {
    unwrapped.delete(cacheKey);
    unwrapped.set(cacheKey, { dataKey, cachedAt: now() });
    // Map iteration is insertion order: the first entry is the least recently used.
    while (unwrapped.size > policy.decryptMaxEntries) unwrapped.delete(unwrapped.keys().next().value!);
  };

  const generate = async (purpose: FieldPurpose): Promise<ActiveKey> => {
    const { plaintextKey, encryptedKey } = await provider.generateDataKey(purpose);
    const key: ActiveKey = {
      dataKey: plaintextKey,
      encryptedKeyText: encryptedKey.toString('base64url'),
      createdAt: now(),
      uses: 0,
    };
    active.set(purpose, key);
    // This process reads back what it wrote (the refresh after a login) without asking to unwrap it.
    remember(`${purpose}.${key.encryptedKeyText}`, plaintextKey);
    return key;
  };

  /** The cached key for `purpose` while it may still encrypt. */
  const usable = (purpose: FieldPurpose): ActiveKey | undefined => {
    const current = active.get(purpose);
    return current && current.uses < policy.encryptMaxUses && now() - current.createdAt < policy.encryptMaxAgeMs
      ? current
      : undefined;
  };

  /** A new key for `purpose`; concurrent callers share one request to the key provider. */
  const generateOnce = (purpose: FieldPurpose): Promise<ActiveKey> => {
    let pending = generating.get(purpose);
    if (!pending) {
      pending = generate(purpose).finally(() => generating.delete(purpose));
      generating.set(purpose, pending);
    }
    return pending;
  };

  const encryptionKey = async (purpose: FieldPurpose): Promise<ActiveKey> => {
    for (;;) {
      const current = usable(purpose);
      if (current) {
        current.uses++;
        return current;
      }
      // Then take a use of the new key like everyone else (or make another if the waiters used it up).
      await generateOnce(purpose);
    }
  };

  const decryptionKey = async (purpose: FieldPurpose, encryptedKeyText: string, encryptedKey: Buffer) => {
    const cacheKey = `${purpose}.${encryptedKeyText}`;
    const cached = unwrapped.get(cacheKey);
    if (cached && now() - cached.cachedAt < policy.decryptMaxAgeMs) {
      // Most recently used now: move it to the end.
      unwrapped.delete(cacheKey);
      unwrapped.set(cacheKey, cached);
      return cached.dataKey;
    }
    let pending = unwrapping.get(cacheKey);
    if (!pending) {
      pending = provider
        .decryptDataKey(encryptedKey, purpose)
        .then((dataKey) => {
          remember(cacheKey, dataKey);
          return dataKey;
        })
        .finally(() => unwrapping.delete(cacheKey));
      unwrapping.set(cacheKey, pending);
    }
    return pending;
  };

  return {
    async ready(purpose) {
      if (!usable(purpose)) await generateOnce(purpose);
    },
    async encrypt(context, plaintext) {
      const key = await encryptionKey(context.purpose);
      return seal(key.dataKey, { keyRef: provider.keyRef, encryptedKeyText: key.encryptedKeyText }, context, plaintext);
    },
    async decrypt(context, stored) {
      const envelope = parseEnvelope(stored, context);
      if (envelope.keyRef !== provider.keyRef) {
        throw new DecryptionFailedError(
          `the encrypted ${describeField(context)} was written under the ${envelope.keyRef} key, and this process has the ${provider.keyRef} key`,
        );
      }
      const dataKey = await decryptionKey(context.purpose, envelope.encryptedKeyText, envelope.encryptedKey);
      return open(dataKey, envelope, context);
    },
  };
}

/**
 * A cipher built on first use: the stores hold one, so a process that never touches an encrypted
 * field (a token reader, a connect-link creator) never needs a key setting. Handlers that do need it
 * build the real one at init, so a missing setting fails there.
 */
export function lazyFieldCipher(make: () => FieldCipher): FieldCipher {
  let cipher: FieldCipher | undefined;
  const get = () => (cipher ??= make());
  return {
    encrypt: (context, plaintext) => get().encrypt(context, plaintext),
    decrypt: (context, stored) => get().decrypt(context, stored),
    ready: (purpose) => get().ready(purpose),
  };
}

/**
 * True when a stored value is (meant to be) an envelope. A value without the `v1.` prefix was stored
 * in plaintext before fields were encrypted: still read, and sealed on the next write, so nobody is
 * logged out by the upgrade.
 */
export function isSealed(stored: string): boolean {
  return stored.startsWith('v1.');
}

/**
 * Reads a stored field: opens an envelope; a legacy plaintext value is passed through, or refused
 * under the `refuse` policy (`FIELD_PLAINTEXT`).
 * @throws {DecryptionFailedError} | {KeyUnavailableError} as {@link FieldCipher.decrypt}
 * @throws {DecryptionFailedError} a plaintext value under `refuse` (its value is never in the message)
 */
export async function openField(
  cipher: FieldCipher,
  context: FieldContext,
  stored: string | undefined,
  plaintext: PlaintextFieldPolicy = 'accept',
): Promise<string | undefined> {
  if (stored === undefined) return undefined;
  if (isSealed(stored)) return cipher.decrypt(context, stored);
  if (plaintext === 'refuse') {
    throw new DecryptionFailedError(
      `the ${describeField(context)} is stored without encryption, and FIELD_PLAINTEXT is "refuse"`,
    );
  }
  return stored;
}

/** Seals a field for storage (undefined stays undefined: an absent attribute). */
export async function sealField(
  cipher: FieldCipher,
  context: FieldContext,
  plaintext: string | undefined,
): Promise<string | undefined> {
  return plaintext === undefined ? undefined : cipher.encrypt(context, plaintext);
}
