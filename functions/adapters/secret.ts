/**
 * The client secret, from Secrets Manager in AWS (cached per execution environment) or from
 * `CLIENT_SECRET` locally. The value never enters an environment variable in AWS, a log or a result.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SecretConfig } from '../core/config';
import { SECRET_CALL_BUDGET_MS } from '../core/budget';
import { SecretUnavailableError } from '../core/errors';
import { AWS_CLIENT_LIMITS, callAws } from './aws-call';

/** Returns the current client secret. */
export type SecretSource = () => Promise<string>;

/** How long a fetched secret is reused: long enough to spare calls, short enough for rotation. */
export const SECRET_CACHE_MS = 5 * 60 * 1000;

/**
 * Creates a cached secret source. Concurrent callers share one in-flight request; a failed fetch is
 * not cached, so the next call tries again.
 * @param client injectable for tests; created once per container otherwise
 */
export function createSecretSource(
  config: SecretConfig,
  options: { client?: SecretsManagerClient; cacheMs?: number; now?: () => number } = {},
): SecretSource {
  if (config.kind === 'static') {
    const value = config.value;
    return async () => value;
  }
  const client = options.client ?? new SecretsManagerClient(AWS_CLIENT_LIMITS);
  const cacheMs = options.cacheMs ?? SECRET_CACHE_MS;
  const now = options.now ?? Date.now;
  let cached: { value: string; until: number } | undefined;
  let inflight: Promise<string> | undefined;

  const fetchSecret = async (): Promise<string> => {
    let value: string | undefined;
    try {
      const out = await callAws(
        SECRET_CALL_BUDGET_MS,
        (options) => client.send(new GetSecretValueCommand({ SecretId: config.secretId }), options),
        (fault, cause) =>
          new SecretUnavailableError(
            `could not read the client secret: Secrets Manager is ${fault.throttled ? 'throttling' : 'unavailable'} (${fault.name}); try again`,
            { cause, retryable: true, retryAfterSeconds: fault.retryAfterSeconds },
          ),
      );
      value = out.SecretString;
    } catch (cause) {
      if (cause instanceof SecretUnavailableError) throw cause;
      // Missing, not granted, or a key it cannot be decrypted with: an operator must act.
      throw new SecretUnavailableError(
        `could not read the client secret from Secrets Manager (${cause instanceof Error ? cause.name : 'unknown error'})`,
        { cause },
      );
    }
    if (!value || !value.trim()) {
      throw new SecretUnavailableError(
        'the client secret in Secrets Manager is empty: store it with "aws secretsmanager put-secret-value"',
      );
    }
    cached = { value: value.trim(), until: now() + cacheMs };
    return cached.value;
  };

  return async () => {
    if (cached && cached.until > now()) return cached.value;
    inflight ??= fetchSecret().finally(() => {
      inflight = undefined;
    });
    return inflight;
  };
}
