/**
 * The login and callback flows end to end against real parts: DynamoDB Local and the Kroger-shaped
 * sandbox provider (oidc-provider). Only the browser is stood in for, by walking the sandbox's
 * sign-in and consent forms with fetch.
 */
import { readProviderConfig, type ProviderConfig } from '../../functions/core/config';
import { logEventPublisher } from '../../functions/adapters/events';
import { createProviderClient } from '../../functions/adapters/provider';
import { DynamoSessionStore } from '../../functions/adapters/session-store';
import { DynamoTokenStore } from '../../functions/adapters/token-store';
import type { CallbackDeps } from '../../functions/flows/callback-flow';
import { handleLogin, type LoginDeps } from '../../functions/flows/login-flow';
import { completeAuthorization } from '../../infra/local/sandbox/headless';
import type { SandboxHandle } from '../../infra/local/sandbox/launch';
import { visitCallback } from '../support/callback';
import { cookiePair, getEvent } from '../support/events';
import { captureLogger } from '../support/logs';
import type { TestStores } from '../support/stores';
import { useFileStack } from '../support/file-stack';

const REDIRECT = 'http://localhost:3999/callback';

let sandbox: SandboxHandle;
let stores: TestStores;
let provider: ProviderConfig;
let logs: ReturnType<typeof captureLogger>;
let loginDeps: LoginDeps;
let callbackDeps: CallbackDeps;

function configFor(sb: SandboxHandle, overrides: Record<string, string> = {}): ProviderConfig {
  return readProviderConfig({
    CLIENT_ID: sb.clientId,
    OAUTH2_BASE_URL: sb.oauth2BaseUrl,
    API_BASE_URL: sb.apiBaseUrl,
    REDIRECT_URL: REDIRECT,
    OAUTH2_ISSUER: sb.issuer,
    PROVIDER_TIMEOUT_MS: '1500',
    ...overrides,
  });
}

function deps(secret = sandbox.clientSecret, config = provider): CallbackDeps {
  return {
    provider: config,
    client: createProviderClient(config, async () => secret),
    sessions: stores.sessions,
    tokens: stores.tokens,
    events: logEventPublisher(logs.logger),
    logger: logs.logger,
  };
}

/** /login, then sign in and consent at the sandbox: returns the callback query and the cookie. */
async function startAndAuthorize(login: string, options: { approve?: boolean; query?: string } = {}) {
  const started = await handleLogin(getEvent('/login', options.query ?? ''), loginDeps);
  expect(started.statusCode).toBe(302);
  const back = await completeAuthorization(started.headers.location, { login, approve: options.approve ?? true });
  expect(back.origin + back.pathname).toBe(REDIRECT);
  return {
    query: back.search.slice(1),
    cookie: cookiePair(started.cookies?.[0]),
    state: back.searchParams.get('state')!,
  };
}

const stack = useFileStack('flow', {
  clientId: 'flow-client',
  clientSecret: 'flow-secret-+/=',
  redirectUris: [REDIRECT],
});

beforeAll(() => {
  ({ sandbox, stores } = stack);
  provider = configFor(sandbox);
});

beforeEach(async () => {
  logs = captureLogger();
  loginDeps = {
    provider,
    flow: { returnToAllowlist: ['https://app.example.com/done'] },
    sessions: stores.sessions,
    logger: logs.logger,
  };
  callbackDeps = deps();
  await sandbox.failToken('none');
  await sandbox.resetStats();
});

describe('Flow: login and callback', () => {
  it('stores the tokens under the Kroger profile id and shows "connected" without any token', async () => {
    const { query, cookie } = await startAndAuthorize('profile-happy');

    const { first, page: result } = await visitCallback(query, [cookie], callbackDeps);

    expect(first.statusCode).toBe(303);
    expect(result.statusCode).toBe(200);
    expect(result.body).toMatch(/connected/i);
    const record = await stores.tokens.get('profile-happy');
    expect(record).toMatchObject({ profileId: 'profile-happy', status: 'active', tokenType: 'bearer', version: 1 });
    expect(record!.scope.split(' ')).toEqual(expect.arrayContaining(['profile.compact']));
    expect(record!.expiresAt).toBeGreaterThan(Date.now() / 1000 + 1700);
    expect(result.body).not.toContain(record!.accessToken);
    expect(JSON.stringify([first, result])).not.toContain(record!.refreshToken);
    expect(JSON.stringify([first, result])).not.toContain(record!.accessToken);
    expect(first.cookies?.[0]).toMatch(/^kroger_broker_login_[\w-]{16}=; Path=\/callback; Max-Age=0/);
    expect(first.cookies?.[0]?.split('=')[0]).toBe(cookie.split('=')[0]);
    expect(await sandbox.stats()).toMatchObject({ authorizationCode: 1 });
    expect(logs.text()).not.toContain(record!.accessToken);
    expect(logs.text()).not.toContain(record!.refreshToken);
    expect(logs.text()).not.toContain(new URLSearchParams(query).get('code')!);
  });

  it('refuses a replayed callback with a 4xx and makes no second token request', async () => {
    const { query, cookie } = await startAndAuthorize('profile-replay');
    expect((await visitCallback(query, [cookie], callbackDeps)).page.statusCode).toBe(200);

    const { page: replay } = await visitCallback(query, [cookie], callbackDeps);

    expect(replay.statusCode).toBe(400);
    expect(replay.body).toMatch(/already used/);
    expect(await sandbox.stats()).toMatchObject({ authorizationCode: 1 });
  });

  it("refuses a callback from another browser without burning the real browser's attempt", async () => {
    const { query, cookie } = await startAndAuthorize('profile-foreign');
    const other = await handleLogin(getEvent('/login'), loginDeps);

    const { page: foreign } = await visitCallback(query, [cookiePair(other.cookies?.[0])], callbackDeps);
    const { page: noCookie } = await visitCallback(query, undefined, callbackDeps);

    expect(foreign.statusCode).toBe(400);
    expect(foreign.body).toMatch(/different browser/);
    expect(logs.text()).toContain('"errorCode":"CALLBACK_BROWSER_MISMATCH"');
    expect(noCookie.statusCode).toBe(400);
    expect(noCookie.body).toMatch(/cookies blocked/);
    expect(await sandbox.stats()).toMatchObject({ authorizationCode: 0 });
    expect(await stores.tokens.get('profile-foreign')).toBeUndefined();
    // The person who started the login can still finish it.
    expect((await visitCallback(query, [cookie], callbackDeps)).page.statusCode).toBe(200);
  });

  it('lets two sign-ins started in two tabs of one browser both finish', async () => {
    const first = await startAndAuthorize('profile-tab-1');
    const second = await startAndAuthorize('profile-tab-2');
    const jar = [first.cookie, second.cookie];

    const results = [
      (await visitCallback(first.query, jar, callbackDeps)).page,
      (await visitCallback(second.query, jar, callbackDeps)).page,
    ];

    expect(results.map((r) => r.statusCode)).toEqual([200, 200]);
    expect(first.cookie.split('=')[0]).not.toBe(second.cookie.split('=')[0]);
  });

  it('refuses an unknown (forged) state with a 4xx and no token request', async () => {
    const { query, cookie } = await startAndAuthorize('profile-forged');
    const forged = new URLSearchParams(query);
    forged.set('state', 'forged-state-value');

    const { page: result } = await visitCallback(forged.toString(), [cookie], callbackDeps);

    expect(result.statusCode).toBe(400);
    expect(result.body).toMatch(/expired or was already used/);
    expect(await sandbox.stats()).toMatchObject({ authorizationCode: 0 });
  });

  it.each([
    ['no state', 'code=abc', 400, 'CALLBACK_MISSING_PARAMETERS'],
    ['an oversized code', `state=x&code=${'c'.repeat(2049)}`, 400, 'CALLBACK_INPUT_TOO_LARGE'],
    ['an oversized query', `state=x&code=${'c'.repeat(5000)}`, 414, 'CALLBACK_INPUT_TOO_LARGE'],
  ])(
    'refuses a callback with %s before any I/O: no DynamoDB request, no provider request',
    async (_n, query, status, code) => {
      const io = { dynamo: 0, provider: 0 };
      const dynamo = Object.create(stores.client) as typeof stores.client;
      dynamo.send = ((command: never) => {
        io.dynamo++;
        return stores.client.send(command);
      }) as typeof stores.client.send;
      const countingFetch: typeof fetch = (input, init) => {
        io.provider++;
        return fetch(input, init);
      };
      const isolated: CallbackDeps = {
        ...callbackDeps,
        client: createProviderClient(provider, async () => sandbox.clientSecret, { fetch: countingFetch }),
        sessions: new DynamoSessionStore(dynamo, stores.config.sessionsTable, stores.cipher),
        tokens: new DynamoTokenStore(dynamo, stores.config.tokensTable, stores.cipher),
      };

      const { page } = await visitCallback(query, ['kroger_broker_login_x=y'], isolated);

      expect(page.statusCode).toBe(400);
      expect(page.body).toMatch(/missing information, or it is malformed or too long/);
      expect(logs.lines.map((l) => JSON.parse(l))).toContainEqual(
        expect.objectContaining({ message: 'request refused', errorCode: code, status }),
      );
      expect(io).toEqual({ dynamo: 0, provider: 0 });
      expect(await sandbox.stats()).toEqual({ authorizationCode: 0, refreshToken: 0 });
    },
  );

  it("shows the provider error in plain words, never the provider's text, stores nothing, no token request", async () => {
    const { query, cookie } = await startAndAuthorize('profile-cancel', { approve: false });
    const params = new URLSearchParams(query);
    expect(params.get('error')).toBe('access_denied');
    params.set('error_description', '<script>alert(1)</script> call 555-0100');

    const { page: result } = await visitCallback(params.toString(), [cookie], callbackDeps);

    expect(result.statusCode).toBe(403);
    expect(result.body).toMatch(/cancelled/);
    expect(result.body).not.toContain('<script>');
    expect(result.body).not.toContain('555-0100');
    expect(await stores.tokens.get('profile-cancel')).toBeUndefined();
    expect(await sandbox.stats()).toMatchObject({ authorizationCode: 0 });
  });

  it('lets exactly one of two concurrent callbacks with the same state win', async () => {
    const { query, cookie } = await startAndAuthorize('profile-race');

    const results = await Promise.all([
      visitCallback(query, [cookie], callbackDeps),
      visitCallback(query, [cookie], callbackDeps),
    ]);

    expect(results.map((r) => r.page.statusCode).sort()).toEqual([200, 400]);
    expect(await sandbox.stats()).toMatchObject({ authorizationCode: 1 });
  });

  it('completes the login when the event bus is down: the tokens are stored, the event is lost and logged', async () => {
    const { query, cookie } = await startAndAuthorize('profile-nobus');
    const failingBus = {
      publish: async () => {
        throw new Error('EventBridge refused the event: InternalFailure');
      },
    };

    const { page: result } = await visitCallback(query, [cookie], { ...callbackDeps, events: failingBus });

    expect(result.statusCode).toBe(200);
    expect(result.body).toMatch(/connected/i);
    expect(await stores.tokens.get('profile-nobus')).toMatchObject({ status: 'active', version: 1 });
    const errors = logs.lines.map((l) => JSON.parse(l)).filter((l) => l.level === 'ERROR');
    expect(errors).toEqual([expect.objectContaining({ message: 'could not publish event', event: 'token.connected' })]);
  });

  it('answers a provider outage at /token with a 503 "try again" page and stores nothing', async () => {
    const { query, cookie } = await startAndAuthorize('profile-outage');
    await sandbox.failToken('503');

    const { page: result } = await visitCallback(query, [cookie], callbackDeps);

    expect(result.statusCode).toBe(503);
    expect(result.body).toMatch(/try again/i);
    expect(await stores.tokens.get('profile-outage')).toBeUndefined();
  });

  it('answers a hanging /token with a 503 within the configured timeout', async () => {
    const { query, cookie } = await startAndAuthorize('profile-hang');
    await sandbox.failToken('hang');
    const started = Date.now();

    const { page: result } = await visitCallback(query, [cookie], callbackDeps);

    expect(result.statusCode).toBe(503);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await stores.tokens.get('profile-hang')).toBeUndefined();
  });

  it('answers rejected client credentials with a 502, never showing the secret, and stores nothing', async () => {
    const { query, cookie } = await startAndAuthorize('profile-badsecret');

    const { page: result } = await visitCallback(query, [cookie], deps('wrong-secret'));

    expect(result.statusCode).toBe(502);
    expect(result.body).not.toContain('wrong-secret');
    expect(logs.text()).not.toContain('wrong-secret');
    expect(await stores.tokens.get('profile-badsecret')).toBeUndefined();
  });

  it('refuses a callback whose "iss" is not the configured issuer (RFC 9207)', async () => {
    const { query, cookie } = await startAndAuthorize('profile-iss');
    const params = new URLSearchParams(query);
    params.set('iss', 'https://evil.example.com');

    const { page: result } = await visitCallback(params.toString(), [cookie], callbackDeps);

    expect(result.statusCode).toBe(400);
    expect(result.body).toMatch(/did not come from Kroger&#39;s sign-in service/);
    expect(await sandbox.stats()).toMatchObject({ authorizationCode: 0 });
  });

  it('refuses an expired login attempt', async () => {
    const { query, cookie } = await startAndAuthorize('profile-late');
    const late = { ...callbackDeps, now: () => Math.floor(Date.now() / 1000) + 601 };

    const { page: result } = await visitCallback(query, [cookie], late);

    expect(result.statusCode).toBe(400);
    expect(await sandbox.stats()).toMatchObject({ authorizationCode: 0 });
  });

  it('works with PKCE turned off for a provider that does not support it', async () => {
    const noPkce = configFor(sandbox, { PKCE: 'false' });
    loginDeps = { ...loginDeps, provider: noPkce };
    const { query, cookie } = await startAndAuthorize('profile-nopkce');

    const { page: result } = await visitCallback(query, [cookie], deps(sandbox.clientSecret, noPkce));

    expect(result.statusCode).toBe(200);
  });
});

describe('Flow: connect links and return targets', () => {
  it("binds nothing at the link's sign-in (a pending connection instead) and refuses a second use of the link", async () => {
    const now = Math.floor(Date.now() / 1000);
    await stores.sessions.putLink({ id: 'link-1', appUserId: 'app-user-7', expiresAt: now + 900 });
    const { query, cookie } = await startAndAuthorize('profile-linked', { query: 'session=link-1' });

    const { page: result } = await visitCallback(query, [cookie], callbackDeps);
    const reuse = await handleLogin(getEvent('/login', 'session=link-1'), loginDeps);

    expect(result.statusCode).toBe(200);
    expect(result.body).toMatch(/finish in the app/);
    expect(await stores.tokens.get('app-user-7')).toBeUndefined();
    expect(await stores.tokens.get('profile-linked')).toBeUndefined();
    expect(reuse.statusCode).toBe(400);
    expect(reuse.body).toMatch(/connect link cannot be used/);
  });

  it('refuses a forged link and an expired one', async () => {
    await stores.sessions.putLink({ id: 'link-old', appUserId: 'u', expiresAt: Math.floor(Date.now() / 1000) - 1 });
    expect((await handleLogin(getEvent('/login', 'session=nope'), loginDeps)).statusCode).toBe(400);
    expect((await handleLogin(getEvent('/login', 'session=link-old'), loginDeps)).statusCode).toBe(400);
  });

  it('redirects to an allow-listed returnTo after success', async () => {
    const { query, cookie } = await startAndAuthorize('profile-return', {
      query: `returnTo=${encodeURIComponent('https://app.example.com/done?x=1')}`,
    });

    const { page: result } = await visitCallback(query, [cookie], callbackDeps);

    expect(result.statusCode).toBe(302);
    expect(result.headers.location).toBe('https://app.example.com/done?x=1');
  });

  it('redirects to the checked URL, never to raw text with control characters in it', async () => {
    // URL parsing drops the CR LF, so this passes the allow-list as /done/Set-Cookie:x=1.
    const raw = 'https://app.example.com/done/\r\nSet-Cookie:x=1';
    const { query, cookie } = await startAndAuthorize('profile-crlf', { query: `returnTo=${encodeURIComponent(raw)}` });

    const { page: result } = await visitCallback(query, [cookie], callbackDeps);

    expect(result.statusCode).toBe(302);
    expect(result.headers.location).not.toMatch(/[\r\n]/);
    expect(result.headers.location.startsWith('https://app.example.com/done')).toBe(true);
  });

  it('refuses a returnTo that is not on the allow-list (no open redirect)', async () => {
    const result = await handleLogin(
      getEvent('/login', `returnTo=${encodeURIComponent('https://evil.test/')}`),
      loginDeps,
    );

    expect(result.statusCode).toBe(400);
    expect(result.headers.location).toBeUndefined();
  });
});
