/**
 * Lambda entry for the scheduled refresher (an EventBridge schedule, every 5 minutes by default).
 * Thin: wiring only; the run is in `flows/scheduled-refresh.ts`.
 */
import type { Context } from 'aws-lambda';
import { readIntSetting, readProviderConfig, readSecretConfig } from './core/config';
import { REFRESHER_SETTINGS, REFRESHER_STOP_BEFORE_TIMEOUT_MS } from './core/schema';
import { createEventPublisher } from './adapters/event-bus';
import { createProviderClient } from './adapters/provider';
import { createSecretSource } from './adapters/secret';
import { DynamoTokenStore } from './adapters/token-store';
import { createTokenRefresher } from './flows/refresh-flow';
import { runScheduledRefresh, type ScheduledRefreshReport } from './flows/scheduled-refresh';
import { dynamo, logger, storeConfig } from './runtime';

const setting = (name: keyof typeof REFRESHER_SETTINGS) => {
  const { default: fallback, min, max } = REFRESHER_SETTINGS[name];
  return readIntSetting(process.env, name, fallback, min, max);
};
const windowSeconds = setting('REFRESH_WINDOW_SECONDS');
const concurrency = setting('REFRESH_CONCURRENCY');
const tokens = new DynamoTokenStore(dynamo, storeConfig.tokensTable);
const refresher = createTokenRefresher({
  tokens,
  client: createProviderClient(readProviderConfig(process.env), createSecretSource(readSecretConfig(process.env))),
  events: createEventPublisher(process.env, logger),
  logger,
});

/**
 * Refreshes every user due within the window. Stops starting new users {@link REFRESHER_STOP_BEFORE_TIMEOUT_MS}
 * before the timeout: one user can take up to 12 s waiting for a reader's lease and 10 s at the provider, times retries.
 */
export const handler = async (_event: unknown, context?: Context): Promise<ScheduledRefreshReport> => {
  const remaining = context?.getRemainingTimeInMillis?.();
  return runScheduledRefresh(
    { tokens, refresher, logger },
    {
      windowSeconds,
      concurrency,
      deadlineMs: remaining === undefined ? undefined : Date.now() + remaining - REFRESHER_STOP_BEFORE_TIMEOUT_MS,
    },
  );
};
