/**
 * The envelope format (core/envelope.ts): a sealed field opens only with its data key, at the place
 * it was sealed for (purpose, attribute, item id), with every part as written.
 */
import { randomBytes } from 'node:crypto';
import {
  additionalData,
  type FieldContext,
  isEnvelope,
  open,
  parseEnvelope,
  seal,
} from '../../functions/core/envelope';
import { DecryptionFailedError } from '../../functions/core/errors';

const KEY = randomBytes(32);
const WRAPPED = { keyRef: 'kms' as const, encryptedKeyText: randomBytes(40).toString('base64url') };
const AT: FieldContext = { purpose: 'tokens', field: 'refreshToken', id: 'user-1' };
const SECRET = 'a-refresh-token-value';

const sealed = (context: FieldContext = AT, plaintext = SECRET) => seal(KEY, WRAPPED, context, plaintext);
const reopen = (stored: string, context: FieldContext = AT, key = KEY) =>
  open(key, parseEnvelope(stored, context), context);

/** `stored` with part `index` (0-based, of six) replaced. */
function withPart(stored: string, index: number, part: string): string {
  const parts = stored.split('.');
  parts[index] = part;
  return parts.join('.');
}

describe('Module: envelope', () => {
  describe('Function: seal', () => {
    it('writes v1.<key ref>.<wrapped key>.<iv>.<ciphertext>.<tag> without the plaintext in it', () => {
      const stored = sealed();
      const parts = stored.split('.');

      expect(parts).toHaveLength(6);
      expect(parts.slice(0, 3)).toEqual(['v1', 'kms', WRAPPED.encryptedKeyText]);
      expect(Buffer.from(parts[3], 'base64url')).toHaveLength(12);
      expect(Buffer.from(parts[5], 'base64url')).toHaveLength(16);
      expect(stored).not.toContain(SECRET);
      expect(Buffer.from(parts[4], 'base64url').toString('utf8')).not.toContain(SECRET);
      expect(isEnvelope(stored)).toBe(true);
    });

    it('uses a fresh IV each time: the same value sealed twice gives two different strings', () => {
      expect(sealed()).not.toBe(sealed());
    });

    it('refuses a data key that is not 256 bits', () => {
      expect(() => seal(randomBytes(16), WRAPPED, AT, SECRET)).toThrow(/32 bytes/);
    });
  });

  describe('Function: open', () => {
    it('returns the plaintext at the place it was sealed for', () => {
      expect(reopen(sealed())).toBe(SECRET);
      expect(reopen(sealed(AT, 'ünïcödé ✓'))).toBe('ünïcödé ✓');
    });

    it.each([
      ['another user', { ...AT, id: 'user-2' }],
      ['another attribute', { ...AT, field: 'accessToken' }],
      ['another table', { ...AT, purpose: 'sessions' as const }],
    ])('throws DecryptionFailedError for a ciphertext moved to %s', (_where, elsewhere) => {
      const stored = sealed();
      expect(() => reopen(stored, elsewhere)).toThrow(DecryptionFailedError);
      expect(() => reopen(stored, elsewhere)).toThrow(/does not decrypt: it was moved from another item or field/);
    });

    it('throws DecryptionFailedError under another data key', () => {
      expect(() => reopen(sealed(), AT, randomBytes(32))).toThrow(DecryptionFailedError);
    });

    it.each([
      ['the wrapped key', 2],
      ['the IV', 3],
      ['the ciphertext', 4],
      ['the tag', 5],
    ])('throws DecryptionFailedError when %s was altered', (_part, index) => {
      const stored = sealed();
      const original = Buffer.from(stored.split('.')[index], 'base64url');
      original[0] ^= 0x01;
      expect(() => reopen(withPart(stored, index, original.toString('base64url')))).toThrow(DecryptionFailedError);
    });

    it('throws DecryptionFailedError when the key ref was swapped (it is authenticated too)', () => {
      const stored = withPart(sealed(), 1, 'local');
      expect(() => reopen(stored)).toThrow(DecryptionFailedError);
    });

    it('names the field and the item in its message, never the value', () => {
      try {
        reopen(sealed(), { ...AT, id: 'user-2' });
        throw new Error('not thrown');
      } catch (error) {
        expect((error as DecryptionFailedError).code).toBe('DECRYPTION_FAILED');
        expect((error as Error).message).toContain('"refreshToken" of tokens item "user-2"');
        expect((error as Error).message).not.toContain(SECRET);
      }
    });
  });

  describe('Function: parseEnvelope', () => {
    it.each([
      ['a plaintext value', SECRET],
      ['another version', withPart(sealed(), 0, 'v2')],
      ['an unknown key ref', withPart(sealed(), 1, 'vault')],
      ['a missing part', sealed().split('.').slice(0, 5).join('.')],
      ['an IV of the wrong length', withPart(sealed(), 3, 'AAAA')],
      ['a truncated tag', withPart(sealed(), 5, 'AAAA')],
      ['a character outside base64url', withPart(sealed(), 4, 'a+b/')],
    ])('throws DecryptionFailedError ("malformed") for %s', (_what, stored) => {
      expect(() => parseEnvelope(stored, AT)).toThrow(DecryptionFailedError);
      expect(() => parseEnvelope(stored, AT)).toThrow(/is malformed/);
    });
  });

  describe('Function: additionalData', () => {
    it('is canonical JSON with sorted keys: the same place gives the same bytes whatever the key order', () => {
      const aad = additionalData('kms', 'EDK', { id: 'u', field: 'f', purpose: 'tokens' } as FieldContext);
      expect(aad.toString('utf8')).toBe(
        '{"edk":"EDK","field":"f","id":"u","keyRef":"kms","purpose":"tokens","v":"v1"}',
      );
    });

    it('keeps a quote or a dot in an id from colliding with another place', () => {
      const a = additionalData('kms', 'EDK', { purpose: 'tokens', field: 'refreshToken', id: 'a","field":"x' });
      const b = additionalData('kms', 'EDK', { purpose: 'tokens', field: 'x', id: 'a' });
      expect(a.equals(b)).toBe(false);
    });
  });
});
