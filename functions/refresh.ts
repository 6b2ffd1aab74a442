/**
 * Lambda entry for the refresh function: other services' readers invoke it (IAM-authorised) with
 * `{"userId": "...", "forceRefresh"?: true, "marginSeconds"?: 300}` when a stored token is too close
 * to expiry. It refreshes single-flight and answers `{ok, expiresAt}` or `{ok: false, code, message}`,
 * never a token: the reader re-reads the table, so tokens travel only where IAM lets them be read.
 */
import { readProviderConfig, readSecretConfig } from './core/config';
import { BrokerError } from './core/errors';
import { createEventPublisher } from './adapters/event-bus';
import { createProviderClient } from './adapters/provider';
import { createSecretSource } from './adapters/secret';
import { DynamoTokenStore } from './adapters/token-store';
import { createTokenRefresher } from './flows/refresh-flow';
import type { RefreshFunctionResult } from './reader/index';
import { dynamo, logger, storeConfig } from './runtime';

const refresher = createTokenRefresher({
  tokens: new DynamoTokenStore(dynamo, storeConfig.tokensTable),
  client: createProviderClient(readProviderConfig(process.env), createSecretSource(readSecretConfig(process.env))),
  events: createEventPublisher(process.env, logger),
  logger,
});

/** Refreshes one user's token if needed. */
export const handler = async (event: unknown): Promise<RefreshFunctionResult> => {
  const request = event as { userId?: unknown; forceRefresh?: unknown; marginSeconds?: unknown } | null;
  const userId = request?.userId;
  const margin = request?.marginSeconds;
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > 256) {
    return { ok: false, code: 'BAD_REQUEST', message: 'expected "userId" to be a string of 1 to 256 characters' };
  }
  if (margin !== undefined && (typeof margin !== 'number' || margin < 0 || margin > 3600)) {
    return { ok: false, code: 'BAD_REQUEST', message: 'expected "marginSeconds" to be a number from 0 to 3600' };
  }
  try {
    const token = await refresher.getAccessToken(userId, {
      forceRefresh: request?.forceRefresh === true,
      marginSeconds: margin as number | undefined,
    });
    return { ok: true, expiresAt: token.expiresAt };
  } catch (error) {
    if (error instanceof BrokerError) return { ok: false, code: error.code, message: error.message };
    logger.error('refresh failed unexpectedly', { userId, error });
    return { ok: false, code: 'INTERNAL', message: 'the refresh failed unexpectedly' };
  }
};
