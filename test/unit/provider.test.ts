/**
 * The provider adapter's error mapping, for answers the sandbox cannot be made to give (malformed
 * bodies, odd statuses). HTTP is swapped through the `fetch` option; the real flow is covered by the
 * integration tests against the sandbox.
 */
import { readProviderConfig } from '../../functions/core/config';
import {
  InvalidGrantError,
  ProviderResponseError,
  ProviderUnavailableError,
  IssuerMismatchError,
} from '../../functions/core/errors';
import { createProviderClient } from '../../functions/adapters/provider';

const config = readProviderConfig({
  CLIENT_ID: 'client id',
  OAUTH2_BASE_URL: 'https://api.kroger.com/v1/connect/oauth2',
  API_BASE_URL: 'https://api.kroger.com',
  REDIRECT_URL: 'https://broker.example.com/callback',
});

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(typeof body === 'string' ? body : JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

function clientAnswering(answer: () => Response | Promise<Response>, cfg = config) {
  const calls: Array<{ url: string; init?: RequestInit }> = [];
  const fetchStub = (async (url: string, init?: RequestInit) => {
    calls.push({ url: String(url), init });
    return answer();
  }) as typeof fetch;
  return { client: createProviderClient(cfg, async () => 'se:cret', { fetch: fetchStub }), calls };
}

const exchange = (client: ReturnType<typeof clientAnswering>['client']) =>
  client.exchangeCode({ code: 'the-code', state: 'st', codeVerifier: 'v'.repeat(43) });

describe('Function: createProviderClient', () => {
  describe('Method: exchangeCode', () => {
    it('sends a form-urlencoded request with HTTP Basic client auth, the verifier and the exact redirect_uri', async () => {
      const { client, calls } = clientAnswering(() =>
        json(200, { access_token: 'at', refresh_token: 'rt', token_type: 'bearer', expires_in: 1800 }),
      );

      const tokens = await exchange(client);

      expect(tokens).toMatchObject({ accessToken: 'at', refreshToken: 'rt', tokenType: 'bearer' });
      expect(calls[0].url).toBe('https://api.kroger.com/v1/connect/oauth2/token');
      const headers = new Headers(calls[0].init?.headers);
      expect(headers.get('content-type')).toBe('application/x-www-form-urlencoded;charset=UTF-8');
      // RFC 6749 section 2.3.1: id and secret are form-encoded before base64.
      expect(headers.get('authorization')).toBe(`Basic ${Buffer.from('client+id:se%3Acret').toString('base64')}`);
      const body = new URLSearchParams(String(calls[0].init?.body));
      expect(Object.fromEntries(body)).toEqual({
        grant_type: 'authorization_code',
        code: 'the-code',
        redirect_uri: 'https://broker.example.com/callback',
        code_verifier: 'v'.repeat(43),
      });
      expect(body.has('client_secret')).toBe(false);
    });

    it.each([
      ['a 503', () => json(503, 'down')],
      ['a 429', () => json(429, {})],
      ['a 500 with an OAuth error body', () => json(500, { error: 'server_error' })],
      ['temporarily_unavailable', () => json(400, { error: 'temporarily_unavailable' })],
      [
        'a network failure',
        () => {
          throw new TypeError('fetch failed');
        },
      ],
      [
        'a timeout',
        () => {
          throw new DOMException('The operation was aborted due to timeout', 'TimeoutError');
        },
      ],
    ])('maps %s to ProviderUnavailableError', async (_name, answer) => {
      await expect(exchange(clientAnswering(answer).client)).rejects.toBeInstanceOf(ProviderUnavailableError);
    });

    it('maps invalid_grant to InvalidGrantError', async () => {
      const { client } = clientAnswering(() => json(400, { error: 'invalid_grant', error_description: 'used' }));
      await expect(exchange(client)).rejects.toBeInstanceOf(InvalidGrantError);
    });

    it.each([
      ['a body that is not JSON', () => json(200, '<html>')],
      ['no access_token', () => json(200, { token_type: 'bearer' })],
      ['an unsupported token_type', () => json(200, { access_token: 'a', token_type: 'mac' })],
      ['a negative expires_in', () => json(200, { access_token: 'a', token_type: 'bearer', expires_in: -5 })],
    ])('maps %s to ProviderResponseError, never carrying the body in its message', async (_name, answer) => {
      const error = await exchange(clientAnswering(answer).client).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProviderResponseError);
      expect((error as Error).message).not.toContain('se:cret');
    });

    it('refuses a mismatching iss before calling the token endpoint when an issuer is configured', async () => {
      const cfg = { ...config, issuer: 'https://api.kroger.com' };
      const { client, calls } = clientAnswering(() => json(200, {}), cfg);

      await expect(client.exchangeCode({ code: 'c', state: 's', iss: 'https://evil.test' })).rejects.toBeInstanceOf(
        IssuerMismatchError,
      );
      await expect(client.exchangeCode({ code: 'c', state: 's' })).rejects.toThrow(/"iss"/);
      expect(calls).toHaveLength(0);
    });
  });

  describe('Method: refresh', () => {
    it('sends grant_type=refresh_token and keeps the previous scope when none is returned', async () => {
      const { client, calls } = clientAnswering(() => json(200, { access_token: 'a2', token_type: 'Bearer' }));

      const tokens = await client.refresh({ refreshToken: 'rt-1', scope: 'profile.compact' });

      expect(Object.fromEntries(new URLSearchParams(String(calls[0].init?.body)))).toEqual({
        grant_type: 'refresh_token',
        refresh_token: 'rt-1',
      });
      expect(tokens).toMatchObject({ accessToken: 'a2', refreshToken: undefined, scope: 'profile.compact' });
    });
  });

  describe('Method: fetchProfileId', () => {
    it('returns data.id and sends the token as a Bearer header', async () => {
      const { client, calls } = clientAnswering(() => json(200, { data: { id: 'profile-1' } }));
      await expect(client.fetchProfileId('at')).resolves.toBe('profile-1');
      expect(calls[0].url).toBe('https://api.kroger.com/v1/identity/profile');
      expect(new Headers(calls[0].init?.headers).get('authorization')).toBe('Bearer at');
    });

    it.each([
      ['a 403 (no profile scope)', () => json(403, {}), ProviderResponseError],
      ['a body without data.id', () => json(200, { data: {} }), ProviderResponseError],
      ['an oversized id', () => json(200, { data: { id: 'x'.repeat(300) } }), ProviderResponseError],
      ['a body that is not JSON', () => json(200, 'nope'), ProviderResponseError],
      ['a 502', () => json(502, {}), ProviderUnavailableError],
    ])('maps %s to a named error', async (_name, answer, type) => {
      await expect(clientAnswering(answer).client.fetchProfileId('at')).rejects.toBeInstanceOf(type);
    });
  });

  describe('Method: revoke', () => {
    it('does nothing without a revocation endpoint', async () => {
      const { client, calls } = clientAnswering(() => json(200, {}));
      await expect(client.revoke('rt')).resolves.toBe(false);
      expect(calls).toHaveLength(0);
    });

    it('gives up within the limit it is given, below the configured provider timeout', async () => {
      const slow = readProviderConfig({
        CLIENT_ID: 'client id',
        OAUTH2_BASE_URL: 'https://api.kroger.com/v1/connect/oauth2',
        API_BASE_URL: 'https://api.kroger.com',
        REDIRECT_URL: 'https://broker.example.com/callback',
        OAUTH2_REVOCATION_URL: 'https://api.kroger.com/v1/connect/oauth2/revoke',
        PROVIDER_TIMEOUT_MS: '10000',
      });
      const calls: string[] = [];
      // Never answers: only the request's own signal ends it.
      const hanging = (async (url: string, init?: RequestInit) => {
        calls.push(String(url));
        return new Promise<Response>((_resolve, reject) =>
          init?.signal?.addEventListener('abort', () => reject(init.signal?.reason)),
        );
      }) as typeof fetch;
      const client = createProviderClient(slow, async () => 'se:cret', { fetch: hanging });

      await expect(client.revoke('rt', 50)).rejects.toBeInstanceOf(ProviderUnavailableError);
      expect(calls).toEqual(['https://api.kroger.com/v1/connect/oauth2/revoke']);
    }, 5_000); // the configured 10 s would outlast this test: only the given limit can end it
  });
});
