/**
 * GET /callback, fast: the real flow over the in-memory stores, a scripted provider and a recording
 * event publisher. test/integration/flow.test.ts runs it against DynamoDB Local and the sandbox.
 */
import { InvalidGrantError, ProviderResponseError, ProviderUnavailableError } from '../../functions/core/errors';
import { bindingCookieName, hashBinding } from '../../functions/core/login';
import { type CallbackDeps, handleCallback } from '../../functions/flows/callback-flow';
import { getEvent } from '../support/events';
import { FakeProvider, RecordingEvents } from '../support/fakes';
import { captureLogger } from '../support/logs';
import { MemorySessionStore } from '../support/memory-session-store';
import { MemoryTokenStore } from '../support/memory-token-store';

const NOW = 1_000_000;
const STATE = 'state-1';
const COOKIE = `${bindingCookieName(STATE)}=binding-1`;

let sessions: MemorySessionStore;
let tokens: MemoryTokenStore;
let provider: FakeProvider;
let events: RecordingEvents;
let logs: ReturnType<typeof captureLogger>;

function deps(redirectUri = 'https://broker.example.com/kroger/callback'): CallbackDeps {
  return { provider: { redirectUri }, client: provider, sessions, tokens, events, logger: logs.logger, now: () => NOW };
}

/** A login attempt as /login stores it, for `STATE` and the binding value `binding-1`. */
async function started(extra: { appUserId?: string; returnTo?: string; codeVerifier?: string } = {}) {
  await sessions.putAttempt({
    state: STATE,
    codeVerifier: 'verifier-1',
    bindingHash: hashBinding('binding-1'),
    expiresAt: NOW + 600,
    ...extra,
  });
}

const callback = (query: string, cookies: string[] | undefined = [COOKIE], d = deps()) =>
  handleCallback(getEvent('/callback', query, cookies), d);

/** The Set-Cookie that expires the binding cookie on the callback path. */
const cleared = (path = '/kroger/callback', secure = true) =>
  `${bindingCookieName(STATE)}=; Path=${path}; Max-Age=0; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;

const entries = () => logs.lines.map((l) => JSON.parse(l));

beforeEach(() => {
  sessions = new MemorySessionStore();
  tokens = new MemoryTokenStore();
  provider = new FakeProvider();
  provider.now = NOW;
  provider.profileId = 'profile-9';
  events = new RecordingEvents();
  logs = captureLogger();
});

describe('Function: handleCallback', () => {
  it('exchanges the code with the verifier, stores the tokens under the profile id and shows "Connected"', async () => {
    await started();
    const exchanged: unknown[] = [];
    provider.onExchange = async (input) => {
      exchanged.push(input);
      return provider.issue();
    };

    const result = await callback(`code=code-1&state=${STATE}&iss=https%3A%2F%2Fidp`);

    expect(result.statusCode).toBe(200);
    expect(result.body).toContain('<title>Connected</title>');
    expect(result.body).toContain('Your Kroger account is connected. You can close this window.');
    expect(result.cookies).toEqual([cleared()]);
    expect(exchanged).toEqual([{ code: 'code-1', state: STATE, iss: 'https://idp', codeVerifier: 'verifier-1' }]);
    expect(tokens.raw('profile-9')).toMatchObject({
      profileId: 'profile-9',
      accessToken: 'access-1',
      refreshToken: 'refresh-1',
      status: 'active',
      tokensIssuedAt: NOW,
      version: 1,
    });
    expect(events.published).toEqual([
      {
        type: 'token.connected',
        detail: { userId: 'profile-9', profileId: 'profile-9', at: new Date(NOW * 1000).toISOString() },
      },
    ]);
    expect(entries()).toContainEqual(
      expect.objectContaining({
        message: 'user connected',
        route: 'callback',
        requestId: 'req-1',
        userId: 'profile-9',
        connectLink: false,
      }),
    );
    expect(JSON.stringify(result) + logs.text()).not.toMatch(/access-1|refresh-1|code-1|binding-1/);
    expect(sessions.attempts.size).toBe(0);
  });

  it('reads the binding cookie from a raw Cookie header when API Gateway passes no cookies array', async () => {
    await started();
    const event = getEvent('/callback', `code=c&state=${STATE}`);
    event.headers = { ...event.headers, cookie: `other=1; ${COOKIE}` };

    const result = await handleCallback(event, deps());

    expect(result.statusCode).toBe(200);
  });

  it('handles an event with no headers, no cookies and no request context', async () => {
    await started();
    const event = getEvent('/callback', `code=c&state=${STATE}`);
    delete (event as { headers?: unknown }).headers;
    delete (event as { requestContext?: unknown }).requestContext;

    const result = await handleCallback(event, deps());

    expect(result.statusCode).toBe(400);
    expect(result.body).toContain('The sign-in cookie is missing.');
    expect(entries()).toContainEqual(
      expect.objectContaining({ route: 'callback', errorCode: 'CALLBACK_BROWSER_MISMATCH' }),
    );
  });

  it('clears the cookie without Secure when the callback is served over plain http', async () => {
    await started();

    const result = await callback(`code=c&state=${STATE}`, [COOKIE], deps('http://localhost:3000/callback'));

    expect(result.cookies).toEqual([cleared('/callback', false)]);
  });

  it('stores the tokens under the app user id of a connect link and redirects to its returnTo', async () => {
    await started({ appUserId: 'app-7', returnTo: 'https://app.example.com/done' });

    const result = await callback(`code=c&state=${STATE}`);

    expect(result.statusCode).toBe(302);
    expect(result.headers.location).toBe('https://app.example.com/done');
    expect(result.cookies).toEqual([cleared()]);
    expect(tokens.raw('app-7')).toMatchObject({ profileId: 'profile-9' });
    expect(tokens.raw('profile-9')).toBeUndefined();
    expect(entries()).toContainEqual(expect.objectContaining({ message: 'user connected', connectLink: true }));
  });

  it('says the user recovered when a login replaces a dead grant', async () => {
    await started();
    await tokens.saveLogin({
      userId: 'profile-9',
      profileId: 'profile-9',
      tokens: { ...provider.issue(), refreshToken: 'old' },
      now: NOW - 10,
    });
    await tokens.markReauthRequired('profile-9', 1, 'invalid_grant', NOW - 5);

    const result = await callback(`code=c&state=${STATE}`);

    expect(result.statusCode).toBe(200);
    expect(events.published.map((e) => e.type)).toEqual(['token.recovered']);
    expect(entries()).toContainEqual(
      expect.objectContaining({ message: 'user connected', previousStatus: 'reauth_required' }),
    );
  });

  it('completes the login when the event cannot be published (EventBridge down)', async () => {
    await started();
    events.failing = true;

    const result = await callback(`code=c&state=${STATE}`);

    expect(result.statusCode).toBe(200);
    expect(result.body).toContain('Your Kroger account is connected.');
    expect(tokens.raw('profile-9')?.accessToken).toBe('access-1');
    expect(entries()).toContainEqual(
      expect.objectContaining({ level: 'ERROR', message: 'could not publish event', event: 'token.connected' }),
    );
  });

  it.each([
    ['access_denied', 403, 'You cancelled the sign-in or did not approve access, so nothing was connected.'],
    ['server_error', 400, 'Kroger had a problem completing the sign-in. Please try again.'],
  ])(
    'answers a provider error "%s" with %i, its description escaped, and no token request',
    async (error, status, text) => {
      await started();

      const result = await callback(`error=${error}&error_description=%3Cb%3Eno%3C%2Fb%3E&state=${STATE}`);

      expect(result.statusCode).toBe(status);
      expect(result.body).toContain(text);
      expect(result.body).toContain('<p class="detail">Kroger said: &#60;b&#62;no&#60;/b&#62;</p>');
      expect(result.cookies).toEqual([cleared()]);
      expect(provider.total()).toBe(0);
      expect(tokens.items.size).toBe(0);
      expect(entries()).toContainEqual(
        expect.objectContaining({ level: 'INFO', message: 'provider returned an error', oauthError: error }),
      );
    },
  );

  it('shows no detail line for a provider error without a description', async () => {
    await started();

    const result = await callback(`error=access_denied&state=${STATE}`);

    expect(result.body).not.toContain('class="detail"');
  });

  it.each([
    ['an unknown state', `code=c&state=other`, [COOKIE], 400, 'CALLBACK_INVALID_STATE'],
    [
      'another browser',
      `code=c&state=${STATE}`,
      [`${bindingCookieName(STATE)}=someone-else`],
      400,
      'CALLBACK_BROWSER_MISMATCH',
    ],
    ['no cookie', `code=c&state=${STATE}`, null, 400, 'CALLBACK_BROWSER_MISMATCH'],
  ])('refuses %s before any token request, clearing no cookie', async (_n, query, cookies, status, code) => {
    await started();

    const result = await handleCallback(getEvent('/callback', query, cookies ?? undefined), deps());

    expect(result.statusCode).toBe(status);
    expect(result.cookies).toBeUndefined();
    expect(provider.total()).toBe(0);
    expect(tokens.calls).toEqual([]);
    expect(entries()).toContainEqual(expect.objectContaining({ message: 'request refused', errorCode: code }));
  });

  it.each([
    ['no parameters', '', 400],
    ['an oversized code', `state=${STATE}&code=${'c'.repeat(2049)}`, 400],
    ['an oversized query', `state=${STATE}&code=${'c'.repeat(5000)}`, 414],
  ])('refuses %s before any I/O, with its own status', async (_name, query, status) => {
    await started();
    const calls = sessions.calls.length;

    const result = await callback(query);

    expect(result.statusCode).toBe(status);
    expect(sessions.calls).toHaveLength(calls);
    expect(tokens.calls).toEqual([]);
    expect(provider.total()).toBe(0);
  });

  it.each([
    ['a refused code', new InvalidGrantError('refused'), 400, 'The sign-in code was already used or has expired.'],
    ['an outage', new ProviderUnavailableError('down'), 503, 'Nothing was saved. Please try again in a few minutes.'],
    ['a bad answer', new ProviderResponseError('bad'), 502, 'Kroger gave an unexpected answer, so nothing was saved.'],
    ['a bug', new TypeError('boom'), 500, 'Nothing was saved. Please try again later.'],
  ])(
    'answers %s at the token endpoint with its status, storing nothing and clearing the cookie',
    async (_n, error, status, text) => {
      await started();
      provider.onExchange = async () => {
        throw error;
      };

      const result = await callback(`code=c&state=${STATE}`);

      expect(result.statusCode).toBe(status);
      expect(result.body).toContain(text);
      expect(result.cookies).toEqual([cleared()]);
      expect(tokens.items.size).toBe(0);
      expect(events.published).toEqual([]);
    },
  );

  it('refuses a token response without a refresh token: the broker could not keep it fresh', async () => {
    await started();
    provider.onExchange = async () => provider.issue({ refreshToken: undefined });

    const result = await callback(`code=c&state=${STATE}`);

    expect(result.statusCode).toBe(502);
    expect(provider.calls.fetchProfileId).toBe(0);
    expect(tokens.items.size).toBe(0);
    expect(entries()).toContainEqual(
      expect.objectContaining({
        message: 'provider gave an unexpected response',
        error: expect.objectContaining({
          message: 'the token response has no "refresh_token": the broker could not keep it fresh',
        }),
      }),
    );
  });

  it('reads the clock when no time is injected', async () => {
    const now = Math.floor(Date.now() / 1000);
    await sessions.putAttempt({ state: STATE, bindingHash: hashBinding('binding-1'), expiresAt: now + 5 });

    const result = await callback(`code=c&state=${STATE}`, [COOKIE], { ...deps(), now: undefined });

    expect(result.statusCode).toBe(200);
    expect(tokens.raw('profile-9')?.tokensIssuedAt).toBeGreaterThanOrEqual(now);
  });
});
