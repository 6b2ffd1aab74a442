/**
 * Signs a user in through the real flow (login handler, the sandbox's own sign-in and consent forms,
 * callback handler) and returns what was stored: how the integration tests get a genuine grant.
 */
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { readProviderConfig, type ProviderConfig } from '../../functions/core/config';
import type { RefreshPolicy, TokenRecord } from '../../functions/core/tokens';
import { logEventPublisher } from '../../functions/adapters/events';
import type { Logger } from '../../functions/adapters/logger';
import { createProviderClient } from '../../functions/adapters/provider';
import { handleLogin } from '../../functions/flows/login-flow';
import { completeAuthorization } from '../../infra/local/sandbox/headless';
import type { SandboxHandle } from '../../infra/local/sandbox/launch';
import { visitCallback } from './callback';
import { cookiePair, getEvent } from './events';
import type { TestStores } from './stores';

/**
 * The environment a broker function (or the CLI, or `npm start`) reads, pointed at a test sandbox
 * (its client and secret) and a file's own tables and field key; `settings` adds or overrides
 * variables (timeouts, the issuer, the revocation URL...).
 */
export function brokerEnv(
  sandbox: SandboxHandle,
  stores: TestStores,
  redirectUrl: string,
  settings: Record<string, string> = {},
): Record<string, string> {
  return {
    CLIENT_ID: sandbox.clientId,
    CLIENT_SECRET: sandbox.clientSecret,
    OAUTH2_BASE_URL: sandbox.oauth2BaseUrl,
    API_BASE_URL: sandbox.apiBaseUrl,
    REDIRECT_URL: redirectUrl,
    DYNAMODB_ENDPOINT: stores.config.endpoint!,
    TOKENS_TABLE: stores.config.tokensTable,
    SESSIONS_TABLE: stores.config.sessionsTable,
    FIELD_KEY_FILE: stores.fieldKeyFile,
    ...settings,
  };
}

/**
 * The provider configuration for a test sandbox, as the broker reads it from its environment: the
 * sandbox's client, endpoints and issuer, short timeouts (`settings` adds or overrides variables).
 */
export function sandboxProviderConfig(
  sandbox: SandboxHandle,
  redirectUrl: string,
  settings: Record<string, string> = {},
): ProviderConfig {
  return readProviderConfig({
    CLIENT_ID: sandbox.clientId,
    OAUTH2_BASE_URL: sandbox.oauth2BaseUrl,
    API_BASE_URL: sandbox.apiBaseUrl,
    REDIRECT_URL: redirectUrl,
    OAUTH2_ISSUER: sandbox.issuer,
    PROVIDER_TIMEOUT_MS: '2000',
    ...settings,
  });
}

export async function connectUser(
  login: string,
  context: { provider: ProviderConfig; secret: string; stores: TestStores; logger: Logger; policy?: RefreshPolicy },
): Promise<TokenRecord> {
  const deps = {
    policy: context.policy,
    provider: context.provider,
    client: createProviderClient(context.provider, async () => context.secret),
    sessions: context.stores.sessions,
    tokens: context.stores.tokens,
    events: logEventPublisher(context.logger),
    logger: context.logger,
  };
  const started = await handleLogin(getEvent('/login'), { ...deps, flow: { returnToAllowlist: [] } });
  const back = await completeAuthorization(started.headers.location, { login });
  const { page } = await visitCallback(back.search.slice(1), [cookiePair(started.cookies?.[0])], deps);
  if (page.statusCode !== 200) throw new Error(`login of "${login}" ended with ${page.statusCode}`);
  const record = await context.stores.tokens.get(login);
  if (!record) throw new Error(`login of "${login}" stored nothing`);
  return record;
}

/**
 * Makes `userId`'s stored access token expired (its refresh token stays valid), written straight to
 * the table, so the next read must refresh.
 */
export async function expireAccessToken(stores: Pick<TestStores, 'client' | 'config'>, userId: string): Promise<void> {
  await stores.client.send(
    new UpdateItemCommand({
      TableName: stores.config.tokensTable,
      Key: { userId: { S: userId } },
      UpdateExpression: 'SET expiresAt = :past',
      ExpressionAttributeValues: { ':past': { N: String(Math.floor(Date.now() / 1000) - 1) } },
    }),
  );
}
