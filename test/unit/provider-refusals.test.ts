/**
 * The provider adapter's refusals, limits and leaks, for answers that are easiest to shape with a
 * stubbed fetch (a body stream that never ends, a connection refused, a slow secret). The same
 * answers from the sandbox go through the real refresh path in test/integration/refusals.test.ts.
 */
import { readProviderConfig } from '../../functions/core/config';
import {
  ClientCredentialsRejectedError,
  InvalidGrantError,
  ProviderResponseError,
  ProviderUnavailableError,
} from '../../functions/core/errors';
import { createLogger, describeError, OMITTED_MESSAGE } from '../../functions/adapters/logger';
import { createProviderClient, MAX_RESPONSE_BYTES } from '../../functions/adapters/provider';

const CANARY = 'Q2FuYXJ5LXRva2VuLXRoYXQtbXVzdC1uZXZlci1sZWFr'; // token-shaped, 44 characters

const config = readProviderConfig({
  CLIENT_ID: 'client',
  OAUTH2_BASE_URL: 'https://api.kroger.com/v1/connect/oauth2',
  API_BASE_URL: 'https://api.kroger.com',
  REDIRECT_URL: 'https://broker.example.com/callback',
  OAUTH2_REVOCATION_URL: 'https://api.kroger.com/v1/connect/oauth2/revoke',
  PROVIDER_TIMEOUT_MS: '100',
  REFRESH_TIMEOUT_MS: '400',
});

function answer(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { 'content-type': 'application/json', ...headers } });
}

function clientAnswering(respond: (init?: RequestInit) => Response | Promise<Response>, secret = async () => 's') {
  let calls = 0;
  const fetchStub = (async (_url: string, init?: RequestInit) => {
    calls++;
    return respond(init);
  }) as typeof fetch;
  return { client: createProviderClient(config, secret, { fetch: fetchStub }), calls: () => calls };
}

const refresh = (client: ReturnType<typeof clientAnswering>['client']) =>
  client.refresh({ refreshToken: 'rt', scope: 'profile.compact' });

/** A body stream that sends `head`, then nothing more until the reader cancels it. */
function stalledStream(head: string): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(head));
    },
  });
}

describe('Function: createProviderClient (refusals)', () => {
  describe('Method: refresh', () => {
    it.each([
      [
        'invalid_request "Missing/Invalid Refresh Token"',
        () =>
          answer(400, JSON.stringify({ error: 'invalid_request', error_description: 'Missing/Invalid Refresh Token' })),
        true,
        'invalid_request: Missing/Invalid Refresh Token',
      ],
      [
        'the {"errors":...} shape',
        () =>
          answer(400, JSON.stringify({ errors: { code: 'AUTH-1007-400', reason: 'Missing/Invalid Refresh Token' } })),
        true,
        'AUTH-1007-400: Missing/Invalid Refresh Token',
      ],
      ['a bare 400', () => new Response(null, { status: 400 }), false, 'http_400 (no body)'],
    ])('maps %s to InvalidGrantError with the provider reason', async (_name, respond, confirmed, reason) => {
      const error = await refresh(clientAnswering(respond).client).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidGrantError);
      expect(error).toMatchObject({ confirmed, reason });
    });

    it.each([
      ['a 401 with a challenge', () => answer(401, '{"error":"invalid_client"}', { 'www-authenticate': 'Basic' })],
      ['a 401 without one', () => answer(401, '{"error":"invalid_client"}')],
    ])('maps %s to ClientCredentialsRejectedError, which tells the operator (not the user) to act', async (_n, r) => {
      const error = await refresh(clientAnswering(r).client).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ClientCredentialsRejectedError);
      expect((error as Error).message).toMatch(/operator must fix the client id or secret/);
      expect((error as Error).message).toMatch(/users need not sign in again/);
    });

    it('stops reading an oversized 200 at the limit and reports a bad answer that may have rotated the token', async () => {
      let pulled = 0;
      const chunk = new Uint8Array(16 * 1024).fill(97);
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled++;
          controller.enqueue(chunk);
        },
      });
      const error = await refresh(clientAnswering(() => new Response(body, { status: 200 })).client).catch(
        (e: unknown) => e,
      );

      expect(error).toBeInstanceOf(ProviderResponseError);
      expect(error).toMatchObject({ outcomeUnknown: true });
      expect(pulled * chunk.byteLength).toBeLessThanOrEqual(MAX_RESPONSE_BYTES + 2 * chunk.byteLength);
    });

    it('gives up on a 200 whose body stops arriving, as unavailable with an unknown outcome', async () => {
      const started = Date.now();
      const error = await refresh(
        clientAnswering(() => new Response(stalledStream(`{"access_token":"${CANARY}",`), { status: 200 })).client,
      ).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(ProviderUnavailableError);
      expect(error).toMatchObject({ outcomeUnknown: true });
      // REFRESH_TIMEOUT_MS (400), not PROVIDER_TIMEOUT_MS (100).
      expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    });

    it('knows a refused connection was never sent: nothing can have been used up', async () => {
      const refused = () => {
        throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }) });
      };
      const error = await refresh(clientAnswering(refused).client).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProviderUnavailableError);
      expect(error).toMatchObject({ outcomeUnknown: false });
    });

    it('reports a timeout after the request was sent as an unknown outcome', async () => {
      const hang = (init?: RequestInit) =>
        new Promise<Response>((_, reject) =>
          init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)),
        );
      const error = await refresh(clientAnswering(hang).client).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProviderUnavailableError);
      expect(error).toMatchObject({ outcomeUnknown: true });
    });

    it('counts reading the secret inside the timeout, and sends nothing when it runs out', async () => {
      const slowSecret = () => new Promise<string>((resolve) => setTimeout(() => resolve('s'), 2000));
      const { client, calls } = clientAnswering(() => answer(200, '{}'), slowSecret);

      const error = await refresh(client).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(ProviderUnavailableError);
      expect(error).toMatchObject({ outcomeUnknown: false });
      expect(calls()).toBe(0);
    });
  });

  describe('Method: exchangeCode', () => {
    it('uses PROVIDER_TIMEOUT_MS, shorter than the refresh timeout', async () => {
      const hang = (init?: RequestInit) =>
        new Promise<Response>((_, reject) =>
          init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)),
        );
      const started = Date.now();
      await expect(
        clientAnswering(hang).client.exchangeCode({ code: 'c', state: 's', codeVerifier: 'v'.repeat(43) }),
      ).rejects.toBeInstanceOf(ProviderUnavailableError);
      expect(Date.now() - started).toBeLessThan(350);
    });
  });

  describe('Method: revoke', () => {
    it.each([
      ['a 503', () => answer(503, ''), ProviderUnavailableError],
      ['a 401', () => answer(401, '{"error":"invalid_client"}'), ClientCredentialsRejectedError],
      ['unsupported_token_type', () => answer(400, '{"error":"unsupported_token_type"}'), ProviderResponseError],
    ])('fails on %s with a named error (the caller keeps the tokens)', async (_name, respond, type) => {
      await expect(clientAnswering(respond).client.revoke('rt')).rejects.toBeInstanceOf(type);
    });

    it('resolves true on 200', async () => {
      await expect(clientAnswering(() => answer(200, '')).client.revoke('rt')).resolves.toBe(true);
    });
  });
});

describe('Leaks: a non-JSON answer never reaches the log', () => {
  function logged(error: unknown): string {
    const lines: string[] = [];
    createLogger({ write: (line) => lines.push(line) }).error('failed', { error });
    return lines.join('\n');
  }

  it('drops the message of a JSON parse error, which quotes the first characters of the body', () => {
    let parseError: unknown;
    try {
      JSON.parse(`access_token=${CANARY}&token_type=bearer`);
    } catch (error) {
      parseError = error;
    }
    expect((parseError as Error).message).toContain('access_tok'); // what V8 would have logged
    expect(describeError(new Error('outer', { cause: parseError }))).toEqual({
      name: 'Error',
      message: 'outer',
      cause: { name: 'SyntaxError', message: OMITTED_MESSAGE },
    });
  });

  it.each([
    // JSON.parse quotes the first 10 characters of a body it cannot parse: here, the token's.
    ['a bare token labelled as JSON', () => answer(200, `${CANARY}&token_type=bearer`)],
    ['an HTML 200', () => answer(200, `<pre>access_token=${CANARY}</pre>`, { 'content-type': 'text/html' })],
    ['a bare token in a 400 labelled as JSON', () => answer(400, CANARY)],
  ])('keeps the token out of the error and its log line for %s', async (_name, respond) => {
    const error = await refresh(clientAnswering(respond).client).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(logged(error)).not.toContain(CANARY.slice(0, 10));
    expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toContain(CANARY.slice(0, 10));
  });

  it('keeps the token out of the profile lookup failure too', async () => {
    const { client } = clientAnswering(() => answer(200, CANARY));
    const error = await client.fetchProfileId('at').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderResponseError);
    expect(logged(error)).not.toContain(CANARY.slice(0, 10));
    expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toContain(CANARY.slice(0, 10));
  });
});
