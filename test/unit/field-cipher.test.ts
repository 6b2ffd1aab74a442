/**
 * The field cipher's data-key cache (adapters/field-cipher.ts), over the real local key provider with
 * its calls counted: the bounds on one data key's age and uses, the bounded LRU of unwrapped keys,
 * one provider call for concurrent requests, failures that do not stick, and the pass-through of
 * plaintext stored before encryption.
 */
import { randomBytes } from 'node:crypto';
import type { FieldContext, FieldPurpose } from '../../functions/core/envelope';
import { DecryptionFailedError, KeyUnavailableError } from '../../functions/core/errors';
import {
  createFieldCipher,
  type DataKeyProvider,
  lazyFieldCipher,
  openField,
  sealField,
} from '../../functions/adapters/field-cipher';
import { localKeyProvider } from '../../functions/adapters/local-key';

const at = (id: string, purpose: FieldPurpose = 'tokens'): FieldContext => ({ purpose, field: 'refreshToken', id });

/** The local provider with its calls counted, and a switch to make it fail. */
function counted(masterKey = randomBytes(32)) {
  const inner = localKeyProvider(masterKey);
  const calls = { generate: 0, decrypt: 0 };
  let failing: Error | undefined;
  const provider: DataKeyProvider = {
    keyRef: inner.keyRef,
    async generateDataKey(purpose) {
      calls.generate++;
      if (failing) throw failing;
      return inner.generateDataKey(purpose);
    },
    async decryptDataKey(encryptedKey, purpose) {
      calls.decrypt++;
      if (failing) throw failing;
      return inner.decryptDataKey(encryptedKey, purpose);
    },
  };
  return { provider, calls, fail: (error: Error | undefined) => (failing = error), masterKey };
}

/** The wrapped data key (third part) of an envelope. */
const dataKeyOf = (stored: string) => stored.split('.')[2];

describe('Function: createFieldCipher', () => {
  describe('encrypting', () => {
    it('uses one data key for many fields: 100 encrypts, 1 GenerateDataKey', async () => {
      const { provider, calls } = counted();
      const cipher = createFieldCipher(provider);

      const stored = await Promise.all(Array.from({ length: 100 }, (_, i) => cipher.encrypt(at(`u${i}`), `t${i}`)));

      expect(calls.generate).toBe(1);
      expect(new Set(stored.map(dataKeyOf)).size).toBe(1);
    });

    it('makes a new data key after encryptMaxUses fields', async () => {
      const { provider, calls } = counted();
      const cipher = createFieldCipher(provider, { policy: { encryptMaxUses: 3 } });

      const stored: string[] = [];
      for (let i = 0; i < 7; i++) stored.push(await cipher.encrypt(at(`u${i}`), 'x'));

      expect(calls.generate).toBe(3);
      expect(stored.map(dataKeyOf).map((k) => stored.map(dataKeyOf).indexOf(k))).toEqual([0, 0, 0, 3, 3, 3, 6]);
    });

    it('makes a new data key once the current one is encryptMaxAgeMs old', async () => {
      const { provider, calls } = counted();
      let now = 0;
      const cipher = createFieldCipher(provider, { policy: { encryptMaxAgeMs: 1000 }, now: () => now });

      const first = await cipher.encrypt(at('u1'), 'x');
      now = 999;
      const second = await cipher.encrypt(at('u2'), 'x');
      now = 1000;
      const third = await cipher.encrypt(at('u3'), 'x');

      expect(calls.generate).toBe(2);
      expect(dataKeyOf(second)).toBe(dataKeyOf(first));
      expect(dataKeyOf(third)).not.toBe(dataKeyOf(first));
    });

    it('keeps one data key per purpose: a tokens key never seals a sessions field', async () => {
      const { provider, calls } = counted();
      const cipher = createFieldCipher(provider);

      const token = await cipher.encrypt(at('u1', 'tokens'), 'x');
      const verifier = await cipher.encrypt(at('attempt#s', 'sessions'), 'y');

      expect(calls.generate).toBe(2);
      expect(dataKeyOf(token)).not.toBe(dataKeyOf(verifier));
    });

    it('does not cache a failure: after KMS recovers the next encrypt works', async () => {
      const { provider, calls, fail } = counted();
      const cipher = createFieldCipher(provider);
      fail(new KeyUnavailableError('kms:GenerateDataKey for "tokens" failed (ThrottlingException)'));

      await expect(cipher.encrypt(at('u1'), 'x')).rejects.toThrow(KeyUnavailableError);
      fail(undefined);
      const stored = await cipher.encrypt(at('u1'), 'x');

      expect(await cipher.decrypt(at('u1'), stored)).toBe('x');
      expect(calls.generate).toBe(2);
    });
  });

  describe('decrypting', () => {
    it('reads back its own writes without unwrapping the data key', async () => {
      const { provider, calls } = counted();
      const cipher = createFieldCipher(provider);

      const stored = await cipher.encrypt(at('u1'), 'secret-1');

      expect(await cipher.decrypt(at('u1'), stored)).toBe('secret-1');
      expect(calls.decrypt).toBe(0);
    });

    it("unwraps another process's data key once for all the fields sealed under it", async () => {
      const writer = counted();
      const readerCalls = counted(writer.masterKey);
      const write = createFieldCipher(writer.provider);
      const read = createFieldCipher(readerCalls.provider);
      const stored = await Promise.all(Array.from({ length: 50 }, (_, i) => write.encrypt(at(`u${i}`), `t${i}`)));

      const values = await Promise.all(stored.map((value, i) => read.decrypt(at(`u${i}`), value)));

      expect(values).toEqual(Array.from({ length: 50 }, (_, i) => `t${i}`));
      expect(readerCalls.calls.decrypt).toBe(1);
    });

    it('unwraps a data key again once it was cached decryptMaxAgeMs ago', async () => {
      const writer = counted();
      const reader = counted(writer.masterKey);
      let now = 0;
      const read = createFieldCipher(reader.provider, { policy: { decryptMaxAgeMs: 1000 }, now: () => now });
      const stored = await createFieldCipher(writer.provider).encrypt(at('u1'), 'x');

      await read.decrypt(at('u1'), stored);
      now = 999;
      await read.decrypt(at('u1'), stored);
      now = 1000;
      await read.decrypt(at('u1'), stored);

      expect(reader.calls.decrypt).toBe(2);
    });

    it('keeps at most decryptMaxEntries data keys, dropping the least recently used', async () => {
      const writer = counted();
      const reader = counted(writer.masterKey);
      const read = createFieldCipher(reader.provider, { policy: { decryptMaxEntries: 2 } });
      // Three fields under three data keys (one use per key).
      const write = createFieldCipher(writer.provider, { policy: { encryptMaxUses: 1 } });
      const [a, b, c] = [
        await write.encrypt(at('a'), 'A'),
        await write.encrypt(at('b'), 'B'),
        await write.encrypt(at('c'), 'C'),
      ];

      await read.decrypt(at('a'), a); // unwrap a
      await read.decrypt(at('b'), b); // unwrap b
      await read.decrypt(at('a'), a); // a is now the most recent
      await read.decrypt(at('c'), c); // unwrap c, drops b
      await read.decrypt(at('a'), a); // still cached
      await read.decrypt(at('b'), b); // unwrapped again

      expect(reader.calls.decrypt).toBe(4);
    });

    it('does not cache a failure: a KMS outage fails the read, the next read after it works', async () => {
      const writer = counted();
      const reader = counted(writer.masterKey);
      const read = createFieldCipher(reader.provider);
      const stored = await createFieldCipher(writer.provider).encrypt(at('u1'), 'x');
      reader.fail(new KeyUnavailableError('kms:Decrypt for "tokens" failed (ThrottlingException)'));

      await expect(read.decrypt(at('u1'), stored)).rejects.toThrow(KeyUnavailableError);
      reader.fail(undefined);

      await expect(read.decrypt(at('u1'), stored)).resolves.toBe('x');
    });

    it('throws DecryptionFailedError for a field moved to another item, without unwrapping anything new', async () => {
      const { provider, calls } = counted();
      const cipher = createFieldCipher(provider);
      const stored = await cipher.encrypt(at('victim'), 'secret');

      await expect(cipher.decrypt(at('attacker'), stored)).rejects.toThrow(DecryptionFailedError);
      expect(calls.decrypt).toBe(0);
    });

    it('throws DecryptionFailedError for a field sealed under another key file', async () => {
      const stored = await createFieldCipher(counted().provider).encrypt(at('u1'), 'x');
      await expect(createFieldCipher(counted().provider).decrypt(at('u1'), stored)).rejects.toThrow(
        /was not wrapped by this local key file/,
      );
    });

    it('refuses an envelope written under another kind of key (kms) before asking any provider', async () => {
      const { provider, calls } = counted();
      const stored = (await createFieldCipher(provider).encrypt(at('u1'), 'x')).replace(/^v1\.local\./, 'v1.kms.');

      await expect(createFieldCipher(provider).decrypt(at('u1'), stored)).rejects.toThrow(
        /written under the kms key, and this process has the local key/,
      );
      expect(calls.decrypt).toBe(0);
    });
  });
});

describe('Function: openField', () => {
  it('passes a plaintext value stored before encryption through, without any key', async () => {
    const { provider, calls } = counted();
    await expect(openField(createFieldCipher(provider), at('u1'), 'legacy-refresh-token')).resolves.toBe(
      'legacy-refresh-token',
    );
    expect(calls).toEqual({ generate: 0, decrypt: 0 });
  });

  it('opens an envelope and keeps an absent attribute absent', async () => {
    const cipher = createFieldCipher(counted().provider);
    const stored = await sealField(cipher, at('u1'), 'x');
    await expect(openField(cipher, at('u1'), stored)).resolves.toBe('x');
    await expect(sealField(cipher, at('u1'), undefined)).resolves.toBeUndefined();
    await expect(openField(cipher, at('u1'), undefined)).resolves.toBeUndefined();
  });

  it('treats a damaged envelope as an envelope (DecryptionFailedError), never as a plaintext token', async () => {
    const cipher = createFieldCipher(counted().provider);
    await expect(openField(cipher, at('u1'), 'v1.local.broken')).rejects.toThrow(DecryptionFailedError);
  });

  it('refuses a plaintext value under "refuse", naming the field but not its value, without any key', async () => {
    const { provider, calls } = counted();
    const read = openField(createFieldCipher(provider), at('u1'), 'planted-refresh-token', 'refuse');

    await expect(read).rejects.toThrow(DecryptionFailedError);
    await expect(read).rejects.toThrow(
      /^the "refreshToken" of tokens item "u1" is stored without encryption, and FIELD_PLAINTEXT is "refuse"$/,
    );
    expect(calls).toEqual({ generate: 0, decrypt: 0 });
  });

  it('still opens an envelope and keeps an absent attribute absent under "refuse"', async () => {
    const cipher = createFieldCipher(counted().provider);
    const stored = await sealField(cipher, at('u1'), 'x');
    await expect(openField(cipher, at('u1'), stored, 'refuse')).resolves.toBe('x');
    await expect(openField(cipher, at('u1'), undefined, 'refuse')).resolves.toBeUndefined();
  });
});

describe('Function: lazyFieldCipher', () => {
  it('builds the cipher on first use only: a process that never encrypts never needs a key', async () => {
    const make = jest.fn(() => createFieldCipher(counted().provider));
    const cipher = lazyFieldCipher(make);
    expect(make).not.toHaveBeenCalled();

    const stored = await cipher.encrypt(at('u1'), 'x');
    await cipher.decrypt(at('u1'), stored);

    expect(make).toHaveBeenCalledTimes(1);
  });
});
