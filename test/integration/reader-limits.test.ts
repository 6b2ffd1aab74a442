/**
 * What readers can make the broker ask of the provider, against DynamoDB Local and the sandbox:
 * Kroger counts calls per endpoint and per day for the whole application, so no reader may spend
 * them for everyone.
 * - a forced refresh is honoured at most once per user per FORCE_REFRESH_MIN_INTERVAL_SECONDS,
 *   whichever process asks; within it the current token is returned;
 * - the margin is capped at half the token's lifetime, in the reader and in the refresh function;
 * - a token written after a read began satisfies that read whatever its lifetime, so short-lived
 *   tokens do not cost one refresh per waiting reader.
 */
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { readProviderConfig, type ProviderConfig } from '../../functions/core/config';
import { logEventPublisher } from '../../functions/adapters/events';
import { createProviderClient } from '../../functions/adapters/provider';
import type { TokenStore } from '../../functions/adapters/token-store';
import { handleRefreshRequest } from '../../functions/flows/refresh-function-flow';
import { createTokenRefresher, type RefreshDeps } from '../../functions/flows/single-flight-refresh';
import { runCli } from '../../functions/reader/cli';
import { createTokenReader } from '../../functions/reader/index';
import { startSandbox, type SandboxHandle } from '../../infra/local/sandbox/launch';
import { connectUser, brokerEnv } from '../support/connect';
import { captureLogger } from '../support/logs';
import { createTestStores, START_REAL_PARTS_TIMEOUT_MS, type TestStores } from '../support/stores';

const REDIRECT = 'http://localhost:3992/callback';
const SECRET = 'limits-secret';

let stores: TestStores;
let logs: ReturnType<typeof captureLogger>;

/** A sandbox and the provider settings pointing at it. */
async function sandboxWith(accessTokenTtlSeconds: number) {
  const sandbox = await startSandbox({
    clientId: 'limits-client',
    clientSecret: SECRET,
    redirectUris: [REDIRECT],
    accessTokenTtlSeconds,
  });
  const env = brokerEnv(sandbox, stores, REDIRECT);
  return { sandbox, env, provider: readProviderConfig(env) };
}

function refresherFor(provider: ProviderConfig, overrides: Partial<RefreshDeps> = {}) {
  return createTokenRefresher({
    tokens: stores.tokens,
    client: createProviderClient(provider, async () => SECRET),
    events: logEventPublisher(logs.logger),
    logger: logs.logger,
    ...overrides,
  });
}

/** Sets how many seconds the stored 30-minute access token has left (as if issued earlier). */
async function leaveSeconds(userId: string, seconds: number) {
  const expiresAt = Math.floor(Date.now() / 1000) + seconds;
  await stores.client.send(
    new UpdateItemCommand({
      TableName: stores.config.tokensTable,
      Key: { userId: { S: userId } },
      UpdateExpression: 'SET expiresAt = :at, tokensIssuedAt = :issued',
      ExpressionAttributeValues: { ':at': { N: String(expiresAt) }, ':issued': { N: String(expiresAt - 1800) } },
    }),
  );
}

beforeAll(async () => {
  stores = await createTestStores('limits');
});

afterAll(() => stores?.client.destroy());

beforeEach(() => {
  logs = captureLogger();
});

describe("With Kroger's 30-minute tokens", () => {
  let sandbox: SandboxHandle;
  let env: Record<string, string>;
  let provider: ProviderConfig;
  const refresher = (overrides: Partial<RefreshDeps> = {}) => refresherFor(provider, overrides);
  const connect = (login: string) => connectUser(login, { provider, secret: SECRET, stores, logger: logs.logger });

  beforeAll(async () => {
    ({ sandbox, env, provider } = await sandboxWith(1800));
  }, START_REAL_PARTS_TIMEOUT_MS);

  afterAll(async () => {
    await sandbox?.stop();
  });

  beforeEach(async () => {
    await sandbox.resetStats();
  });

  describe('forced refreshes', () => {
    it('honours one per user per interval, whichever process asks; within it, returns the current token', async () => {
      const login = await connect('l-force');
      await sandbox.resetStats();
      const at = (offsetSeconds: number) => () => Date.now() + offsetSeconds * 1000;
      // Two processes: they share only DynamoDB (tokensIssuedAt on the item).
      const a = (offset: number) => refresher({ owner: 'process-a', nowMs: at(offset) });
      const b = (offset: number) => refresher({ owner: 'process-b', nowMs: at(offset) });

      const justAfterLogin = await a(0).getAccessToken('l-force', { forceRefresh: true });
      const aMinuteLater = await a(61).getAccessToken('l-force', { forceRefresh: true });
      const otherProcessSameMoment = await b(61).getAccessToken('l-force', { forceRefresh: true });
      const otherProcessLater = await b(100).getAccessToken('l-force', { forceRefresh: true });
      const twoMinutesLater = await b(123).getAccessToken('l-force', { forceRefresh: true });

      expect(justAfterLogin.accessToken).toBe(login.accessToken);
      expect(aMinuteLater.accessToken).not.toBe(login.accessToken);
      expect(otherProcessSameMoment.accessToken).toBe(aMinuteLater.accessToken);
      expect(otherProcessLater.accessToken).toBe(aMinuteLater.accessToken);
      expect(twoMinutesLater.accessToken).not.toBe(aMinuteLater.accessToken);
      expect(await sandbox.stats()).toMatchObject({ refreshToken: 2 });
      expect(logs.text()).toContain('forced refresh not honoured');
    });

    it('makes a reader forcing refreshes through the refresh function cost one token request per interval', async () => {
      await connect('l-force-remote');
      await sandbox.resetStats();
      const broker = { refresher: refresher({ nowMs: () => Date.now() + 61_000 }), logger: logs.logger };
      const reader = createTokenReader({
        env: { DYNAMODB_ENDPOINT: env.DYNAMODB_ENDPOINT, TOKENS_TABLE: env.TOKENS_TABLE },
        invokeRefresh: (request) => handleRefreshRequest(request, broker),
      });

      const tokens = [];
      for (let i = 0; i < 20; i++) tokens.push(await reader.getAccessToken('l-force-remote', { forceRefresh: true }));

      expect(new Set(tokens.map((t) => t.accessToken)).size).toBe(1);
      expect(await sandbox.stats()).toMatchObject({ refreshToken: 1 });
    });

    it('`tokens refresh` says it did not refresh within the interval, and why', async () => {
      const login = await connect('l-force-cli');
      const out: string[] = [];
      const err: string[] = [];

      const code = await runCli(['refresh', 'l-force-cli'], env, { out: (l) => out.push(l), err: (l) => err.push(l) });

      expect(code).toBe(0);
      expect(JSON.parse(out[0])).toMatchObject({ userId: 'l-force-cli', refreshed: false, expiresAt: login.expiresAt });
      expect(err.join('\n')).toMatch(/not refreshed: .*FORCE_REFRESH_MIN_INTERVAL_SECONDS/);
      expect(await sandbox.stats()).toMatchObject({ refreshToken: 0 });
    });
  });

  describe('margins', () => {
    it.each([
      [3600, 800, 1],
      [1000, 950, 0],
    ])(
      'holds a margin of %i s to half the lifetime (900 s): with %i s left, %i refresh(es) in 10 reads',
      async (marginSeconds, secondsLeft, refreshes) => {
        const login = `l-margin-${marginSeconds}`;
        await connect(login);
        await leaveSeconds(login, secondsLeft);
        await sandbox.resetStats();
        const r = refresher();

        for (let i = 0; i < 10; i++) await r.getAccessToken(login, { marginSeconds });

        // Uncapped, a margin longer than the lifetime would make every read a refresh.
        expect(await sandbox.stats()).toMatchObject({ refreshToken: refreshes });
      },
    );

    it('caps the margin in the remote reader too: a fresh token is read without invoking the refresh function', async () => {
      const stored = await connect('l-margin-remote');
      const invoke = jest.fn();
      const reader = createTokenReader({
        env: { DYNAMODB_ENDPOINT: env.DYNAMODB_ENDPOINT, TOKENS_TABLE: env.TOKENS_TABLE },
        invokeRefresh: invoke,
      });

      const token = await reader.getAccessToken('l-margin-remote', { marginSeconds: 3600 });

      expect(token.accessToken).toBe(stored.accessToken);
      expect(invoke).not.toHaveBeenCalled();
    });
  });
});

describe('With short-lived tokens (8 s)', () => {
  let sandbox: SandboxHandle;
  let provider: ProviderConfig;

  beforeAll(async () => {
    ({ sandbox, provider } = await sandboxWith(8));
  }, START_REAL_PARTS_TIMEOUT_MS);

  afterAll(async () => {
    await sandbox?.stop();
  });

  it('lets a token written after a read began satisfy it, although it is already past the capped margin', async () => {
    const connect = (login: string) => connectUser(login, { provider, secret: SECRET, stores, logger: logs.logger });
    await connect('l-short');
    await leaveSeconds('l-short', -1);
    await sandbox.resetStats();
    let presented!: () => void;
    const holding = new Promise<void>((resolve) => (presented = resolve));
    // The holder stores its 8-s token 4.5 s after the provider issued it: the waiters then find a
    // token with less than half its lifetime left (the capped margin), but not yet expired.
    const slowStore = Object.assign(Object.create(stores.tokens) as TokenStore, {
      saveRefresh: async (input: Parameters<TokenStore['saveRefresh']>[0]) => {
        presented();
        await new Promise((resolve) => setTimeout(resolve, 4500));
        return stores.tokens.saveRefresh(input);
      },
    });
    const holder = refresherFor(provider, { owner: 'holder', tokens: slowStore }).getAccessToken('l-short');
    await holding;

    const waiters = await Promise.all(
      Array.from({ length: 5 }, (_, i) => refresherFor(provider, { owner: `waiter-${i}` }).getAccessToken('l-short')),
    );
    const first = await holder;

    expect(new Set(waiters.map((t) => t.accessToken))).toEqual(new Set([first.accessToken]));
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 1 });
  }, 30_000);
});
