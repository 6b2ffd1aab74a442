/**
 * GET /login, fast: the real flow over the in-memory session store. test/integration/flow.test.ts
 * runs it against DynamoDB Local and the sandbox provider.
 */
import { readProviderConfig, type FlowConfig } from '../../functions/core/config';
import {
  BINDING_COOKIE_PREFIX,
  bindingCookieName,
  hashBinding,
  LOGIN_LEDGER_COOKIE,
  s256,
} from '../../functions/core/login';
import { KeyUnavailableError, StoreUnavailableError } from '../../functions/core/errors';
import { RETRY_AFTER_SECONDS } from '../../functions/core/result-page';
import { handleLogin, type LoginDeps } from '../../functions/flows/login-flow';
import { getEvent } from '../support/events';
import { captureLogger } from '../support/logs';
import { MemorySessionStore } from '../support/memory-session-store';

const NOW = 1_000_000;
const ALLOWED = 'https://app.example.com/done';

let sessions: MemorySessionStore;
let logs: ReturnType<typeof captureLogger>;

/** Pinned randomness: state, binding value and verifier, in that order. */
function sequence(): (bytes: number) => string {
  const values = ['state-value', 'binding-value', 'verifier-value'];
  let i = 0;
  return () => values[i++ % values.length];
}

function deps(overrides: { redirect?: string; pkce?: string; flow?: Partial<FlowConfig> } = {}): LoginDeps {
  return {
    provider: readProviderConfig({
      CLIENT_ID: 'client',
      OAUTH2_BASE_URL: 'https://api.kroger.com/v1/connect/oauth2',
      API_BASE_URL: 'https://api.kroger.com',
      REDIRECT_URL: overrides.redirect ?? 'https://broker.example.com/kroger/callback',
      PKCE: overrides.pkce,
    }),
    flow: { returnToAllowlist: [ALLOWED], ...overrides.flow },
    sessions,
    logger: logs.logger,
    now: () => NOW,
    random: sequence(),
  };
}

const login = (query = '', d = deps()) => handleLogin(getEvent('/login', query), d);

/** The ledger cookie of the live logins (on the login path): the pinned state's, until it expires. */
const ledger = (attributes: string) =>
  `${LOGIN_LEDGER_COOKIE}=${bindingCookieName('state-value').slice(BINDING_COOKIE_PREFIX.length)}:${NOW + 600}; ${attributes}`;

beforeEach(() => {
  sessions = new MemorySessionStore();
  logs = captureLogger();
});

describe('Function: handleLogin', () => {
  it('stores the attempt and redirects to the authorize URL with a binding cookie for the callback path', async () => {
    const result = await login();

    expect(result.statusCode).toBe(302);
    const url = new URL(result.headers.location);
    expect(url.origin + url.pathname).toBe('https://api.kroger.com/v1/connect/oauth2/authorize');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: 'client',
      redirect_uri: 'https://broker.example.com/kroger/callback',
      response_type: 'code',
      scope: 'product.compact cart.basic:write profile.compact',
      state: 'state-value',
      code_challenge: s256('verifier-value'),
      code_challenge_method: 'S256',
    });
    expect(result.cookies).toEqual([
      `${bindingCookieName('state-value')}=binding-value; Path=/kroger/callback; Max-Age=600; HttpOnly; SameSite=Lax; Secure`,
      ledger('Path=/kroger/login; Max-Age=600; HttpOnly; SameSite=Lax; Secure'),
    ]);
    expect(result.headers['x-frame-options']).toBe('DENY');
    expect([...sessions.attempts.values()]).toEqual([
      {
        state: 'state-value',
        codeVerifier: 'verifier-value',
        bindingHash: hashBinding('binding-value'),
        appUserId: undefined,
        returnTo: undefined,
        expiresAt: NOW + 600,
      },
    ]);
    expect(logs.lines.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({
        level: 'INFO',
        message: 'login started',
        route: 'login',
        requestId: 'req-1',
        connectLink: false,
        pkce: true,
      }),
    ]);
    expect(logs.text()).not.toMatch(/binding-value|verifier-value/);
  });

  it('sets the binding cookie without Secure only when the callback is served over plain http', async () => {
    const result = await login('', deps({ redirect: 'http://localhost:3000/callback' }));

    expect(result.cookies).toEqual([
      `${bindingCookieName('state-value')}=binding-value; Path=/callback; Max-Age=600; HttpOnly; SameSite=Lax`,
      ledger('Path=/login; Max-Age=600; HttpOnly; SameSite=Lax'),
    ]);
    expect(result.cookies?.[0].startsWith(BINDING_COOKIE_PREFIX)).toBe(true);
  });

  it('stores no verifier and logs pkce false when PKCE is turned off', async () => {
    await login('', deps({ pkce: 'false' }));

    expect(sessions.attempts.get('state-value')?.codeVerifier).toBeUndefined();
    expect(JSON.parse(logs.lines[0]).pkce).toBe(false);
  });

  it('logs in under the app user id of a connect link, consuming it once, and goes to its returnTo', async () => {
    await sessions.putLink({ id: 'link-1', appUserId: 'app-7', returnTo: `${ALLOWED}/linked`, expiresAt: NOW + 60 });

    const result = await login(`session=link-1&returnTo=${encodeURIComponent(`${ALLOWED}/asked`)}`);
    const again = await login('session=link-1');

    expect(result.statusCode).toBe(302);
    expect(sessions.attempts.get('state-value')).toMatchObject({ appUserId: 'app-7', returnTo: `${ALLOWED}/linked` });
    expect(JSON.parse(logs.lines[0]).connectLink).toBe(true);
    expect(again.statusCode).toBe(400);
    expect(again.body).toContain('<h1>This connect link cannot be used</h1>');
  });

  it('uses the requested returnTo when the connect link has none', async () => {
    await sessions.putLink({ id: 'link-2', appUserId: 'app-8', expiresAt: NOW + 60 });

    await login(`session=link-2&returnTo=${encodeURIComponent(`${ALLOWED}/asked`)}`);

    expect(sessions.attempts.get('state-value')?.returnTo).toBe(`${ALLOWED}/asked`);
  });

  it('falls back to SUCCESS_REDIRECT, and stores the checked URL rather than the raw text', async () => {
    await login('', deps({ flow: { successRedirect: `${ALLOWED}/ok` } }));
    expect(sessions.attempts.get('state-value')?.returnTo).toBe(`${ALLOWED}/ok`);

    sessions = new MemorySessionStore();
    await login(`returnTo=${encodeURIComponent(`${ALLOWED}/a b\r\n`)}`);
    expect(sessions.attempts.get('state-value')?.returnTo).toBe(`${ALLOWED}/a%20b`);
  });

  it.each([
    [
      'a returnTo off the allow-list',
      `returnTo=${encodeURIComponent('https://evil.test/')}`,
      400,
      'LOGIN_RETURN_TO_NOT_ALLOWED',
    ],
    // The page is the same 400 for every malformed request; the log keeps the precise status.
    ['an oversized query', `pad=${'p'.repeat(2049)}`, 414, 'LOGIN_INPUT_TOO_LARGE'],
    ['a repeated session', 'session=a&session=b', 400, 'LOGIN_INPUT_TOO_LARGE'],
    ['an oversized session', `session=${'s'.repeat(129)}`, 400, 'LOGIN_INPUT_TOO_LARGE'],
    [
      'an oversized returnTo',
      `returnTo=${encodeURIComponent(`${ALLOWED}/${'x'.repeat(1000)}`)}`,
      400,
      'LOGIN_INPUT_TOO_LARGE',
    ],
  ])('refuses %s, storing nothing and setting no cookie', async (_name, query, status, code) => {
    const result = await login(query);

    expect(result.statusCode).toBe(400);
    expect(result.cookies).toBeUndefined();
    expect(result.headers.location).toBeUndefined();
    expect(sessions.attempts.size).toBe(0);
    expect(logs.lines.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({ level: 'WARN', message: 'request refused', errorCode: code, status }),
    ]);
  });

  it.each([
    [
      'a returnTo off the allow-list',
      `returnTo=${encodeURIComponent('https://evil.test/')}`,
      'This sign-in address is not allowed',
    ],
    ['an oversized query', `pad=${'p'.repeat(2049)}`, 'This address is incomplete'],
    ['a repeated returnTo', 'returnTo=a&returnTo=b', 'This address is incomplete'],
    ['an oversized session', `session=${'s'.repeat(129)}`, 'This address is incomplete'],
    ['an unknown connect link', 'session=nope', 'This connect link cannot be used'],
  ])('says in plain words what is wrong with %s', async (_name, query, title) => {
    const result = await login(query);

    expect(result.body).toContain(`<h1>${title}</h1>`);
  });

  it('handles an event with no query string and no request context', async () => {
    const event = getEvent('/login');
    delete (event as { rawQueryString?: string }).rawQueryString;
    delete (event as { requestContext?: unknown }).requestContext;

    const result = await handleLogin(event, deps());

    expect(result.statusCode).toBe(302);
    expect(JSON.parse(logs.lines[0])).toMatchObject({ message: 'login started', route: 'login' });
  });

  it('accepts the longest allowed query, session and returnTo', async () => {
    await sessions.putLink({ id: 's'.repeat(128), appUserId: 'app-9', expiresAt: NOW + 60 });
    const returnTo = `${ALLOWED}/${'x'.repeat(1024 - ALLOWED.length - 1)}`;
    const query = `session=${'s'.repeat(128)}&returnTo=${encodeURIComponent(returnTo)}`;

    const result = await login(`${query}&pad=${'p'.repeat(2048 - query.length - 5)}`);

    expect(result.statusCode).toBe(302);
  });

  it('treats an empty parameter as absent', async () => {
    const result = await login('session=&returnTo=');

    expect(result.statusCode).toBe(302);
    expect(sessions.calls).toEqual(['putAttempt:state-value']);
  });

  it('answers 503 "cannot store connections", without a redirect or a cookie, when the field key cannot seal the verifier', async () => {
    jest
      .spyOn(sessions, 'putAttempt')
      .mockRejectedValue(new KeyUnavailableError('kms:GenerateDataKey failed (AccessDeniedException)'));

    const result = await login();

    expect(result.statusCode).toBe(503);
    expect(result.headers.location).toBeUndefined();
    expect(result.cookies).toBeUndefined();
    expect(result.body).toContain('This service cannot store connections at the moment.');
    expect(JSON.parse(logs.lines.at(-1)!)).toMatchObject({
      level: 'ERROR',
      message: 'the field encryption key could not be used',
      errorCode: 'KEY_UNAVAILABLE',
    });
  });

  it('answers 503 with Retry-After when DynamoDB cannot store the attempt, and leaves the connect link usable', async () => {
    await sessions.putLink({ id: 'link-1', appUserId: 'app-user-1', expiresAt: NOW + 900 });
    const put = jest.spyOn(sessions, 'putAttempt').mockRejectedValueOnce(
      new StoreUnavailableError('DynamoDB PutItem failed: throttled (ProvisionedThroughputExceededException)', {
        operation: 'PutItem',
        retryAfterSeconds: 1,
      }),
    );

    const first = await login('session=link-1');

    expect(first.statusCode).toBe(503);
    expect(first.headers['retry-after']).toBe(String(RETRY_AFTER_SECONDS));
    expect(first.cookies).toBeUndefined();
    expect(await sessions.peekLink('link-1', NOW)).toMatchObject({ appUserId: 'app-user-1' });

    put.mockRestore();
    const second = await login('session=link-1');

    expect(second.statusCode).toBe(302);
    expect(await sessions.peekLink('link-1', NOW)).toBeUndefined();
    expect(sessions.attempts.get('state-value')).toMatchObject({ appUserId: 'app-user-1' });
  });

  it('uses the current time when none is injected', async () => {
    const before = Math.floor(Date.now() / 1000);
    await handleLogin(getEvent('/login'), { ...deps(), now: undefined });

    const expiresAt = sessions.attempts.get('state-value')!.expiresAt;
    expect(expiresAt).toBeGreaterThanOrEqual(before + 600);
    expect(expiresAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 600);
  });
});
