/**
 * The sandbox provider behaves like Kroger's OAuth2 API where the broker depends on it, and its
 * test controls do what they say. Plain fetch, no broker code: these tests pin the sandbox itself.
 */
import { createHash, randomBytes } from 'node:crypto';

import { completeAuthorization } from '../../infra/local/sandbox/headless';
import { startSandbox, type GrantRefusal, type SandboxHandle } from '../../infra/local/sandbox/launch';
import { START_REAL_PARTS_TIMEOUT_MS } from '../support/stores';

const REDIRECT_URI = 'http://localhost:3999/callback';
const ACCESS_TTL = 600;

let sandbox: SandboxHandle;

beforeAll(async () => {
  sandbox = await startSandbox({
    port: 0,
    // Characters that must be form-urlencoded inside HTTP Basic (RFC 6749 section 2.3.1).
    clientId: 'broker:test client',
    clientSecret: 's3cret+/=:%',
    redirectUris: [REDIRECT_URI],
    accessTokenTtlSeconds: ACCESS_TTL,
  });
}, START_REAL_PARTS_TIMEOUT_MS);

afterAll(async () => {
  await sandbox?.stop();
});

beforeEach(async () => {
  await sandbox.failToken('none');
  await sandbox.refuseToken('none');
  await sandbox.setRotation({ omitRefreshToken: false });
  await sandbox.resetStats();
});

interface TokenResponse {
  access_token: string;
  refresh_token?: string;
  expires_in: number;
  token_type: string;
  scope?: string;
}

interface Login {
  readonly verifier: string;
  readonly state: string;
  readonly callback: URL;
}

/** A profile id no other test uses. */
function newProfileId(): string {
  return `profile-${randomBytes(6).toString('hex')}`;
}

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

function authorizeUrl(params: { state: string; challenge: string; scope?: string; redirectUri?: string }): string {
  const url = new URL(`${sandbox.oauth2BaseUrl}/authorize`);
  url.search = new URLSearchParams({
    client_id: sandbox.clientId,
    redirect_uri: params.redirectUri ?? REDIRECT_URI,
    response_type: 'code',
    scope: params.scope ?? 'product.compact cart.basic:write profile.compact',
    state: params.state,
    code_challenge: params.challenge,
    code_challenge_method: 'S256',
  }).toString();
  return url.href;
}

/** Signs in through the sandbox's pages; returns the callback URL and the PKCE verifier. */
async function login(profileId: string, opts: { approve?: boolean; scope?: string } = {}): Promise<Login> {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(16).toString('base64url');
  const callback = await completeAuthorization(authorizeUrl({ state, challenge, scope: opts.scope }), {
    login: profileId,
    approve: opts.approve,
  });
  return { verifier, state, callback };
}

function postToken(
  params: Record<string, string>,
  secret = sandbox.clientSecret,
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(`${sandbox.oauth2BaseUrl}/token`, {
    method: 'POST',
    headers: {
      authorization: basic(sandbox.clientId, secret),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams(params).toString(),
    signal,
  });
}

function exchangeCode(session: Login, overrides: Record<string, string> = {}): Promise<Response> {
  return postToken({
    grant_type: 'authorization_code',
    code: session.callback.searchParams.get('code') ?? '',
    redirect_uri: REDIRECT_URI,
    code_verifier: session.verifier,
    ...overrides,
  });
}

function refresh(refreshToken: string, secret?: string, signal?: AbortSignal): Promise<Response> {
  return postToken({ grant_type: 'refresh_token', refresh_token: refreshToken }, secret, signal);
}

/** Signs in and exchanges the code: a fresh grant for `profileId`. */
async function tokensFor(profileId: string, scope?: string): Promise<TokenResponse> {
  const res = await exchangeCode(await login(profileId, { scope }));
  expect(res.status).toBe(200);
  return (await res.json()) as TokenResponse;
}

function profile(accessToken?: string): Promise<Response> {
  return fetch(`${sandbox.apiBaseUrl}/v1/identity/profile`, {
    headers: accessToken === undefined ? {} : { authorization: `Bearer ${accessToken}` },
  });
}

async function expectOAuthError(res: Response, status: number, error: string): Promise<void> {
  expect({ status: res.status, error: ((await res.json()) as { error?: string }).error }).toEqual({ status, error });
}

describe('Sandbox: authorization code flow', () => {
  it('redirects back with code, state and iss, and issues Kroger-shaped tokens for a valid PKCE verifier', async () => {
    // Prepare
    const session = await login(newProfileId());

    // Act
    const res = await exchangeCode(session);

    // Assess
    expect(session.callback.origin + session.callback.pathname).toBe(REDIRECT_URI);
    expect(session.callback.searchParams.get('state')).toBe(session.state);
    expect(session.callback.searchParams.get('iss')).toBe(sandbox.issuer);
    expect(res.status).toBe(200);
    const body = (await res.json()) as TokenResponse;
    expect(body).toEqual(
      expect.objectContaining({
        access_token: expect.any(String),
        refresh_token: expect.any(String),
        expires_in: ACCESS_TTL,
        token_type: expect.stringMatching(/^bearer$/i),
      }),
    );
  });

  it('answers invalid_grant for a wrong code_verifier', async () => {
    const session = await login(newProfileId());

    const res = await exchangeCode(session, { code_verifier: randomBytes(32).toString('base64url') });

    await expectOAuthError(res, 400, 'invalid_grant');
  });

  it('answers invalid_grant for a code used twice', async () => {
    const session = await login(newProfileId());
    expect((await exchangeCode(session)).status).toBe(200);

    const res = await exchangeCode(session);

    await expectOAuthError(res, 400, 'invalid_grant');
  });

  it('answers 401 invalid_client for a wrong client secret, without using the code', async () => {
    const session = await login(newProfileId());

    const res = await postToken(
      {
        grant_type: 'authorization_code',
        code: session.callback.searchParams.get('code') ?? '',
        redirect_uri: REDIRECT_URI,
        code_verifier: session.verifier,
      },
      'wrong-secret',
    );

    await expectOAuthError(res, 401, 'invalid_client');
    expect((await exchangeCode(session)).status).toBe(200);
  });

  it('answers 401 invalid_client when the client authenticates in the body instead of HTTP Basic', async () => {
    const session = await login(newProfileId());

    const res = await fetch(`${sandbox.oauth2BaseUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: session.callback.searchParams.get('code') ?? '',
        redirect_uri: REDIRECT_URI,
        code_verifier: session.verifier,
        client_id: sandbox.clientId,
        client_secret: sandbox.clientSecret,
      }).toString(),
    });

    await expectOAuthError(res, 401, 'invalid_client');
  });

  it('redirects with error=access_denied and the state when the user clicks Cancel', async () => {
    const session = await login(newProfileId(), { approve: false });

    expect(session.callback.origin + session.callback.pathname).toBe(REDIRECT_URI);
    expect(session.callback.searchParams.get('error')).toBe('access_denied');
    expect(session.callback.searchParams.get('state')).toBe(session.state);
    expect(session.callback.searchParams.has('code')).toBe(false);
  });

  it('shows an error page instead of redirecting to an unregistered redirect_uri', async () => {
    const url = authorizeUrl({ state: 's', challenge: 'c'.repeat(43), redirectUri: 'http://localhost:3999/other' });

    await expect(completeAuthorization(url, { login: newProfileId() })).rejects.toThrow(/answered 400 .*redirect_uri/);
  });
});

describe('Sandbox: profile endpoint', () => {
  it('answers the login as the profile id', async () => {
    const profileId = newProfileId();
    const tokens = await tokensFor(profileId);

    const res = await profile(tokens.access_token);

    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { id: profileId } });
  });

  it('answers 401 without an access token', async () => {
    const res = await profile();

    await expectOAuthError(res, 401, 'invalid_token');
  });

  it('answers 401 for an unknown access token', async () => {
    const res = await profile(randomBytes(32).toString('base64url'));

    await expectOAuthError(res, 401, 'invalid_token');
  });

  it('answers 403 for a token without the profile.compact scope', async () => {
    const tokens = await tokensFor(newProfileId(), 'product.compact');

    const res = await profile(tokens.access_token);

    await expectOAuthError(res, 403, 'insufficient_scope');
  });
});

describe('Sandbox: refresh', () => {
  it('rotates the refresh token and issues a working access token', async () => {
    const profileId = newProfileId();
    const first = await tokensFor(profileId);

    const res = await refresh(first.refresh_token ?? '');

    expect(res.status).toBe(200);
    const second = (await res.json()) as TokenResponse;
    expect(second.refresh_token).toEqual(expect.any(String));
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second.access_token).not.toBe(first.access_token);
    expect(second.expires_in).toBe(ACCESS_TTL);
    expect(await (await profile(second.access_token)).json()).toEqual({ data: { id: profileId } });
  });

  it('answers invalid_grant to a reused refresh token and then revokes the whole grant', async () => {
    const first = await tokensFor(newProfileId());
    const second = (await (await refresh(first.refresh_token ?? '')).json()) as TokenResponse;

    const reuse = await refresh(first.refresh_token ?? '');

    await expectOAuthError(reuse, 400, 'invalid_grant');
    // Reuse means the token may have leaked: the rotated refresh token dies with the grant.
    await expectOAuthError(await refresh(second.refresh_token ?? ''), 400, 'invalid_grant');
    expect((await profile(second.access_token)).status).toBe(401);
  });

  it('answers invalid_grant for an unknown refresh token', async () => {
    const res = await refresh(randomBytes(32).toString('base64url'));

    await expectOAuthError(res, 400, 'invalid_grant');
  });

  it('omits the refresh token when asked to, and the old one keeps working', async () => {
    const first = await tokensFor(newProfileId());
    await sandbox.setRotation({ omitRefreshToken: true });

    const once = await refresh(first.refresh_token ?? '');
    const twice = await refresh(first.refresh_token ?? '');

    expect(once.status).toBe(200);
    expect(twice.status).toBe(200);
    const body = (await twice.json()) as TokenResponse;
    expect(body.access_token).toEqual(expect.any(String));
    expect(body).not.toHaveProperty('refresh_token');
  });

  it('answers invalid_grant for every refresh token of an account after revokeAccount', async () => {
    const profileId = newProfileId();
    const [a, b] = [await tokensFor(profileId), await tokensFor(profileId)];
    const other = await tokensFor(newProfileId());

    await sandbox.revokeAccount(profileId);

    await expectOAuthError(await refresh(a.refresh_token ?? ''), 400, 'invalid_grant');
    await expectOAuthError(await refresh(b.refresh_token ?? ''), 400, 'invalid_grant');
    expect((await profile(a.access_token)).status).toBe(401);
    expect((await refresh(other.refresh_token ?? '')).status).toBe(200);
  });

  it('revokes a refresh token at the RFC 7009 endpoint', async () => {
    const tokens = await tokensFor(newProfileId());

    const res = await fetch(sandbox.revocationUrl, {
      method: 'POST',
      headers: {
        authorization: basic(sandbox.clientId, sandbox.clientSecret),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: tokens.refresh_token ?? '', token_type_hint: 'refresh_token' }).toString(),
    });

    expect(res.status).toBe(200);
    await expectOAuthError(await refresh(tokens.refresh_token ?? ''), 400, 'invalid_grant');
  });
});

describe('Sandbox: test controls', () => {
  it('counts token requests by grant type, rejected ones included, until reset', async () => {
    const tokens = await tokensFor(newProfileId());
    await refresh(tokens.refresh_token ?? '');
    await postToken({ grant_type: 'refresh_token', refresh_token: 'x' }, 'wrong-secret');

    expect(await sandbox.stats()).toEqual({ authorizationCode: 1, refreshToken: 2 });
    await sandbox.resetStats();
    expect(await sandbox.stats()).toEqual({ authorizationCode: 0, refreshToken: 0 });
  });

  it('answers 503 to the next token request only, without consuming the refresh token', async () => {
    const tokens = await tokensFor(newProfileId());
    await sandbox.failToken('503', 1);

    const failed = await refresh(tokens.refresh_token ?? '');
    const retried = await refresh(tokens.refresh_token ?? '');

    expect(failed.status).toBe(503);
    expect(retried.status).toBe(200);
    expect(await sandbox.stats()).toEqual({ authorizationCode: 1, refreshToken: 2 });
  });

  it('answers 503 until failToken("none") when no count is given', async () => {
    const tokens = await tokensFor(newProfileId());
    await sandbox.failToken('503');

    const statuses = [
      (await refresh(tokens.refresh_token ?? '')).status,
      (await refresh(tokens.refresh_token ?? '')).status,
    ];
    await sandbox.failToken('none');

    expect(statuses).toEqual([503, 503]);
    expect((await refresh(tokens.refresh_token ?? '')).status).toBe(200);
  });

  it('never answers a token request in hang mode, so the client times out', async () => {
    const tokens = await tokensFor(newProfileId());
    await sandbox.failToken('hang', 1);

    const hung = fetch(`${sandbox.oauth2BaseUrl}/token`, {
      method: 'POST',
      headers: {
        authorization: basic(sandbox.clientId, sandbox.clientSecret),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token ?? '' }).toString(),
      signal: AbortSignal.timeout(500),
    });

    await expect(hung).rejects.toMatchObject({ name: 'TimeoutError' });
    expect((await refresh(tokens.refresh_token ?? '')).status).toBe(200);
  });

  it('rejects an unknown failure mode', async () => {
    await expect(sandbox.failToken('500' as 'none')).rejects.toThrow(/answered 400/);
  });
});

/** What a test checks of a token response: status, the headers that matter, and the raw body. */
async function answer(res: Response): Promise<{
  status: number;
  contentType: string | null;
  cacheControl: string | null;
  wwwAuthenticate: string | null;
  body: string;
}> {
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    cacheControl: res.headers.get('cache-control'),
    wwwAuthenticate: res.headers.get('www-authenticate'),
    body: await res.text(),
  };
}

const KROGER_INVALID_REQUEST = { error: 'invalid_request', error_description: 'Missing/Invalid Refresh Token' };
const KROGER_ERRORS_SHAPE = {
  errors: { timestamp: expect.any(Number), code: 'AUTH-1007-400', reason: 'Missing/Invalid Refresh Token' },
};
const JSON_TYPE = 'application/json; charset=utf-8';

/** Expects a working refresh: the refused request used up nothing. */
async function expectRefreshWorks(refreshToken: string | undefined): Promise<void> {
  const res = await refresh(refreshToken ?? '');
  expect(res.status).toBe(200);
  expect(((await res.json()) as TokenResponse).access_token).toEqual(expect.any(String));
}

describe('Sandbox: refuseToken', () => {
  it('answers kroger-invalid-request with a 400 invalid_request, and the refresh token still works', async () => {
    const tokens = await tokensFor(newProfileId());
    const armed = await sandbox.refuseToken('kroger-invalid-request', { count: 1 });

    const refused = await answer(await refresh(tokens.refresh_token ?? ''));

    expect(armed).toEqual({ mode: 'kroger-invalid-request', count: 1, grantType: 'any', canary: null });
    expect({ ...refused, body: JSON.parse(refused.body) }).toEqual({
      status: 400,
      contentType: JSON_TYPE,
      cacheControl: 'no-store',
      wwwAuthenticate: null,
      body: KROGER_INVALID_REQUEST,
    });
    await expectRefreshWorks(tokens.refresh_token);
    expect(await sandbox.stats()).toEqual({ authorizationCode: 1, refreshToken: 2 });
  });

  it("answers kroger-errors-shape with a 400 in Kroger's errors shape and no OAuth error member", async () => {
    const tokens = await tokensFor(newProfileId());
    await sandbox.refuseToken('kroger-errors-shape', { count: 1 });
    const before = Date.now();

    const refused = await answer(await refresh(tokens.refresh_token ?? ''));

    const body = JSON.parse(refused.body) as { error?: unknown; errors: { timestamp: number } };
    expect({ ...refused, body }).toEqual({
      status: 400,
      contentType: JSON_TYPE,
      cacheControl: 'no-store',
      wwwAuthenticate: null,
      body: KROGER_ERRORS_SHAPE,
    });
    expect(body).not.toHaveProperty('error');
    expect(body.errors.timestamp).toBeGreaterThanOrEqual(before);
    await expectRefreshWorks(tokens.refresh_token);
  });

  it('answers bare-400 with a 400 that has no body and no content type, and the refresh token still works', async () => {
    const tokens = await tokensFor(newProfileId());
    await sandbox.refuseToken('bare-400', { count: 1 });

    const res = await refresh(tokens.refresh_token ?? '');

    expect(res.headers.get('content-length')).toBe('0');
    expect(await answer(res)).toEqual({
      status: 400,
      contentType: null,
      cacheControl: 'no-store',
      wwwAuthenticate: null,
      body: '',
    });
    await expectRefreshWorks(tokens.refresh_token);
  });

  it('answers invalid-client exactly as a wrong secret is answered, until refuseToken("none")', async () => {
    const tokens = await tokensFor(newProfileId());
    const session = await login(newProfileId());
    const wrongSecret = await answer(await refresh(tokens.refresh_token ?? '', 'wrong-secret'));
    await sandbox.refuseToken('invalid-client');

    const refusedRefresh = await answer(await refresh(tokens.refresh_token ?? ''));
    const refusedCode = await answer(await exchangeCode(session));
    await sandbox.refuseToken('none');

    expect(wrongSecret).toEqual({
      status: 401,
      contentType: JSON_TYPE,
      cacheControl: 'no-store',
      wwwAuthenticate: `Basic realm="${sandbox.issuer}", error="invalid_client", error_description="client authentication failed"`,
      body: JSON.stringify({ error: 'invalid_client', error_description: 'client authentication failed' }),
    });
    expect(refusedRefresh).toEqual(wrongSecret);
    expect(refusedCode).toEqual(wrongSecret);
    // The client "fixed": the same code and refresh token work, neither was used up.
    expect((await exchangeCode(session)).status).toBe(200);
    await expectRefreshWorks(tokens.refresh_token);
  });

  it('answers invalid-client-no-challenge with the same 401 but no WWW-Authenticate', async () => {
    const tokens = await tokensFor(newProfileId());
    await sandbox.refuseToken('invalid-client-no-challenge', { count: 1 });

    const refused = await answer(await refresh(tokens.refresh_token ?? ''));

    expect(refused).toEqual({
      status: 401,
      contentType: JSON_TYPE,
      cacheControl: 'no-store',
      wwwAuthenticate: null,
      body: JSON.stringify({ error: 'invalid_client', error_description: 'client authentication failed' }),
    });
    await expectRefreshWorks(tokens.refresh_token);
  });

  it('answers non-json-form with a 200 form-encoded body that starts with the canary as access_token', async () => {
    const tokens = await tokensFor(newProfileId());
    const { canary } = await sandbox.refuseToken('non-json-form', { count: 1 });

    const refused = await answer(await refresh(tokens.refresh_token ?? ''));

    expect(canary).toMatch(/^[\w-]{43}$/);
    expect(refused).toEqual({
      status: 200,
      contentType: 'application/x-www-form-urlencoded',
      cacheControl: 'no-store',
      wwwAuthenticate: null,
      body: `access_token=${canary}&token_type=bearer&expires_in=${ACCESS_TTL}&refresh_token=${canary}`,
    });
    expect(() => JSON.parse(refused.body)).toThrow(SyntaxError);
    await expectRefreshWorks(tokens.refresh_token);
  });

  it('answers non-json-html with a 200 HTML page showing the canary in its first 200 characters', async () => {
    const tokens = await tokensFor(newProfileId());
    const { canary } = await sandbox.refuseToken('non-json-html', { count: 1 });

    const refused = await answer(await refresh(tokens.refresh_token ?? ''));

    expect({ status: refused.status, contentType: refused.contentType }).toEqual({
      status: 200,
      contentType: 'text/html; charset=utf-8',
    });
    expect(refused.body.startsWith(`<!DOCTYPE html><html><body><pre>access_token=${canary}&amp;`)).toBe(true);
    expect(refused.body.slice(0, 200)).toContain(canary);
    expect(() => JSON.parse(refused.body)).toThrow(SyntaxError);
    await expectRefreshWorks(tokens.refresh_token);
  });

  it('answers oversized with a chunked 200 of exactly 5 MiB of valid JSON carrying the canary', async () => {
    const tokens = await tokensFor(newProfileId());
    const { canary } = await sandbox.refuseToken('oversized', { count: 1 });

    const res = await refresh(tokens.refresh_token ?? '');
    const bytes = Buffer.from(await res.arrayBuffer());

    expect({
      status: res.status,
      contentType: res.headers.get('content-type'),
      contentLength: res.headers.get('content-length'),
      transferEncoding: res.headers.get('transfer-encoding'),
      size: bytes.length,
    }).toEqual({
      status: 200,
      contentType: JSON_TYPE,
      contentLength: null,
      transferEncoding: 'chunked',
      size: 5 * 1024 * 1024,
    });
    expect(JSON.parse(bytes.toString('utf8'))).toEqual(
      expect.objectContaining({ access_token: canary, token_type: 'bearer', expires_in: ACCESS_TTL }),
    );
    await expectRefreshWorks(tokens.refresh_token);
  });

  it('keeps serving after a client stops reading an oversized body', async () => {
    const tokens = await tokensFor(newProfileId());
    await sandbox.refuseToken('oversized', { count: 1 });
    const aborter = new AbortController();
    const res = await refresh(tokens.refresh_token ?? '', undefined, aborter.signal);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();

    const first = await reader.read();
    aborter.abort();

    expect(first.done).toBe(false);
    await expect(reader.read()).rejects.toMatchObject({ name: 'AbortError' });
    await expectRefreshWorks(tokens.refresh_token);
  });

  it('answers stalled-body with headers and the start of a body that never finishes', async () => {
    const tokens = await tokensFor(newProfileId());
    const { canary } = await sandbox.refuseToken('stalled-body', { count: 1 });
    const aborter = new AbortController();
    const res = await refresh(tokens.refresh_token ?? '', undefined, aborter.signal);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const expected = `{"access_token":"${canary}",`;

    let received = '';
    while (received.length < expected.length) {
      const chunk = await reader.read();
      if (chunk.done) break;
      received += Buffer.from(chunk.value).toString('utf8');
    }
    const stalled = reader.read();
    setTimeout(() => aborter.abort(), 300);

    expect({ status: res.status, contentType: res.headers.get('content-type'), received }).toEqual({
      status: 200,
      contentType: JSON_TYPE,
      received: expected,
    });
    expect(Number(res.headers.get('content-length'))).toBeGreaterThan(expected.length);
    await expect(stalled).rejects.toMatchObject({ name: 'AbortError' });
    await expectRefreshWorks(tokens.refresh_token);
  });

  it('refuses only the requests of the chosen grant type, and serves the others normally', async () => {
    const session = await login(newProfileId());
    await sandbox.refuseToken('bare-400', { count: 1, grantType: 'refresh_token' });

    const exchanged = await exchangeCode(session);
    const tokens = (await exchanged.json()) as TokenResponse;
    const refused = await refresh(tokens.refresh_token ?? '');

    expect(exchanged.status).toBe(200);
    expect(refused.status).toBe(400);
    expect(await refused.text()).toBe('');
    await expectRefreshWorks(tokens.refresh_token);
    expect(await sandbox.stats()).toEqual({ authorizationCode: 1, refreshToken: 2 });
  });

  it('refuses a code exchange with grantType "authorization_code" without using up the code', async () => {
    const tokens = await tokensFor(newProfileId());
    const session = await login(newProfileId());
    await sandbox.refuseToken('kroger-invalid-request', { count: 1, grantType: 'authorization_code' });

    const refreshed = await refresh(tokens.refresh_token ?? '');
    const refused = await exchangeCode(session);

    expect(refreshed.status).toBe(200);
    expect({ status: refused.status, body: await refused.json() }).toEqual({
      status: 400,
      body: KROGER_INVALID_REQUEST,
    });
    expect((await exchangeCode(session)).status).toBe(200);
  });

  it('refuses exactly `count` matching requests', async () => {
    const tokens = await tokensFor(newProfileId());
    await sandbox.refuseToken('kroger-errors-shape', { count: 2 });

    const statuses = [];
    for (let i = 0; i < 3; i += 1) statuses.push((await refresh(tokens.refresh_token ?? '')).status);

    expect(statuses).toEqual([400, 400, 200]);
  });

  it('lets failToken take precedence while both are armed', async () => {
    const tokens = await tokensFor(newProfileId());
    await sandbox.failToken('503', 1);
    await sandbox.refuseToken('bare-400', { count: 1 });

    const statuses = [];
    for (let i = 0; i < 3; i += 1) statuses.push((await refresh(tokens.refresh_token ?? '')).status);

    expect(statuses).toEqual([503, 400, 200]);
  });

  it('rejects an unknown mode, a non-positive count and an unknown grant type', async () => {
    await expect(sandbox.refuseToken('invalid_grant' as 'bare-400')).rejects.toThrow(
      /answered 400: .*expected \\"mode\\"/,
    );
    await expect(sandbox.refuseToken('bare-400', { count: 0 })).rejects.toThrow(/answered 400: .*expected \\"count\\"/);
    await expect(sandbox.refuseToken('bare-400', { grantType: 'password' as 'any' })).rejects.toThrow(
      /answered 400: .*expected \\"grantType\\"/,
    );
  });
});

describe('Sandbox: revokeAccount with a refusal', () => {
  const shapes: [Exclude<GrantRefusal, 'invalid-grant'>, number, unknown][] = [
    ['kroger-invalid-request', 400, KROGER_INVALID_REQUEST],
    ['kroger-errors-shape', 400, KROGER_ERRORS_SHAPE],
    ['bare-400', 400, ''],
  ];

  it.each(shapes)('answers every refresh of a grant revoked with %s in that shape', async (refusal, status, body) => {
    const profileId = newProfileId();
    const tokens = await tokensFor(profileId);
    await sandbox.revokeAccount(profileId, { refusal });

    const answers = [];
    for (let i = 0; i < 2; i += 1) {
      const res = await answer(await refresh(tokens.refresh_token ?? ''));
      answers.push({ status: res.status, body: res.body === '' ? '' : JSON.parse(res.body) });
    }

    expect(answers).toEqual([
      { status, body },
      { status, body },
    ]);
    expect((await profile(tokens.access_token)).status).toBe(401);
  });

  it('answers already rotated refresh tokens of the grant the same way, and a wrong secret with invalid_client', async () => {
    const profileId = newProfileId();
    const first = await tokensFor(profileId);
    const second = (await (await refresh(first.refresh_token ?? '')).json()) as TokenResponse;
    await sandbox.revokeAccount(profileId, { refusal: 'kroger-invalid-request' });

    const current = await refresh(second.refresh_token ?? '');
    const rotated = await refresh(first.refresh_token ?? '');
    const wrongSecret = await refresh(second.refresh_token ?? '', 'wrong-secret');

    expect({ status: current.status, body: await current.json() }).toEqual({
      status: 400,
      body: KROGER_INVALID_REQUEST,
    });
    expect({ status: rotated.status, body: await rotated.json() }).toEqual({
      status: 400,
      body: KROGER_INVALID_REQUEST,
    });
    await expectOAuthError(wrongSecret, 401, 'invalid_client');
  });

  it('leaves other accounts, unknown refresh tokens and a new sign-in of the account alone', async () => {
    const profileId = newProfileId();
    await tokensFor(profileId);
    const other = await tokensFor(newProfileId());
    await sandbox.revokeAccount(profileId, { refusal: 'bare-400' });

    const again = await tokensFor(profileId);

    await expectRefreshWorks(again.refresh_token);
    await expectRefreshWorks(other.refresh_token);
    await expectOAuthError(await refresh(randomBytes(32).toString('base64url')), 400, 'invalid_grant');
  });

  it('rejects an unknown refusal', async () => {
    await expect(sandbox.revokeAccount(newProfileId(), { refusal: 'invalid-client' as 'bare-400' })).rejects.toThrow(
      /answered 400: .*expected \\"refusal\\"/,
    );
  });
});

describe('Sandbox: startSandbox', () => {
  it('fails with the reason from stderr when the configuration is invalid', async () => {
    await expect(startSandbox({ clientId: 'c', clientSecret: 's', redirectUris: ['not a url'] })).rejects.toThrow(
      /exited before it was ready[\s\S]*SANDBOX_REDIRECT_URIS environment variable has an invalid URL/,
    );
  });

  it('gives up after readyTimeoutMs and says which limit it hit', async () => {
    await expect(
      startSandbox({ clientId: 'c', clientSecret: 's', redirectUris: [REDIRECT_URI], readyTimeoutMs: 1 }),
    ).rejects.toThrow(/^sandbox did not get ready within 0\.001 s/);
  });
});
