import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { createSecretSource } from '../../functions/adapters/secret';
import { SecretUnavailableError } from '../../functions/core/errors';

// Secrets Manager has no local twin: its adapter is tested against a mocked client.
const secretsManager = mockClient(SecretsManagerClient);

describe('Function: createSecretSource', () => {
  beforeEach(() => {
    secretsManager.reset();
  });

  it('returns the static secret for local runs without any AWS call', async () => {
    const source = createSecretSource({ kind: 'static', value: 'local-secret' });
    await expect(source()).resolves.toBe('local-secret');
    expect(secretsManager.calls()).toHaveLength(0);
  });

  it('reads the secret once and serves it from cache while fresh', async () => {
    secretsManager.on(GetSecretValueCommand, { SecretId: 'arn:secret' }).resolves({ SecretString: 's3cret' });
    let now = 0;
    const source = createSecretSource(
      { kind: 'secrets-manager', secretId: 'arn:secret' },
      { client: new SecretsManagerClient({}), cacheMs: 1000, now: () => now },
    );

    const values = await Promise.all([source(), source(), source()]);
    now = 999;
    await source();

    expect(values).toEqual(['s3cret', 's3cret', 's3cret']);
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it('reads it again once the cache expires, picking up a rotated value', async () => {
    secretsManager.on(GetSecretValueCommand).resolvesOnce({ SecretString: 'old' }).resolves({ SecretString: 'new' });
    let now = 0;
    const source = createSecretSource(
      { kind: 'secrets-manager', secretId: 'arn:secret' },
      { client: new SecretsManagerClient({}), cacheMs: 1000, now: () => now },
    );

    await expect(source()).resolves.toBe('old');
    now = 1001;
    await expect(source()).resolves.toBe('new');
  });

  it('throws SecretUnavailableError with a fix for an empty secret', async () => {
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: '  ' });
    const source = createSecretSource(
      { kind: 'secrets-manager', secretId: 'arn:secret' },
      { client: new SecretsManagerClient({}) },
    );

    await expect(source()).rejects.toThrow(/is empty: store it with "aws secretsmanager put-secret-value"/);
  });

  it('throws SecretUnavailableError when Secrets Manager fails, and does not cache the failure', async () => {
    secretsManager
      .on(GetSecretValueCommand)
      .rejectsOnce(new ResourceNotFoundException({ message: 'not found', $metadata: {} }))
      .resolves({ SecretString: 'later' });
    const source = createSecretSource(
      { kind: 'secrets-manager', secretId: 'arn:secret' },
      { client: new SecretsManagerClient({}) },
    );

    const error = await source().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SecretUnavailableError);
    expect((error as SecretUnavailableError).code).toBe('SECRET_UNAVAILABLE');
    await expect(source()).resolves.toBe('later');
  });
});
