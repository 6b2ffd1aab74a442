/**
 * GET /callback, fast: the real flow over the in-memory stores, a scripted provider and a recording
 * event publisher. test/integration/flow.test.ts runs it against DynamoDB Local and the sandbox.
 * The callback answers with a redirect (to the return URL, or 303 to its own clean path with the
 * outcome in a result cookie); `outcomeOf` reads that cookie, `follow` renders the clean page.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { CONNECT_CODE_LENGTH, hashConnectCode, PENDING_CONNECTION_TTL_SECONDS } from '../../functions/core/connect';
import {
  InvalidGrantError,
  KeyUnavailableError,
  ProviderResponseError,
  ProviderUnavailableError,
} from '../../functions/core/errors';
import type { HttpResult } from '../../functions/core/http';
import { bindingCookieName, hashBinding } from '../../functions/core/login';
import { decodeOutcome, type Outcome, RESULT_COOKIE } from '../../functions/core/result-page';
import { scheduleAfterTokens } from '../../functions/core/tokens';
import { type CallbackDeps, handleCallback, UNKEPT_REVOKE_TIMEOUT_MS } from '../../functions/flows/callback-flow';
import { cookiePair, getEvent } from '../support/events';
import { FakeProvider, RecordingEvents } from '../support/fakes';
import { captureLogger } from '../support/logs';
import { MemorySessionStore } from '../support/memory-session-store';
import { activeRecord, MemoryTokenStore } from '../support/memory-token-store';

const NOW = 1_000_000;
const STATE = 'state-1';
const COOKIE = `${bindingCookieName(STATE)}=binding-1`;
const CALLBACK = 'https://broker.example.com/kroger/callback';
const RETURN_TO = 'https://app.example.com/done';
/** The connect code the pinned randomness makes: shaped as a real one. */
const CODE = 'K'.repeat(CONNECT_CODE_LENGTH);

let sessions: MemorySessionStore;
let tokens: MemoryTokenStore;
let provider: FakeProvider;
let events: RecordingEvents;
let logs: ReturnType<typeof captureLogger>;

function deps(redirectUri = CALLBACK, flow: CallbackDeps['flow'] = undefined): CallbackDeps {
  return {
    provider: { redirectUri },
    client: provider,
    sessions,
    tokens,
    events,
    logger: logs.logger,
    now: () => NOW,
    random: () => CODE,
    flow: flow ?? { appName: 'the app', publicLogin: true, returnToAllowlist: [RETURN_TO] },
  };
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

/** The result cookie's Set-Cookie, if the answer has one. */
const resultCookie = (result: HttpResult) => result.cookies?.find((c) => c.startsWith(`${RESULT_COOKIE}=`));

/** The outcome the callback handed to its clean page (a 303 to the callback path without a query). */
function outcomeOf(result: HttpResult): Outcome | undefined {
  expect(result.statusCode).toBe(303);
  expect(result.headers.location).toBe(CALLBACK);
  return decodeOutcome(cookiePair(resultCookie(result)).slice(RESULT_COOKIE.length + 1));
}

/** The clean page the browser is sent to, rendered as the callback renders it. */
const follow = (result: HttpResult) =>
  handleCallback(getEvent('/callback', '', [cookiePair(resultCookie(result))]), deps());

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
  it('exchanges the code with the verifier, stores the tokens under the profile id and shows "connected"', async () => {
    await started();
    const exchanged: unknown[] = [];
    provider.onExchange = async (input) => {
      exchanged.push(input);
      return provider.issue();
    };

    const result = await callback(`code=code-1&state=${STATE}&iss=https%3A%2F%2Fidp`);

    expect(outcomeOf(result)).toEqual({ kind: 'connected', via: 'public' });
    expect(result.cookies).toEqual([
      cleared(),
      `${cookiePair(resultCookie(result))}; Path=/kroger/callback; Max-Age=300; HttpOnly; SameSite=Lax; Secure`,
    ]);
    const page = await follow(result);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<title>Your Kroger account is connected</title>');
    expect(exchanged).toEqual([{ code: 'code-1', state: STATE, iss: 'https://idp', codeVerifier: 'verifier-1' }]);
    expect(tokens.raw('profile-9')).toMatchObject({
      profileId: 'profile-9',
      accessToken: 'access-1',
      refreshToken: 'refresh-1',
      status: 'active',
      tokensIssuedAt: NOW,
      version: 1,
      boundBy: 'public',
      refreshShard: scheduleAfterTokens('profile-9', { expiresAt: NOW + 1800 }, NOW).shard,
      nextRefreshAt: NOW + 1800,
    });
    expect(events.published).toEqual([
      {
        type: 'token.connected',
        detail: { userId: 'profile-9', profileId: 'profile-9', at: new Date(NOW * 1000).toISOString() },
      },
    ]);
    expect(entries()).toContainEqual(
      // storeGrant logs through the flow's root logger: no route or request id on this line (yet).
      expect.objectContaining({ level: 'INFO', message: 'user connected', userId: 'profile-9', connectLink: false }),
    );
    expect(JSON.stringify(result) + JSON.stringify(page) + logs.text()).not.toMatch(
      /access-1|refresh-1|code-1|binding-1|verifier-1/,
    );
    expect(sessions.attempts.size).toBe(0);
  });

  it('reads the binding cookie from a raw Cookie header when API Gateway passes no cookies array', async () => {
    await started();
    const event = getEvent('/callback', `code=c&state=${STATE}`);
    event.headers = { ...event.headers, cookie: `other=1; ${COOKIE}` };

    const result = await handleCallback(event, deps());

    expect(outcomeOf(result)).toMatchObject({ kind: 'connected' });
  });

  it('handles an event with no headers, no cookies and no request context', async () => {
    await started();
    const event: Partial<APIGatewayProxyEventV2> = getEvent('/callback', `code=c&state=${STATE}`);
    delete event.headers;
    delete event.requestContext;

    const result = await handleCallback(event as APIGatewayProxyEventV2, deps());

    expect(outcomeOf(result)).toMatchObject({ kind: 'wrong-browser' });
    expect(entries()).toContainEqual(
      expect.objectContaining({ route: 'callback', errorCode: 'CALLBACK_BROWSER_MISMATCH' }),
    );
    expect(provider.total()).toBe(0);
  });

  it('sets its cookies without Secure when the callback is served over plain http', async () => {
    await started();

    const result = await callback(`code=c&state=${STATE}`, [COOKIE], deps('http://localhost:3000/callback'));

    expect(result.cookies?.[0]).toBe(cleared('/callback', false));
    expect(result.cookies?.[1]).toMatch(/; Path=\/callback; Max-Age=300; HttpOnly; SameSite=Lax$/);
  });

  it('keeps a connect link sign-in pending for the app user and sends the code to the return URL', async () => {
    await started({ appUserId: 'app-7', returnTo: RETURN_TO });

    const result = await callback(`code=c&state=${STATE}`);

    expect(result.statusCode).toBe(302);
    expect(result.headers.location).toBe(`${RETURN_TO}?connect_code=${CODE}`);
    expect(result.cookies).toEqual([cleared()]);
    // Nothing is bound yet: the app completes the connection for its own signed-in user.
    expect(tokens.items.size).toBe(0);
    expect(events.published).toEqual([]);
    expect([...sessions.pendings.values()].map((p) => p.pending)).toEqual([
      {
        codeHash: hashConnectCode(CODE),
        appUserId: 'app-7',
        profileId: 'profile-9',
        tokens: provider.issue({ accessToken: 'access-1', refreshToken: 'refresh-1' }),
        expiresAt: NOW + PENDING_CONNECTION_TTL_SECONDS,
        closedRetention: NOW + PENDING_CONNECTION_TTL_SECONDS + 86_400,
      },
    ]);
    expect(entries()).toContainEqual(
      expect.objectContaining({ message: 'connection pending', appUserId: 'app-7', returnTo: true }),
    );
  });

  it('shows the connect code on the clean page when the link has no return URL', async () => {
    await started({ appUserId: 'app-7' });

    const result = await callback(`code=c&state=${STATE}`);

    expect(outcomeOf(result)).toEqual({ kind: 'pending', via: 'link', connectCode: CODE });
    expect((await follow(result)).body).toContain(CODE);
  });

  it('says the user recovered when a login replaces a dead grant', async () => {
    await started();
    tokens.seed(activeRecord('profile-9', { status: 'reauth_required', statusReason: 'invalid_grant', version: 2 }));

    const result = await callback(`code=c&state=${STATE}`);

    expect(outcomeOf(result)).toMatchObject({ kind: 'connected' });
    expect(tokens.raw('profile-9')).toMatchObject({ status: 'active', version: 3, accessToken: 'access-1' });
    expect(events.published.map((e) => e.type)).toEqual(['token.recovered']);
    expect(entries()).toContainEqual(
      expect.objectContaining({ message: 'user connected', previousStatus: 'reauth_required' }),
    );
  });

  it('completes the login when the event cannot be published (EventBridge down)', async () => {
    await started();
    events.failing = true;

    const result = await callback(`code=c&state=${STATE}`);

    expect(outcomeOf(result)).toEqual({ kind: 'connected', via: 'public' });
    expect(tokens.raw('profile-9')?.accessToken).toBe('access-1');
    expect(entries()).toContainEqual(
      expect.objectContaining({ level: 'ERROR', message: 'could not publish event', event: 'token.connected' }),
    );
  });

  it('never lets a public sign-in replace a user bound through a connect link', async () => {
    await started();
    tokens.seed(activeRecord('profile-9', { boundBy: 'connect', accessToken: 'linked' }));

    const result = await callback(`code=c&state=${STATE}`);

    expect(outcomeOf(result)).toMatchObject({ kind: 'link-bound' });
    expect((await follow(result)).statusCode).toBe(409);
    expect(tokens.raw('profile-9')).toMatchObject({ accessToken: 'linked', version: 1 });
    expect(events.published).toEqual([]);
  });

  describe('a grant Kroger issued that the broker does not keep', () => {
    it('is revoked when a public sign-in is refused for a link-bound user', async () => {
      await started();
      tokens.seed(activeRecord('profile-9', { boundBy: 'connect', accessToken: 'linked' }));

      const result = await callback(`code=c&state=${STATE}`);

      expect(outcomeOf(result)).toMatchObject({ kind: 'link-bound' });
      expect(provider.revoked).toEqual(['refresh-1']);
      // Within its own short limit, so the page still comes in time after two slow provider calls.
      expect(provider.revokeTimeouts).toEqual([UNKEPT_REVOKE_TIMEOUT_MS]);
      expect(UNKEPT_REVOKE_TIMEOUT_MS).toBe(3000);
      expect(entries()).toContainEqual(
        expect.objectContaining({ level: 'INFO', message: 'unkept grant revoked at the provider' }),
      );
    });

    it('is revoked when the profile lookup fails after the exchange', async () => {
      await started();
      jest.spyOn(provider, 'fetchProfileId').mockRejectedValue(new ProviderUnavailableError('profile down'));

      const result = await callback(`code=c&state=${STATE}`);

      expect(outcomeOf(result)).toMatchObject({ kind: 'unavailable' });
      expect(provider.revoked).toEqual(['refresh-1']);
      expect(tokens.items.size).toBe(0);
    });

    it('is revoked when the field key cannot seal it, for a public sign-in and for a connect link', async () => {
      await started();
      jest.spyOn(tokens, 'saveLogin').mockRejectedValue(new KeyUnavailableError('kms down'));
      expect(outcomeOf(await callback(`code=c&state=${STATE}`))).toMatchObject({ kind: 'storage-unavailable' });

      await started({ appUserId: 'app-user-1' });
      jest.spyOn(sessions, 'putPending').mockRejectedValue(new KeyUnavailableError('kms down'));
      expect(outcomeOf(await callback(`code=c&state=${STATE}`))).toMatchObject({ kind: 'storage-unavailable' });

      expect(provider.revoked).toEqual(['refresh-1', 'refresh-2']);
    });

    it('is not revoked after a write whose outcome is unknown: the write may have landed', async () => {
      await started();
      jest.spyOn(tokens, 'saveLogin').mockRejectedValue(new Error('socket hang up'));

      const result = await callback(`code=c&state=${STATE}`);

      expect(outcomeOf(result)).toMatchObject({ kind: 'internal' });
      expect(provider.calls.revoke).toBe(0);
    });

    it('is never revoked once it is kept, as a stored grant or as a pending connection', async () => {
      await started();
      expect(outcomeOf(await callback(`code=c&state=${STATE}`))).toMatchObject({ kind: 'connected' });
      await started({ appUserId: 'app-user-1' });
      expect(outcomeOf(await callback(`code=c&state=${STATE}`))).toMatchObject({ kind: 'pending' });

      expect(provider.calls.revoke).toBe(0);
    });

    it('leaves the page as it was when revocation fails or has no endpoint, logging no token', async () => {
      await started();
      tokens.seed(activeRecord('profile-9', { boundBy: 'connect', accessToken: 'linked' }));
      provider.onRevoke = async () => {
        throw new ProviderUnavailableError('revocation endpoint down');
      };
      const failed = await callback(`code=c&state=${STATE}`);
      await started();
      provider.onRevoke = async () => false;
      const noEndpoint = await callback(`code=c&state=${STATE}`);

      expect(outcomeOf(failed)).toMatchObject({ kind: 'link-bound' });
      expect(outcomeOf(noEndpoint)).toMatchObject({ kind: 'link-bound' });
      expect(entries()).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            level: 'WARN',
            message: 'could not revoke the unkept grant at the provider',
            error: expect.objectContaining({ name: 'ProviderUnavailableError', message: 'revocation endpoint down' }),
          }),
          expect.objectContaining({
            level: 'WARN',
            message: 'unkept grant left live at the provider: no revocation endpoint is configured',
          }),
        ]),
      );
      expect(JSON.stringify(entries())).not.toMatch(/refresh-[12]|access-[12]/);
    });
  });

  it('refuses a public attempt started before public sign-in was turned off, before any token request', async () => {
    await started();

    const result = await callback(
      `code=c&state=${STATE}`,
      [COOKIE],
      deps(CALLBACK, { appName: 'the app', publicLogin: false, returnToAllowlist: [] }),
    );

    expect(outcomeOf(result)).toMatchObject({ kind: 'public-off' });
    expect(provider.total()).toBe(0);
  });

  it("still finishes a connect link's sign-in while public sign-in is off", async () => {
    await started({ appUserId: 'app-user-1' });

    const result = await callback(
      `code=c&state=${STATE}`,
      [COOKIE],
      deps(CALLBACK, { appName: 'the app', publicLogin: false, returnToAllowlist: [] }),
    );

    expect(outcomeOf(result)).toMatchObject({ kind: 'pending', via: 'link' });
    expect(provider.calls.exchangeCode).toBe(1);
  });

  it.each([
    ['access_denied', 'cancelled', 403],
    ['server_error', 'provider-error', 400],
  ])('answers a provider error "%s" with the %s page and no token request', async (error, kind, status) => {
    await started();

    const result = await callback(`error=${error}&error_description=%3Cb%3Eno%3C%2Fb%3E&state=${STATE}`);

    expect(outcomeOf(result)).toMatchObject({ kind, via: 'public' });
    const page = await follow(result);
    expect(page.statusCode).toBe(status);
    // The provider's own words never reach the page.
    expect(page.body).not.toMatch(/&#60;b&#62;no|<b>no/);
    expect(result.cookies?.[0]).toBe(cleared());
    expect(provider.total()).toBe(0);
    expect(tokens.items.size).toBe(0);
    expect(entries()).toContainEqual(
      expect.objectContaining({ level: 'INFO', message: 'provider returned an error', oauthError: error }),
    );
  });

  it.each([
    ['an unknown state', `code=c&state=other`, [COOKIE], 'attempt-invalid', 'CALLBACK_INVALID_STATE'],
    [
      'another browser',
      `code=c&state=${STATE}`,
      [`${bindingCookieName(STATE)}=someone-else`],
      'wrong-browser',
      'CALLBACK_BROWSER_MISMATCH',
    ],
    ['no cookie', `code=c&state=${STATE}`, null, 'wrong-browser', 'CALLBACK_BROWSER_MISMATCH'],
  ])('refuses %s before any token request, clearing no binding cookie', async (_n, query, cookies, kind, code) => {
    await started();

    const result = await handleCallback(getEvent('/callback', query, cookies ?? undefined), deps());

    expect(outcomeOf(result)).toMatchObject({ kind });
    expect(result.cookies).toEqual([resultCookie(result)]);
    expect(provider.total()).toBe(0);
    expect(tokens.calls).toEqual([]);
    expect(entries()).toContainEqual(expect.objectContaining({ message: 'request refused', errorCode: code }));
    // The attempt stays for its own browser (or never existed).
    expect(sessions.attempts.has(STATE)).toBe(true);
  });

  it.each([
    ['no parameters', 'x=1', 400],
    ['an oversized code', `state=${STATE}&code=${'c'.repeat(2049)}`, 400],
    ['an oversized query', `state=${STATE}&code=${'c'.repeat(5000)}`, 414],
  ])('refuses %s before any I/O', async (_name, query, status) => {
    await started();
    const calls = sessions.calls.length;

    const result = await callback(query);

    expect(outcomeOf(result)).toMatchObject({ kind: 'malformed' });
    expect(sessions.calls).toHaveLength(calls);
    expect(tokens.calls).toEqual([]);
    expect(provider.total()).toBe(0);
    expect(entries()).toContainEqual(expect.objectContaining({ message: 'request refused', status }));
  });

  it.each([
    ['a refused code', new InvalidGrantError('refused'), 'code-refused', 400],
    ['an outage', new ProviderUnavailableError('down'), 'unavailable', 503],
    ['a bad answer', new ProviderResponseError('bad'), 'bad-response', 502],
    ['a bug', new TypeError('boom'), 'internal', 500],
  ])(
    'answers %s at the token endpoint with its page, storing nothing and clearing the cookie',
    async (_n, error, kind, status) => {
      await started();
      provider.onExchange = async () => {
        throw error;
      };

      const result = await callback(`code=c&state=${STATE}`);

      expect(outcomeOf(result)).toMatchObject({ kind });
      expect((await follow(result)).statusCode).toBe(status);
      expect(result.cookies?.[0]).toBe(cleared());
      expect(tokens.items.size).toBe(0);
      expect(events.published).toEqual([]);
    },
  );

  it('answers 503 "cannot store connections" when the field key cannot open the attempt, before Kroger is called', async () => {
    await started();
    jest
      .spyOn(sessions, 'consumeAttempt')
      .mockRejectedValue(new KeyUnavailableError('kms:Decrypt failed (ThrottlingException)'));

    const result = await callback(`code=c&state=${STATE}`);

    expect(outcomeOf(result)).toMatchObject({ kind: 'storage-unavailable' });
    expect((await follow(result)).statusCode).toBe(503);
    expect(provider.total()).toBe(0);
    expect(tokens.items.size).toBe(0);
    expect(entries()).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        message: 'the field encryption key could not be used',
        errorCode: 'KEY_UNAVAILABLE',
      }),
    );
  });

  it('answers 503 "cannot store connections" when the field key cannot seal the tokens, storing and announcing nothing', async () => {
    await started();
    jest
      .spyOn(tokens, 'saveLogin')
      .mockRejectedValue(new KeyUnavailableError('kms:GenerateDataKey failed (KMSInvalidStateException)'));

    const result = await callback(`code=c&state=${STATE}`);

    expect(outcomeOf(result)).toMatchObject({ kind: 'storage-unavailable' });
    expect(result.cookies?.[0]).toBe(cleared());
    expect(tokens.items.size).toBe(0);
    expect(events.published).toEqual([]);
    expect(provider.calls.exchangeCode).toBe(1);
    // The tokens Kroger issued (the fake's first: access-1, refresh-1) are in no log line.
    expect(JSON.stringify(entries())).not.toMatch(/access-1|refresh-1/);
  });

  it('refuses a token response without a refresh token: the broker could not keep it fresh', async () => {
    await started();
    provider.onExchange = async () => provider.issue({ refreshToken: undefined });

    const result = await callback(`code=c&state=${STATE}`);

    expect(outcomeOf(result)).toMatchObject({ kind: 'bad-response' });
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

    expect(outcomeOf(result)).toMatchObject({ kind: 'connected' });
    expect(tokens.raw('profile-9')?.tokensIssuedAt).toBeGreaterThanOrEqual(now);
  });
});
