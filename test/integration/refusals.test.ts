/**
 * Every way a provider refuses, through the real refresh path (the single-flight refresher, the
 * scheduled sweep, the refresh function, the callback) against DynamoDB Local and the sandbox
 * taught to refuse as Kroger and strict servers do (infra/local/sandbox/refusals.mts):
 * - a dead grant, whatever the shape of its refusal, ends `reauth_required` within two attempts,
 *   with the provider's reason recorded, and is never tried again;
 * - a refused client keeps every grant untouched, alarms, and recovers once the client is accepted;
 * - many grants refused the same way in a short window are held, not expired;
 * - an answer that is not a token response never puts its bytes into the logs.
 */
import type { ProviderConfig } from '../../functions/core/config';
import {
  ClientCredentialsRejectedError,
  ProviderUnavailableError,
  ReauthRequiredError,
} from '../../functions/core/errors';
import { logEventPublisher } from '../../functions/adapters/events';
import { createProviderClient } from '../../functions/adapters/provider';
import { DynamoRefusalCounter } from '../../functions/adapters/refusal-counter';
import { handleLogin } from '../../functions/flows/login-flow';
import { handleRefreshRequest } from '../../functions/flows/refresh-function-flow';
import { runRefreshSweep } from '../../functions/flows/refresh-sweep';
import { createTokenRefresher, type RefreshDeps } from '../../functions/flows/single-flight-refresh';
import { createTokenReader } from '../../functions/reader/index';
import type { GrantRefusal, RefusalMode, SandboxHandle } from '../../infra/local/sandbox/launch';
import { startSandbox } from '../../infra/local/sandbox/launch';
import { completeAuthorization } from '../../infra/local/sandbox/headless';
import { connectUser, sandboxProviderConfig } from '../support/connect';
import { visitCallback } from '../support/callback';
import { cookiePair, getEvent } from '../support/events';
import { captureLogger } from '../support/logs';
import { createTestStores, type TestStores, START_REAL_PARTS_TIMEOUT_MS } from '../support/stores';

const REDIRECT = 'http://localhost:3994/callback';
const SECRET = 'refusals-secret';

let sandbox: SandboxHandle;
let stores: TestStores;
let provider: ProviderConfig;
let logs: ReturnType<typeof captureLogger>;

function refresher(overrides: Partial<RefreshDeps> = {}) {
  return createTokenRefresher({
    tokens: stores.tokens,
    client: createProviderClient(provider, async () => SECRET),
    events: logEventPublisher(logs.logger),
    logger: logs.logger,
    refusals: new DynamoRefusalCounter(stores.client, stores.config.sessionsTable),
    refreshTimeoutMs: provider.refreshTimeoutMs,
    ...overrides,
  });
}

const connect = (login: string) => connectUser(login, { provider, secret: SECRET, stores, logger: logs.logger });

/** One scheduled run at `offsetSeconds` from now: far enough ahead, the users' tokens are due. */
function sweep(offsetSeconds: number, overrides: Partial<RefreshDeps> = {}) {
  const nowMs = () => Date.now() + offsetSeconds * 1000;
  return runRefreshSweep(
    { tokens: stores.tokens, refresher: refresher({ nowMs, ...overrides }), logger: logs.logger, nowMs },
    { windowSeconds: 600, concurrency: 1 },
  );
}

/** Makes the stored access token look expired, so a read must refresh it. */
async function expire(userId: string) {
  const { UpdateItemCommand } = await import('@aws-sdk/client-dynamodb');
  await stores.client.send(
    new UpdateItemCommand({
      TableName: stores.config.tokensTable,
      Key: { userId: { S: userId } },
      UpdateExpression: 'SET expiresAt = :past',
      ExpressionAttributeValues: { ':past': { N: String(Math.floor(Date.now() / 1000) - 10) } },
    }),
  );
}

const tokenCalls = async () => (await sandbox.stats()).refreshToken;

/** The metric lines (CloudWatch EMF) carrying `name`. */
const metricLines = (name: string) =>
  logs.lines.map((line) => JSON.parse(line)).filter((entry) => entry._aws && entry[name] === 1);

beforeAll(async () => {
  sandbox = await startSandbox({ clientId: 'refusals-client', clientSecret: SECRET, redirectUris: [REDIRECT] });
  provider = sandboxProviderConfig(sandbox, REDIRECT, { PROVIDER_TIMEOUT_MS: '1000', REFRESH_TIMEOUT_MS: '1500' });
}, START_REAL_PARTS_TIMEOUT_MS);

afterAll(async () => {
  await sandbox?.stop();
});

beforeEach(async () => {
  // Fresh tables per test: the sweeps see only this test's users, the counters start at zero.
  stores = await createTestStores('refusals');
  logs = captureLogger();
  await sandbox.refuseToken('none');
  await sandbox.failToken('none');
  await sandbox.resetStats();
});

afterEach(() => stores.client.destroy());

describe('A dead grant, whatever the shape of the refusal', () => {
  it.each<[GrantRefusal, number, RegExp]>([
    ['invalid-grant', 1, /^invalid_grant: /],
    ['kroger-invalid-request', 1, /^invalid_request: Missing\/Invalid Refresh Token$/],
    ['kroger-errors-shape', 1, /^AUTH-1007-400: Missing\/Invalid Refresh Token$/],
    ['bare-400', 2, /^http_400 \(no body\)$/],
  ])(
    'refused as %s ends reauth_required after %i scheduled attempt(s), with the reason, and is never tried again',
    async (refusal, attempts, reason) => {
      const login = `dead-${refusal}`;
      await connect(login);
      await sandbox.revokeAccount(login, { refusal });
      await sandbox.resetStats();

      // 1300 s on, the 30-minute token is due; an unconfirmed refusal pushes the user back a minute.
      const first = await sweep(1300);
      const second = await sweep(3600);
      const third = await sweep(7200);

      const record = (await stores.tokens.get(login))!;
      expect(record).toMatchObject({ status: 'reauth_required', statusReason: expect.stringMatching(reason) });
      expect(record.nextRefreshAt).toBeUndefined();
      expect(await tokenCalls()).toBe(attempts);
      expect([first.reauth, second.reauth]).toEqual(attempts === 1 ? [1, 0] : [0, 1]);
      expect(third).toMatchObject({ due: 0, failed: 0, reauth: 0 });
      const events = logs.lines.filter((line) => line.includes('"token.reauth_required"'));
      expect(events).toHaveLength(1);
      expect(JSON.parse(events[0]).detail.reason).toMatch(reason);
    },
  );

  it.each<[GrantRefusal, number]>([
    ['kroger-errors-shape', 1],
    ['bare-400', 2],
  ])(
    'refused as %s, a reader learns it within %i reads, and no read after that calls the provider',
    async (refusal, reads) => {
      const login = `dead-read-${refusal}`;
      await connect(login);
      await sandbox.revokeAccount(login, { refusal });
      await expire(login);
      await sandbox.resetStats();
      const r = refresher();

      const outcomes: string[] = [];
      for (let i = 0; i < 4; i++) {
        outcomes.push(
          await r.getAccessToken(login).then(
            () => 'ok',
            (e: Error) => e.name,
          ),
        );
      }

      expect(outcomes).toEqual(
        reads === 1
          ? Array(4).fill('ReauthRequiredError')
          : ['ProviderUnavailableError', 'ReauthRequiredError', 'ReauthRequiredError', 'ReauthRequiredError'],
      );
      expect(await tokenCalls()).toBe(reads);
      const { statusReason } = (await stores.tokens.get(login))!;
      await expect(r.getAccessToken(login)).rejects.toMatchObject({ reason: statusReason });
    },
  );

  it('takes a bare 400 that the next attempt does not repeat for a fault on the way: the grant is kept', async () => {
    const before = await connect('glitch');
    await expire('glitch');
    await sandbox.refuseToken('bare-400', { count: 1, grantType: 'refresh_token' });
    const r = refresher();

    await expect(r.getAccessToken('glitch')).rejects.toBeInstanceOf(ProviderUnavailableError);
    expect(await stores.tokens.get('glitch')).toMatchObject({
      status: 'active',
      lastRefreshError: 'refused_unconfirmed: http_400 (no body)',
    });
    const token = await r.getAccessToken('glitch');

    expect(token.accessToken).not.toBe(before.accessToken);
    expect(await stores.tokens.get('glitch')).toMatchObject({ status: 'active', consecutiveFailures: 0 });
    expect((await stores.tokens.get('glitch'))!.lastRefreshError).toBeUndefined();
  });
});

describe('A refused client (invalid_client)', () => {
  it.each<RefusalMode>(['invalid-client', 'invalid-client-no-challenge'])(
    'refused as %s: keeps every grant as it was, stops the run, tells readers the operator must act, alarms',
    async (mode) => {
      const users = ['c-1', 'c-2', 'c-3'];
      for (const login of users) await connect(login);
      const before = await Promise.all(users.map(async (u) => (await stores.tokens.get(u))!));
      await sandbox.refuseToken(mode);
      await sandbox.resetStats();

      const report = await sweep(1300);
      await expire('c-1');
      const read = await refresher()
        .getAccessToken('c-1')
        .catch((e: unknown) => e);
      const viaFunction = await handleRefreshRequest(
        { userId: 'c-2', forceRefresh: true },
        { refresher: refresher({ forceRefreshMinIntervalSeconds: 0 }), logger: logs.logger },
      );

      // One refusal per run is enough to know: the others were not tried.
      expect(report).toMatchObject({ due: 3, failed: 1, skipped: 2, reauth: 0 });
      expect(await tokenCalls()).toBe(3); // the run's one, the reader's, the refresh function's
      for (const [i, login] of users.entries()) {
        const after = (await stores.tokens.get(login))!;
        expect(after).toMatchObject({
          status: 'active',
          refreshToken: before[i].refreshToken,
          version: before[i].version,
          consecutiveFailures: 0,
          nextRefreshAt: before[i].nextRefreshAt,
        });
        expect(after.leaseOwner).toBeUndefined();
        expect(after.lastRefreshError).toBeUndefined();
      }
      expect(read).toBeInstanceOf(ClientCredentialsRejectedError);
      expect((read as Error).message).toMatch(/operator must fix the client id or secret/);
      expect(viaFunction).toMatchObject({ ok: false, code: 'PROVIDER_CLIENT_REJECTED' });
      // A reader in another service maps the code back to the typed error.
      const remote = createTokenReader({
        env: { DYNAMODB_ENDPOINT: stores.config.endpoint, TOKENS_TABLE: stores.config.tokensTable },
        invokeRefresh: async () => viaFunction,
      });
      await expect(remote.getAccessToken('c-1')).rejects.toBeInstanceOf(ClientCredentialsRejectedError);
      // What ClientRejectedAlarm watches: one EMF count per refusal, namespace and dimension of the refresher.
      const metrics = metricLines('clientRejected');
      expect(metrics).toHaveLength(3);
      expect(metrics[0]._aws.CloudWatchMetrics).toEqual([
        {
          Namespace: 'KrogerTokenBroker',
          Dimensions: [['function']],
          Metrics: [{ Name: 'clientRejected', Unit: 'Count' }],
        },
      ]);
      expect(logs.lines.filter((line) => line.includes('"broker event"'))).toHaveLength(
        users.length, // token.connected only: no refresh_failed, no reauth_required
      );
    },
  );

  it('recovers by itself once the client is accepted again', async () => {
    const before = await connect('c-back');
    await sandbox.refuseToken('invalid-client');
    await expire('c-back');
    const r = refresher();
    await expect(r.getAccessToken('c-back')).rejects.toBeInstanceOf(ClientCredentialsRejectedError);

    await sandbox.refuseToken('none');
    const token = await r.getAccessToken('c-back');

    expect(token.accessToken).not.toBe(before.accessToken);
    expect(await stores.tokens.get('c-back')).toMatchObject({ status: 'active', version: before.version + 1 });
    expect(await sweep(1300)).toMatchObject({ failed: 0, skipped: 0 });
  });
});

describe('Many grants refused the same way (mass-refusal guard)', () => {
  it('marks at most the threshold per window, holds the rest (kept active) and alarms, across processes', async () => {
    const users = ['m-1', 'm-2', 'm-3', 'm-4'];
    for (const login of users) {
      await connect(login);
      await sandbox.revokeAccount(login, { refusal: 'kroger-invalid-request' });
      await expire(login);
    }
    const guard = { massRefusal: { threshold: 2, windowSeconds: 600 } };
    // Two processes: only DynamoDB is shared between them.
    const processA = refresher({ owner: 'process-a', ...guard });
    const processB = refresher({ owner: 'process-b', ...guard });

    const outcomes = [
      await processA.getAccessToken('m-1').catch((e: Error) => e.name),
      await processA.getAccessToken('m-2').catch((e: Error) => e.name),
      await processB.getAccessToken('m-3').catch((e: Error) => e),
      await processB.getAccessToken('m-4').catch((e: Error) => e),
    ];

    expect(outcomes.slice(0, 2)).toEqual(['ReauthRequiredError', 'ReauthRequiredError']);
    for (const held of outcomes.slice(2)) {
      expect(held).toBeInstanceOf(ProviderUnavailableError);
      expect((held as Error).message).toMatch(/an operator is alerted/);
    }
    for (const login of ['m-3', 'm-4']) {
      expect(await stores.tokens.get(login)).toMatchObject({
        status: 'active',
        lastRefreshError: 'refusal_held: invalid_request: Missing/Invalid Refresh Token',
      });
    }
    expect(metricLines('refusalsHeld')).toHaveLength(2);
    expect(logs.text()).toContain('"errorCode":"MASS_REFUSAL_HELD"');
  });

  it('counts each shape of refusal on its own, and lets a held grant go once the window has passed', async () => {
    for (const login of ['s-1', 's-2', 's-other']) await connect(login);
    await sandbox.revokeAccount('s-1', { refusal: 'kroger-errors-shape' });
    await sandbox.revokeAccount('s-2', { refusal: 'kroger-errors-shape' });
    await sandbox.revokeAccount('s-other', { refusal: 'invalid-grant' });
    for (const login of ['s-1', 's-2', 's-other']) await expire(login);
    const guard = { massRefusal: { threshold: 1, windowSeconds: 600 } };

    await expect(refresher(guard).getAccessToken('s-1')).rejects.toBeInstanceOf(ReauthRequiredError);
    await expect(refresher(guard).getAccessToken('s-2')).rejects.toBeInstanceOf(ProviderUnavailableError);
    await expect(refresher(guard).getAccessToken('s-other')).rejects.toBeInstanceOf(ReauthRequiredError);
    // Two windows later the surge is over: the held grant's next refusal marks it.
    const later = () => Date.now() + 1300 * 1000;
    await expect(refresher({ ...guard, nowMs: later }).getAccessToken('s-2')).rejects.toBeInstanceOf(
      ReauthRequiredError,
    );
    expect(await stores.tokens.get('s-2')).toMatchObject({ status: 'reauth_required' });
  });
});

describe('Answers that are not a token response', () => {
  it.each<[RefusalMode, string]>([
    ['non-json-form', 'bad_response'],
    ['non-json-html', 'bad_response'],
    ['oversized', 'bad_response'],
    ['stalled-body', 'unavailable'],
  ])('%s: the grant is kept, the outcome logged as unknown, no byte of the body in the logs', async (mode, reason) => {
    const before = await connect(`body-${mode}`);
    await expire(`body-${mode}`);
    const { canary } = await sandbox.refuseToken(mode, { count: 1, grantType: 'refresh_token' });
    const r = refresher();

    await expect(r.getAccessToken(`body-${mode}`)).rejects.toBeInstanceOf(ProviderUnavailableError);

    expect(await stores.tokens.get(`body-${mode}`)).toMatchObject({
      status: 'active',
      refreshToken: before.refreshToken,
      lastRefreshError: reason,
    });
    expect(logs.text()).toContain('"errorCode":"REFRESH_OUTCOME_UNKNOWN"');
    expect(canary).toMatch(/^[\w-]{43}$/);
    expect(logs.text()).not.toContain(canary!.slice(0, 10));
    // The sandbox used nothing up: the next refresh works with the same refresh token.
    await expect(r.getAccessToken(`body-${mode}`)).resolves.toMatchObject({ userId: `body-${mode}` });
  });
});

describe('Refusals at the callback (the browser-facing code exchange)', () => {
  /** A sign-in through the real login and callback handlers; returns the callback's answer. */
  async function signIn(login: string) {
    const deps = {
      provider,
      client: createProviderClient(provider, async () => SECRET),
      sessions: stores.sessions,
      tokens: stores.tokens,
      events: logEventPublisher(logs.logger),
      logger: logs.logger,
    };
    const started = await handleLogin(getEvent('/login'), { ...deps, flow: { returnToAllowlist: [] } });
    const back = await completeAuthorization(started.headers.location, { login });
    // The provider's redirect, and the clean result page the callback sends the browser to.
    return visitCallback(back.search.slice(1), [cookiePair(started.cookies?.[0])], deps);
  }

  it.each<[RefusalMode, number, RegExp]>([
    ['stalled-body', 503, /Kroger is not answering/],
    ['oversized', 502, /unexpected answer/],
    ['non-json-html', 502, /unexpected answer/],
    ['invalid-client', 502, /operator has to fix this/],
    ['kroger-invalid-request', 400, /already used, or took too long/],
  ])('%s answers %i with a plain page, stores nothing and shows no byte of the body', async (mode, status, page) => {
    const { canary } = await sandbox.refuseToken(mode, { count: 1, grantType: 'authorization_code' });

    const { first, page: result } = await signIn(`cb-${mode}`);

    expect(result.statusCode).toBe(status);
    expect(result.body).toMatch(page);
    expect(await stores.tokens.get(`cb-${mode}`)).toBeUndefined();
    if (canary) {
      expect(result.body).not.toContain(canary.slice(0, 10));
      expect(JSON.stringify(first)).not.toContain(canary.slice(0, 10));
      expect(logs.text()).not.toContain(canary.slice(0, 10));
    }
  });
});
