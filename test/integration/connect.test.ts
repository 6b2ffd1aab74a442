/**
 * Connect links that cannot be hijacked (issue 11), against real parts: DynamoDB Local, the
 * Kroger-shaped sandbox provider, the login and callback flows, the library, the CLI and the
 * example app backend. A link's sign-in binds nothing; only the app's completion for its own user
 * stores the grant, once.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { CALLBACK_LIMITS } from '../../functions/core/callback';
import { readProviderConfig, type ProviderConfig } from '../../functions/core/config';
import { CONNECT_CODE_LENGTH, hashConnectCode, newConnectCode } from '../../functions/core/connect';
import { ArgumentError, CompleteFunctionError, ConnectionRefusedError } from '../../functions/core/errors';
import { BINDING_COOKIE_PREFIX, LOGIN_LEDGER_COOKIE, MAX_LIVE_LOGINS } from '../../functions/core/login';
import { logEventPublisher } from '../../functions/adapters/events';
import { createProviderClient } from '../../functions/adapters/provider';
import type { CallbackDeps } from '../../functions/flows/callback-flow';
import {
  type CompleteDeps,
  completeConnection as completeFlow,
  handleCompleteRequest,
} from '../../functions/flows/complete-flow';
import { handleLogin, type LoginDeps } from '../../functions/flows/login-flow';
import { createLoginHandler } from '../../functions/handlers';
import { runCli } from '../../functions/reader/cli';
import { completeConnection, createLoginLink } from '../../functions/reader';
import { createServices } from '../../functions/services';
import { completeAuthorization } from '../../infra/local/sandbox/headless';
import type { SandboxHandle } from '../../infra/local/sandbox/launch';
import { createConnectApp } from '../../examples/connect-app';
import { visitCallback } from '../support/callback';
import { brokerEnv } from '../support/connect';
import { cookiePair, getEvent } from '../support/events';
import { captureLogger } from '../support/logs';
import { seededItem } from '../support/seed';
import type { TestStores } from '../support/stores';
import { useFileStack } from '../support/file-stack';

const REDIRECT = 'http://localhost:3994/callback';
const APP = 'https://app.example.com';
const RETURN_URL = `${APP}/kroger/return`;
const APP_NAME = 'Acme Groceries';

let sandbox: SandboxHandle;
let stores: TestStores;
let provider: ProviderConfig;
let logs: ReturnType<typeof captureLogger>;
let env: Record<string, string>;
const flow = { returnToAllowlist: [`${APP}/kroger/`], appName: APP_NAME, publicLogin: true };

const loginDeps = (overrides: Partial<LoginDeps> = {}): LoginDeps => ({
  provider,
  flow,
  sessions: stores.sessions,
  logger: logs.logger,
  ...overrides,
});

const callbackDeps = (overrides: Partial<CallbackDeps> = {}): CallbackDeps => ({
  provider,
  client: createProviderClient(provider, async () => sandbox.clientSecret),
  sessions: stores.sessions,
  tokens: stores.tokens,
  events: logEventPublisher(logs.logger),
  logger: logs.logger,
  flow,
  ...overrides,
});

const completeDeps = (overrides: Partial<CompleteDeps> = {}): CompleteDeps => ({
  sessions: stores.sessions,
  tokens: stores.tokens,
  events: logEventPublisher(logs.logger),
  logger: logs.logger,
  ...overrides,
});

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, env, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

/** A connect link for `appUserId` (to the app's return URL unless `null`), made as an app backend makes it. */
async function link(appUserId: string, returnTo: string | null = RETURN_URL): Promise<string> {
  const { loginUrl } = await createLoginLink(appUserId, {
    env,
    dynamo: stores.client,
    returnTo: returnTo ?? undefined,
  });
  return loginUrl;
}

/** Opens `loginUrl` in a browser, signs in at the sandbox as `profile` and lands on the callback. */
async function signIn(loginUrl: string, profile: string, deps: { login?: LoginDeps; callback?: CallbackDeps } = {}) {
  const started = await handleLogin(getEvent('/login', new URL(loginUrl).search.slice(1)), deps.login ?? loginDeps());
  expect(started.statusCode).toBe(302);
  const back = await completeAuthorization(started.headers.location, { login: profile });
  return visitCallback(back.search.slice(1), [cookiePair(started.cookies?.[0])], deps.callback ?? callbackDeps());
}

/** The connect code the callback sent to the return URL. */
function codeFromReturn(location: string): string {
  const url = new URL(location);
  expect(url.origin + url.pathname).toBe(RETURN_URL);
  const code = url.searchParams.get('connect_code');
  expect(code).toMatch(new RegExp(`^[A-Za-z0-9_-]{${CONNECT_CODE_LENGTH}}$`));
  return code!;
}

/** The connect code the pending page shows. */
function codeFromPage(body: string): string {
  const match = /<p class="code">([A-Za-z0-9_-]+)<\/p>/.exec(body);
  expect(match?.[1]).toHaveLength(CONNECT_CODE_LENGTH);
  return match![1];
}

/** A completion that must be refused: the refusal's code. */
async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectionRefusedError);
  return (error as ConnectionRefusedError).code;
}

/** The pending connection's item as stored (keyed by the code's hash). */
async function pendingItem(code: string) {
  const out = await stores.client.send(
    new GetItemCommand({
      TableName: stores.config.sessionsTable,
      Key: { id: { S: `pending#${hashConnectCode(code)}` } },
      ConsistentRead: true,
    }),
  );
  return out.Item;
}

const stack = useFileStack('connect', {
  clientId: 'connect-client',
  clientSecret: 'connect-secret',
  redirectUris: [REDIRECT],
});

beforeAll(() => {
  ({ sandbox, stores } = stack);
  env = brokerEnv(sandbox, stores, REDIRECT, {
    OAUTH2_ISSUER: sandbox.issuer,
    RETURN_TO_ALLOWLIST: `${APP}/kroger/`,
    APP_NAME,
  });
  provider = readProviderConfig(env);
});

beforeEach(async () => {
  logs = captureLogger();
  await sandbox.failToken('none');
  await sandbox.resetStats();
});

describe('Connect: the forwarded-link attack', () => {
  it('binds nothing: completed for the victim it is refused and cancelled, and neither user gets the account', async () => {
    // The attacker makes a link for their own app account and gets a victim signed in at Kroger
    // to open it; the sign-in ends at the app's return URL, in the victim's browser.
    const { first } = await signIn(await link('app-attacker'), 'kroger-victim');
    expect(first.statusCode).toBe(302);
    const code = codeFromReturn(first.headers.location);
    for (const id of ['app-attacker', 'app-victim', 'kroger-victim'])
      expect(await stores.tokens.get(id)).toBeUndefined();

    // The app completes it for the user signed in there: the victim. Refused, and the code is dead.
    expect(
      await refusal(completeConnection(code, 'app-victim', { env, dynamo: stores.client, logger: logs.logger })),
    ).toBe('CONNECT_CODE_FOREIGN');
    expect(await refusal(completeConnection(code, 'app-attacker', { env, dynamo: stores.client }))).toBe(
      'CONNECT_CODE_CANCELLED',
    );

    for (const id of ['app-attacker', 'app-victim', 'kroger-victim'])
      expect(await stores.tokens.get(id)).toBeUndefined();
    // The cancelled connection keeps no tokens, only who it was for and who presented it.
    const item = await pendingItem(code);
    expect(item).toMatchObject({ appUserId: { S: 'app-attacker' }, closedFor: { S: 'app-victim' } });
    expect(item).not.toHaveProperty('accessToken');
    expect(item).not.toHaveProperty('refreshToken');
    expect(logs.text()).toContain('"linkAppUserId":"app-attacker"');
    expect(logs.text()).not.toContain(code);
  });

  it('keeps the code out of the broker logs and out of every page and cookie but the return URL', async () => {
    const { first, page } = await signIn(await link('app-logs'), 'kroger-logs');
    const code = codeFromReturn(first.headers.location);

    expect(logs.text()).not.toContain(code);
    expect(logs.text()).toContain('connection pending');
    expect(JSON.stringify(first.cookies)).not.toContain(code);
    expect(page).toBe(first); // a redirect to the app: no broker page in between
  });
});

describe('Connect: the pending connection at rest', () => {
  it('holds its tokens sealed under the field key and bound to its item, never readable in the table', async () => {
    const { first } = await signIn(await link('app-sealed'), 'kroger-sealed');
    const code = codeFromReturn(first.headers.location);
    const item = (await pendingItem(code))!;
    for (const field of ['accessToken', 'refreshToken']) {
      expect(item[field]?.S).toMatch(/^v1\.local\.[\w-]+\.[\w-]{16}\.[\w-]+\.[\w-]{22}$/);
    }

    // A ciphertext moved into another pending item fails to open there: completing that one is
    // refused, and no grant is stored for its app user.
    const other = codeFromReturn((await signIn(await link('app-moved'), 'kroger-moved')).first.headers.location);
    await stores.client.send(
      new UpdateItemCommand({
        TableName: stores.config.sessionsTable,
        Key: { id: { S: `pending#${hashConnectCode(other)}` } },
        UpdateExpression: 'SET refreshToken = :moved',
        ExpressionAttributeValues: { ':moved': item.refreshToken },
      }),
    );
    await expect(completeConnection(other, 'app-moved', { env, dynamo: stores.client })).rejects.toMatchObject({
      code: 'DECRYPTION_FAILED',
    });
    expect(await stores.tokens.get('app-moved')).toBeUndefined();

    // The untouched one completes, and the grant it stores works.
    await expect(completeConnection(code, 'app-sealed', { env, dynamo: stores.client })).resolves.toEqual({
      userId: 'app-sealed',
      profileId: 'kroger-sealed',
    });
    expect((await stores.tokens.get('app-sealed'))!.refreshToken).not.toMatch(/^v1\./);
  });
});

describe('Connect: link, sign-in, complete', () => {
  it('stores the grant under the app user only when the app completes it, and `tokens get` reads it', async () => {
    const { first } = await signIn(await link('app-alice'), 'kroger-alice');
    const code = codeFromReturn(first.headers.location);
    // The binding cookie is expired by the redirect to the app.
    expect(first.cookies?.[0]).toMatch(new RegExp(`^${BINDING_COOKIE_PREFIX}[\\w-]{16}=; Path=/callback; Max-Age=0`));
    expect(await stores.tokens.get('app-alice')).toBeUndefined();

    const connection = await completeConnection(code, 'app-alice', { env, dynamo: stores.client, logger: logs.logger });

    expect(connection).toEqual({ userId: 'app-alice', profileId: 'kroger-alice' });
    const record = await stores.tokens.get('app-alice');
    expect(record).toMatchObject({ profileId: 'kroger-alice', status: 'active', version: 1, boundBy: 'connect' });
    expect(await stores.tokens.get('kroger-alice')).toBeUndefined();
    expect(logs.text()).toMatch(/"event":"token.connected","detail":\{"userId":"app-alice","profileId":"kroger-alice"/);
    const got = await cli('get', 'app-alice');
    expect(got.code).toBe(0);
    expect(JSON.parse(got.out[0])).toMatchObject({ userId: 'app-alice', accessToken: record!.accessToken });
    // The grant is live at the provider: once the token expires, `get` refreshes it, and the item
    // keeps its link-bound mark.
    await stores.client.send(
      new UpdateItemCommand({
        TableName: stores.config.tokensTable,
        Key: { userId: { S: 'app-alice' } },
        UpdateExpression: 'SET expiresAt = :past',
        ExpressionAttributeValues: { ':past': { N: String(Math.floor(Date.now() / 1000) - 60) } },
      }),
    );
    expect((await cli('get', 'app-alice')).code).toBe(0);
    expect(await stores.tokens.get('app-alice')).toMatchObject({ version: 2, boundBy: 'connect' });
  });

  it('without a return URL shows the code with the app name, and `tokens complete` finishes it (exit 0)', async () => {
    const { first, page } = await signIn(await link('app-bob', null), 'kroger-bob');

    // The provider's redirect (code, state) is answered with a 303 to the clean callback URL.
    expect(first.statusCode).toBe(303);
    expect(first.headers.location).toBe(REDIRECT);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain(`finish in ${APP_NAME}`);
    const code = codeFromPage(page.body);
    expect(await stores.tokens.get('app-bob')).toBeUndefined();

    const completed = await cli('complete', code, 'app-bob');

    expect(completed).toMatchObject({ code: 0, err: [] });
    expect(JSON.parse(completed.out[0])).toEqual({ userId: 'app-bob', profileId: 'kroger-bob' });
    expect((await cli('get', 'app-bob')).code).toBe(0);
  });

  it('replaces the previous grant on a new connection, and says token.recovered after reauth_required', async () => {
    const first = await signIn(await link('app-carol'), 'kroger-carol-1');
    await completeFlow(completeDeps(), {
      connectCode: codeFromReturn(first.first.headers.location),
      appUserId: 'app-carol',
    });
    const before = (await stores.tokens.get('app-carol'))!;
    // As a refresh that met a dead grant does it: under the lease, at the version it read.
    await stores.tokens.acquireLease('app-carol', 'test-refresher', Date.now(), 10_000);
    await stores.tokens.markReauthRequired({
      userId: 'app-carol',
      owner: 'test-refresher',
      version: before.version,
      reason: 'invalid_grant',
      now: Math.floor(Date.now() / 1000),
      deleteAfter: Math.floor(Date.now() / 1000) + 60,
    });

    const second = await signIn(await link('app-carol'), 'kroger-carol-2');
    await completeFlow(completeDeps(), {
      connectCode: codeFromReturn(second.first.headers.location),
      appUserId: 'app-carol',
    });

    const after = (await stores.tokens.get('app-carol'))!;
    expect(after).toMatchObject({ profileId: 'kroger-carol-2', status: 'active', version: before.version + 2 });
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(logs.text()).toContain('"event":"token.recovered"');
  });
});

describe('Connect: a used link or code cannot rebind', () => {
  it('refuses a second completion of a code ("already used") and leaves the grant as it was', async () => {
    const { first } = await signIn(await link('app-dave'), 'kroger-dave');
    const code = codeFromReturn(first.headers.location);
    await completeFlow(completeDeps(), { connectCode: code, appUserId: 'app-dave' });
    const stored = await stores.tokens.get('app-dave');

    expect(await refusal(completeFlow(completeDeps(), { connectCode: code, appUserId: 'app-dave' }))).toBe(
      'CONNECT_CODE_USED',
    );
    expect(await refusal(completeFlow(completeDeps(), { connectCode: code, appUserId: 'app-mallory' }))).toBe(
      'CONNECT_CODE_USED',
    );
    expect(await stores.tokens.get('app-dave')).toEqual(stored);
    expect(await stores.tokens.get('app-mallory')).toBeUndefined();
  });

  it('refuses a second use of a link with a page that says what to do, and starts no sign-in', async () => {
    const loginUrl = await link('app-erin');
    await signIn(loginUrl, 'kroger-erin');

    const again = await handleLogin(getEvent('/login', new URL(loginUrl).search.slice(1)), loginDeps());

    expect(again.statusCode).toBe(400);
    expect(again.headers.location).toBeUndefined();
    expect(again.cookies).toBeUndefined();
    expect(again.body).toContain('This connect link cannot be used');
    expect(again.body).toContain(`Go back to ${APP_NAME}`);
  });

  it('refuses an unknown code and an expired one, storing nothing', async () => {
    const { first } = await signIn(await link('app-frank'), 'kroger-frank');
    const code = codeFromReturn(first.headers.location);
    const late = completeDeps({ now: () => Math.floor(Date.now() / 1000) + 601 });

    expect(await refusal(completeFlow(late, { connectCode: code, appUserId: 'app-frank' }))).toBe(
      'CONNECT_CODE_EXPIRED',
    );
    expect(await refusal(completeFlow(completeDeps(), { connectCode: newConnectCode(), appUserId: 'app-frank' }))).toBe(
      'CONNECT_CODE_UNKNOWN',
    );
    expect(await stores.tokens.get('app-frank')).toBeUndefined();
  });
});

describe('Connect: concurrent completions', () => {
  it('lets exactly one of two concurrent completions of one code win', async () => {
    const { first } = await signIn(await link('app-gina'), 'kroger-gina');
    const code = codeFromReturn(first.headers.location);

    const results = await Promise.allSettled([
      completeFlow(completeDeps(), { connectCode: code, appUserId: 'app-gina' }),
      completeFlow(completeDeps(), { connectCode: code, appUserId: 'app-gina' }),
    ]);

    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toMatchObject({ code: 'CONNECT_CODE_USED' });
    expect(await stores.tokens.get('app-gina')).toMatchObject({ version: 1, profileId: 'kroger-gina' });
  });

  it('with the link user and another racing, one closes the code: the other is refused either way', async () => {
    for (let round = 0; round < 4; round += 1) {
      const own = `app-race-${round}`;
      const { first } = await signIn(await link(own), `kroger-race-${round}`);
      const code = codeFromReturn(first.headers.location);

      const [mine, theirs] = await Promise.allSettled([
        completeFlow(completeDeps(), { connectCode: code, appUserId: own }),
        completeFlow(completeDeps(), { connectCode: code, appUserId: `app-other-${round}` }),
      ]);

      expect(theirs.status).toBe('rejected');
      expect(await stores.tokens.get(`app-other-${round}`)).toBeUndefined();
      if (mine.status === 'fulfilled') {
        // The link's user closed it first: the other presentation found it used.
        expect((theirs as PromiseRejectedResult).reason).toMatchObject({ code: 'CONNECT_CODE_USED' });
        expect(await stores.tokens.get(own)).toMatchObject({ version: 1 });
      } else {
        // The other presentation closed it first: cancelled, and the link's user gets nothing.
        expect((theirs as PromiseRejectedResult).reason).toMatchObject({ code: 'CONNECT_CODE_FOREIGN' });
        expect(mine.reason).toMatchObject({ code: 'CONNECT_CODE_CANCELLED' });
        expect(await stores.tokens.get(own)).toBeUndefined();
      }
    }
  });
});

describe('Connect: a public sign-in never overwrites a link-bound user', () => {
  it('answers 409 with a page naming the app, and leaves the link-bound grant untouched', async () => {
    // An app whose user ids can look like Kroger profile ids: its user "shared-7" connects "kroger-h".
    const { first } = await signIn(await link('shared-7'), 'kroger-h');
    await completeFlow(completeDeps(), { connectCode: codeFromReturn(first.headers.location), appUserId: 'shared-7' });
    const bound = (await stores.tokens.get('shared-7'))!;

    // Someone whose Kroger profile id is "shared-7" signs in at the public /login.
    const { page } = await signIn('http://localhost:3994/login', 'shared-7');

    expect(page.statusCode).toBe(409);
    expect(page.body).toContain(`managed by ${APP_NAME}`);
    expect(page.body).toContain('Nothing was changed');
    expect(await stores.tokens.get('shared-7')).toEqual(bound);
    expect(logs.text()).toContain('"errorCode":"CALLBACK_LINK_BOUND"');
  });

  it('also leaves an item bound before the mark existed (another profile under the id) untouched', async () => {
    const now = Math.floor(Date.now() / 1000);
    const legacy = {
      ...seededItem('legacy-9', { issuedAt: now, expiresAt: now + 1800 }),
      profileId: { S: 'kroger-old' },
    };
    await stores.client.send(new PutItemCommand({ TableName: stores.config.tokensTable, Item: legacy }));

    const { page } = await signIn('http://localhost:3994/login', 'legacy-9');

    expect(page.statusCode).toBe(409);
    expect(await stores.tokens.get('legacy-9')).toMatchObject({
      profileId: 'kroger-old',
      accessToken: 'not-used-access',
    });
  });

  it('still replaces its own earlier public sign-in (same profile)', async () => {
    await signIn('http://localhost:3994/login', 'kroger-public');
    const { page } = await signIn('http://localhost:3994/login', 'kroger-public');

    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Your Kroger account is connected');
    expect(await stores.tokens.get('kroger-public')).toMatchObject({ version: 2, boundBy: 'public' });
  });
});

describe('Connect: PUBLIC_LOGIN=false', () => {
  it('refuses /login without a link (403, a page saying to start from the app) and still serves links', async () => {
    const handler = createLoginHandler(
      createServices({ ...env, PUBLIC_LOGIN: 'false' }, { logger: logs.logger, dynamo: stores.client }),
    );

    const refused = await handler(getEvent('/login'));
    const linked = await handler(getEvent('/login', new URL(await link('app-ivy')).search.slice(1)));

    expect(refused.statusCode).toBe(403);
    expect(refused.headers.location).toBeUndefined();
    expect(refused.cookies).toBeUndefined();
    expect(refused.body).toContain(`Start from ${APP_NAME}`);
    expect(refused.body).not.toContain('Start again');
    expect(linked.statusCode).toBe(302);
    expect(new URL(linked.headers.location).origin).toBe(new URL(sandbox.oauth2BaseUrl).origin);
  });

  it('refuses a public sign-in started before it was turned off: no token request, nothing stored', async () => {
    const started = await handleLogin(getEvent('/login'), loginDeps());
    const back = await completeAuthorization(started.headers.location, { login: 'kroger-late' });

    const { page } = await visitCallback(
      back.search.slice(1),
      [cookiePair(started.cookies?.[0])],
      callbackDeps({ flow: { ...flow, publicLogin: false } }),
    );

    expect(page.statusCode).toBe(403);
    expect(await stores.tokens.get('kroger-late')).toBeUndefined();
    expect(await sandbox.stats()).toMatchObject({ authorizationCode: 0 });
  });
});

describe('Connect: returnTo is checked before the link is used up', () => {
  it('refuses a returnTo off the allow-list and leaves the link usable', async () => {
    const loginUrl = await link('app-jay', null);
    const query = new URL(loginUrl).search.slice(1);

    const bad = await handleLogin(
      getEvent('/login', `${query}&returnTo=${encodeURIComponent('https://evil.test/')}`),
      loginDeps(),
    );
    const good = await handleLogin(getEvent('/login', query), loginDeps());

    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('not allowed');
    expect(good.statusCode).toBe(302);
  });

  it('refuses a return URL that already carries a connect_code, in the library and at /login', async () => {
    const smuggled = `${RETURN_URL}?connect_code=${newConnectCode()}`;
    await expect(createLoginLink('app-kim', { env, dynamo: stores.client, returnTo: smuggled })).rejects.toBeInstanceOf(
      ArgumentError,
    );
    const loginUrl = await link('app-kim', null);
    const query = `${new URL(loginUrl).search.slice(1)}&returnTo=${encodeURIComponent(smuggled)}`;

    expect((await handleLogin(getEvent('/login', query), loginDeps())).statusCode).toBe(400);
    expect((await handleLogin(getEvent('/login', new URL(loginUrl).search.slice(1)), loginDeps())).statusCode).toBe(
      302,
    );
  });
});

describe('Connect: malformed and oversized codes', () => {
  it.each([
    ['too short', 'abc', /malformed/],
    ['not base64url', `${'a'.repeat(42)}!`, /malformed/],
    ['oversized', 'a'.repeat(5000), /too long/],
  ])('refuses a %s code in the library before any I/O (ArgumentError)', async (_what, code, message) => {
    const noDynamo = { env: { ...env, DYNAMODB_ENDPOINT: 'http://127.0.0.1:9' } };
    const error = await completeConnection(code, 'app-x', noDynamo).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArgumentError);
    expect((error as Error).message).toMatch(message);
  });

  it('answers BAD_REQUEST from the complete function for a malformed, oversized or missing code', async () => {
    for (const event of [
      { connectCode: 'x', appUserId: 'u' },
      { connectCode: 'x'.repeat(100_000), appUserId: 'u' },
      { appUserId: 'u' },
      { connectCode: newConnectCode(), appUserId: '' },
      'not an object',
    ]) {
      expect(await handleCompleteRequest(event, completeDeps())).toMatchObject({ ok: false, code: 'BAD_REQUEST' });
    }
  });

  it('exits 2 from the CLI for a malformed code or a missing argument, 6 for each refusal, saying which', async () => {
    const { first } = await signIn(await link('app-lee'), 'kroger-lee');
    const code = codeFromReturn(first.headers.location);

    expect((await cli('complete', 'nope', 'app-lee')).code).toBe(2);
    expect((await cli('complete', 'a'.repeat(300), 'app-lee')).code).toBe(2);
    expect((await cli('complete', code)).code).toBe(2);
    const unknown = await cli('complete', newConnectCode(), 'app-lee');
    const foreign = await cli('complete', code, 'app-not-lee');
    const cancelled = await cli('complete', code, 'app-lee');

    expect([unknown.code, foreign.code, cancelled.code]).toEqual([6, 6, 6]);
    expect(unknown.err.join('\n')).toMatch(/not known/);
    expect(foreign.err.join('\n')).toMatch(/belongs to another app user/);
    expect(cancelled.err.join('\n')).toMatch(/was cancelled/);
    expect([...unknown.out, ...foreign.out, ...cancelled.out]).toEqual([]);
    expect(await stores.tokens.get('app-lee')).toBeUndefined();
    expect(await stores.tokens.get('app-not-lee')).toBeUndefined();
  });

  it("answers 400 on the example app's return route for a malformed, oversized or repeated code", async () => {
    const logged: unknown[] = [];
    const log = {
      info: (...a: unknown[]) => logged.push(a),
      warn: (...a: unknown[]) => logged.push(a),
      error: (...a: unknown[]) => logged.push(a),
    };
    const app = createConnectApp({ baseUrl: APP, env, currentUser: () => 'app-mo', log });
    const server: Server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const statuses = [];
      for (const query of ['connect_code=short', `connect_code=${'a'.repeat(5000)}`, `connect_code=a&connect_code=b`]) {
        statuses.push((await fetch(`${base}/kroger/return?${query}`)).status);
      }
      expect(statuses).toEqual([400, 400, 400]);
      // Refused before the broker was asked: nothing completed, nothing failed.
      expect(logged).toEqual([]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('Connect: the complete function as the app reaches it', () => {
  it('answers ids only, and the library maps its refusals back to the same typed errors', async () => {
    const invokeComplete = async (request: unknown) =>
      JSON.parse(JSON.stringify(await handleCompleteRequest(request, completeDeps())));
    const { first } = await signIn(await link('app-nia'), 'kroger-nia');
    const code = codeFromReturn(first.headers.location);

    const answer = await handleCompleteRequest({ connectCode: code, appUserId: 'app-nia' }, completeDeps());
    const again = completeConnection(code, 'app-nia', { invokeComplete });
    const malformed = completeConnection('x', 'app-nia', { invokeComplete }).catch((e: unknown) => e);
    const newer = completeConnection(newConnectCode(), 'app-nia', {
      invokeComplete: async () => ({ ok: false, code: 'SOMETHING_NEWER', message: 'from a newer broker' }),
    }).catch((e: unknown) => e);

    expect(answer).toEqual({ ok: true, userId: 'app-nia', profileId: 'kroger-nia' });
    expect(await refusal(again)).toBe('CONNECT_CODE_USED');
    expect(await malformed).toBeInstanceOf(ArgumentError);
    expect(await newer).toBeInstanceOf(CompleteFunctionError);
    expect(await newer).toMatchObject({ remoteCode: 'SOMETHING_NEWER' });
  });
});

describe('Connect: how many login cookies one browser keeps', () => {
  it(`keeps at most ${MAX_LIVE_LOGINS} binding cookies however often /login is opened, so the newest sign-in still finishes`, async () => {
    // A browser's cookie jar, by name and path (/login and /callback).
    const jar = new Map<string, { value: string; path: string }>();
    const sent = (path: string) => [...jar].filter(([, c]) => c.path === path).map(([name, c]) => `${name}=${c.value}`);
    const store = (setCookies: string[] = []) => {
      for (const header of setCookies) {
        const [pair, ...attributes] = header.split('; ');
        const name = pair.slice(0, pair.indexOf('='));
        const path = attributes.find((a) => a.startsWith('Path='))!.slice(5);
        if (attributes.includes('Max-Age=0')) jar.delete(name);
        else jar.set(name, { value: pair.slice(pair.indexOf('=') + 1), path });
      }
    };

    // Without the cap, 110 binding cookies would be about 8.8 KB: past what /callback reads.
    const started = [];
    for (let i = 0; i < 110; i += 1) {
      const result = await handleLogin(getEvent('/login', '', sent('/login')), loginDeps());
      expect(result.statusCode).toBe(302);
      store(result.cookies);
      started.push(result);
    }

    const toCallback = sent('/callback');
    expect(toCallback).toHaveLength(MAX_LIVE_LOGINS);
    expect(toCallback.join('; ').length).toBeLessThan(CALLBACK_LIMITS.cookieHeader / 4);
    expect(jar.get(LOGIN_LEDGER_COOKIE)?.path).toBe('/login');

    const newest = await completeAuthorization(started[109].headers.location, { login: 'kroger-cookies' });
    const finished = await visitCallback(newest.search.slice(1), toCallback, callbackDeps());
    expect(finished.page.statusCode).toBe(200);

    // The oldest sign-ins lost their cookie: they end on the page that says to start again here.
    const oldest = await completeAuthorization(started[0].headers.location, { login: 'kroger-cookies-old' });
    const refused = await visitCallback(oldest.search.slice(1), toCallback, callbackDeps());
    expect(refused.page.statusCode).toBe(400);
    expect(refused.page.body).toContain('started in another browser');
  });
});
