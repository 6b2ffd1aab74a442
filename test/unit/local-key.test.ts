/**
 * The local key file and provider (adapters/local-key.ts), the field key settings (core/config.ts),
 * and where the composition root needs them: `npm start` and the tests encrypt through a key file
 * only its owner can read; the Lambda handlers fail at init without a key setting; token readers and
 * connect-link creators never need one.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { readFieldKeyConfig, readStoreConfig } from '../../functions/core/config';
import { ConfigError, DecryptionFailedError } from '../../functions/core/errors';
import { createFieldCipher } from '../../functions/adapters/field-cipher';
import { createKmsKeyProvider } from '../../functions/adapters/kms-key';
import { ensureLocalKeyFile, localKeyProvider, readLocalKeyFile } from '../../functions/adapters/local-key';
import {
  createCallbackHandler,
  createLoginHandler,
  createRefreshFunctionHandler,
  createScheduledRefresherHandler,
} from '../../functions/handlers';
import { createServices, fieldCipher, sessionStore, tokenStore } from '../../functions/services';

const dir = mkdtempSync(join(tmpdir(), 'local-key-test-'));
let n = 0;
const newPath = () => join(dir, `sub-${n++}`, 'field-key');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555';
const PROVIDER_ENV = {
  CLIENT_ID: 'client',
  CLIENT_SECRET: 'secret',
  OAUTH2_BASE_URL: 'https://api.kroger.com/v1/connect/oauth2',
  API_BASE_URL: 'https://api.kroger.com',
  REDIRECT_URL: 'https://broker.example.com/callback',
};

describe('Function: ensureLocalKeyFile', () => {
  it('creates a 256-bit key readable and writable by its owner only (mode 0600), in a 0700 directory', () => {
    const file = newPath();

    expect(ensureLocalKeyFile(file)).toBe(true);

    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(file, '..')).mode & 0o777).toBe(0o700);
    expect(readLocalKeyFile(file)).toHaveLength(32);
  });

  it('keeps an existing key: what was encrypted under it stays readable across runs', async () => {
    const file = newPath();
    ensureLocalKeyFile(file);
    const before = readFileSync(file, 'utf8');
    const stored = await createFieldCipher(localKeyProvider(readLocalKeyFile(file))).encrypt(
      { purpose: 'tokens', field: 'refreshToken', id: 'u1' },
      'kept',
    );

    expect(ensureLocalKeyFile(file)).toBe(false);

    expect(readFileSync(file, 'utf8')).toBe(before);
    await expect(
      createFieldCipher(localKeyProvider(readLocalKeyFile(file))).decrypt(
        { purpose: 'tokens', field: 'refreshToken', id: 'u1' },
        stored,
      ),
    ).resolves.toBe('kept');
  });

  it('refuses an existing key file other users may read', () => {
    const file = newPath();
    ensureLocalKeyFile(file);
    chmodSync(file, 0o644);
    expect(() => ensureLocalKeyFile(file)).toThrow(ConfigError);
  });
});

describe('Function: readLocalKeyFile', () => {
  it('refuses a key file others may read, saying how to fix it, without reading the key', () => {
    const file = newPath();
    ensureLocalKeyFile(file);
    chmodSync(file, 0o640);
    expect(() => readLocalKeyFile(file)).toThrow(`may be read by other users (mode 640): run chmod 600 "${file}"`);
  });

  it('names a missing file', () => {
    expect(() => readLocalKeyFile(join(dir, 'nowhere'))).toThrow(/FIELD_KEY_FILE ".*nowhere" does not exist/);
  });

  it('refuses a file that does not hold a 256-bit key', () => {
    const file = join(dir, 'short-key');
    writeFileSync(file, 'c2hvcnQ\n', { mode: 0o600 });
    expect(() => readLocalKeyFile(file)).toThrow(/does not hold a 256-bit key/);
  });
});

describe('Function: localKeyProvider', () => {
  it('unwraps its own data keys for the same purpose only', async () => {
    const file = newPath();
    ensureLocalKeyFile(file);
    const provider = localKeyProvider(readLocalKeyFile(file));
    const { plaintextKey, encryptedKey } = await provider.generateDataKey('sessions');

    expect((await provider.decryptDataKey(encryptedKey, 'sessions')).equals(plaintextKey)).toBe(true);
    await expect(provider.decryptDataKey(encryptedKey, 'tokens')).rejects.toThrow(DecryptionFailedError);
    await expect(provider.decryptDataKey(encryptedKey.subarray(1), 'sessions')).rejects.toThrow(/is malformed/);
  });
});

describe('Function: readFieldKeyConfig', () => {
  it('reads a KMS key ARN and the region it is in', () => {
    expect(readFieldKeyConfig({ FIELD_KEY_ARN: KEY_ARN })).toEqual({
      kind: 'kms',
      keyArn: KEY_ARN,
      region: 'eu-west-1',
    });
  });

  it('reads a local key file', () => {
    expect(readFieldKeyConfig({ FIELD_KEY_FILE: '/x/.local/field-key' })).toEqual({
      kind: 'local',
      file: '/x/.local/field-key',
    });
  });

  it.each([
    ['neither is set', {}, /FIELD_KEY_ARN environment variable is not set/],
    ['both are set', { FIELD_KEY_ARN: KEY_ARN, FIELD_KEY_FILE: '/k' }, /both set/],
    ['an alias instead of a key ARN', { FIELD_KEY_ARN: 'alias/broker' }, /must be a KMS key ARN/],
    [
      'an ARN of another service',
      { FIELD_KEY_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:x' },
      /must be a KMS key ARN/,
    ],
  ])('throws ConfigError when %s', (_case, env, message) => {
    expect(() => readFieldKeyConfig(env)).toThrow(ConfigError);
    expect(() => readFieldKeyConfig(env)).toThrow(message);
  });
});

describe('Function: readStoreConfig (DYNAMODB_LOCAL_ACCESS_KEY)', () => {
  it('reads the access key sent to DynamoDB Local', () => {
    expect(readStoreConfig({ DYNAMODB_LOCAL_ACCESS_KEY: 'abc123XYZ' }).localAccessKey).toBe('abc123XYZ');
  });

  it('refuses a key DynamoDB Local would refuse, without repeating the value', () => {
    expect(() => readStoreConfig({ DYNAMODB_LOCAL_ACCESS_KEY: 'not-a+key' })).toThrow(
      new ConfigError('DYNAMODB_LOCAL_ACCESS_KEY must be 1 to 128 letters and digits'),
    );
  });
});

describe('Function: fieldCipher (composition root)', () => {
  it.each([
    ['login', createLoginHandler],
    ['callback', createCallbackHandler],
    ['refresh function', createRefreshFunctionHandler],
    ['scheduled refresher', createScheduledRefresherHandler],
  ] as const)('fails creating the %s handler without a field key setting, naming it', (_name, create) => {
    expect(() => create(createServices(PROVIDER_ENV))).toThrow(/FIELD_KEY_ARN environment variable is not set/);
  });

  it('fails at init on a local key file others may read', () => {
    const file = newPath();
    ensureLocalKeyFile(file);
    chmodSync(file, 0o644);
    expect(() => createLoginHandler(createServices({ ...PROVIDER_ENV, FIELD_KEY_FILE: file }))).toThrow(
      /may be read by other users/,
    );
  });

  it('builds stores for a token reader and a link creator without any key setting', () => {
    const services = createServices({ TOKENS_TABLE: 'tokens', SESSIONS_TABLE: 'sessions' });
    expect(tokenStore(services)).toBe(tokenStore(services));
    expect(sessionStore(services)).toBe(sessionStore(services));
    expect(() => fieldCipher(services)).toThrow(ConfigError);
  });

  it('uses the KMS key when FIELD_KEY_ARN is set, calling KMS on first use only', async () => {
    const kms = mockClient(KMSClient);
    kms.on(GenerateDataKeyCommand).resolves({ Plaintext: new Uint8Array(32), CiphertextBlob: new Uint8Array(8) });
    try {
      const cipher = fieldCipher(createServices({ FIELD_KEY_ARN: KEY_ARN }), createKmsKeyProvider);
      expect(kms.calls()).toHaveLength(0);

      const stored = await cipher.encrypt({ purpose: 'tokens', field: 'refreshToken', id: 'u1' }, 'x');

      expect(stored).toMatch(/^v1\.kms\./);
      expect(kms.commandCalls(GenerateDataKeyCommand)[0].args[0].input.KeyId).toBe(KEY_ARN);
    } finally {
      kms.restore();
    }
  });
});
