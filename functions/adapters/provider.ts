/**
 * The provider client: Kroger's token endpoint (authorization code, refresh, revocation) and the
 * identity profile endpoint. Protocol work is done by oauth4webapi (request building, HTTP Basic
 * client authentication, token response validation); this module adds timeouts, reads every body
 * itself (bounded in size and time), and maps every failure to one named error:
 *
 * - {@link ProviderUnavailableError}: 5xx, 429, timeouts, unreachable, a body that stops arriving;
 * - {@link InvalidGrantError}: any 4xx refusal of the grant, whatever its body shape;
 * - {@link ClientCredentialsRejectedError}: `invalid_client` or a 401 (the operator's problem);
 * - {@link ProviderResponseError}: an answer that is not usable (a 2xx that is not a token response,
 *   an oversized body, a status that says the URL is wrong).
 *
 * Which non-2xx answer is which is decided by `core/refusals.ts`.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6
 */
import * as oauth from 'oauth4webapi';
import type { ProviderConfig } from '../core/config';
import { parseRetryAfter } from '../core/http';
import {
  BrokerError,
  ClientCredentialsRejectedError,
  InvalidGrantError,
  IssuerMismatchError,
  ProviderResponseError,
  ProviderUnavailableError,
} from '../core/errors';
import { classifyTokenError } from '../core/refusals';
import { toTokenSet, type TokenSet } from '../core/tokens';
import { limitMs } from './deadline';
import type { SecretSource } from './secret';

/** What the flows need from the provider. */
export interface ProviderClient {
  /** Exchanges an authorization code (with the PKCE verifier when one was sent). */
  exchangeCode(input: { code: string; state: string; iss?: string; codeVerifier?: string }): Promise<TokenSet>;
  /** Uses a refresh token; the result's `refreshToken` is absent when the provider did not rotate it. */
  refresh(input: { refreshToken: string; scope: string }): Promise<TokenSet>;
  /** Looks up the Kroger profile id for an access token with a profile scope. */
  fetchProfileId(accessToken: string): Promise<string>;
  /**
   * Revokes a refresh token (RFC 7009), when a revocation endpoint is configured; else a no-op.
   * @param timeoutMs the request's own limit, at most the configured one @default `PROVIDER_TIMEOUT_MS`
   * @returns false when no revocation endpoint is configured
   */
  revoke(refreshToken: string, timeoutMs?: number): Promise<boolean>;
}

const MAX_PROFILE_ID_LENGTH = 256;

/**
 * The most the broker reads of any provider answer: a token response or an OAuth error is well under
 * 4 KiB; reading more only lets a broken or hostile answer fill the function's memory.
 */
export const MAX_RESPONSE_BYTES = 64 * 1024;

/** Transport failure codes that mean the request never left this machine. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Errors that mean "could not reach or hear from the provider": fetch failures, aborts, timeouts. */
function isTransportError(error: unknown): boolean {
  // Checked by name, not instanceof: AbortSignal.timeout() throws a DOMException, which comes from
  // another realm under some runtimes and test sandboxes.
  if (typeof error !== 'object' || error === null) return false;
  const { name, message } = error as { name?: unknown; message?: unknown };
  return (
    name === 'AbortError' ||
    name === 'TimeoutError' ||
    (name === 'TypeError' && typeof message === 'string' && /fetch failed|network|terminated|socket/i.test(message))
  );
}

/** True unless the transport error says the request was never sent (connection refused, DNS). */
function mayHaveBeenSent(error: unknown): boolean {
  const code = (error as { cause?: { code?: unknown } })?.cause?.code;
  return !(typeof code === 'string' && NOT_SENT_CODES.has(code));
}

function unavailable(
  what: string,
  status?: number,
  cause?: unknown,
  outcomeUnknown = false,
  retryAfter?: string | null,
): ProviderUnavailableError {
  return new ProviderUnavailableError(
    status ? `${what} answered with status ${status}` : `${what} did not answer in time or could not be reached`,
    { cause, outcomeUnknown, retryAfterSeconds: parseRetryAfter(retryAfter, Date.now()) },
  );
}

/** A body that went over {@link MAX_RESPONSE_BYTES}. */
class BodyTooLargeError extends Error {
  constructor() {
    super(`the answer is larger than ${MAX_RESPONSE_BYTES} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/**
 * Reads a body up to `limit` bytes, giving up when `signal` aborts (a body that stops arriving).
 * @throws {BodyTooLargeError} more than `limit` bytes (the rest is not read)
 * @throws the signal's reason, or the stream's error, when the body does not arrive whole
 */
async function readBounded(response: Response, limit: number, signal?: AbortSignal): Promise<Uint8Array<ArrayBuffer>> {
  if (!response.body) return new Uint8Array(new ArrayBuffer(0));
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const aborted = new Promise<never>((_, reject) => {
    if (!signal) return;
    const fail = () => reject(signal.reason ?? new DOMException('aborted', 'AbortError'));
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
  aborted.catch(() => undefined); // handled where it is raced
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), aborted]);
      if (done) break;
      size += value.byteLength;
      if (size > limit) throw new BodyTooLargeError();
      chunks.push(value);
    }
  } catch (error) {
    await reader.cancel().catch(() => undefined);
    throw error;
  }
  const out = new Uint8Array(new ArrayBuffer(size));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * The HTTP oauth4webapi uses: the injected (or global) fetch, with the body read here, bounded, so
 * oauth4webapi only ever parses a body already in memory.
 */
function boundedFetch(doFetch: typeof fetch): typeof fetch {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const response = await doFetch(input, init);
    const body = await readBounded(response, MAX_RESPONSE_BYTES, init?.signal ?? undefined);
    const headers = new Headers(response.headers);
    // The body is in memory, decoded: the transfer headers no longer describe it.
    headers.delete('content-length');
    headers.delete('content-encoding');
    headers.delete('transfer-encoding');
    const empty = response.status === 204 || response.status === 304;
    return new Response(empty ? null : body, { status: response.status, statusText: response.statusText, headers });
  }) as typeof fetch;
}

/** Resolves like `promise`, or rejects with the signal's reason when it aborts first. */
function withSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Which token request failed, for messages and for what its failure may have cost. */
interface TokenCall {
  /** For messages: "the token endpoint", "the revocation endpoint". */
  readonly what: string;
  /** A refresh: a 2xx the broker could not read probably rotated the refresh token. */
  readonly rotates: boolean;
  /** Revocation: RFC 7009 answers an unknown token with 200, so a 4xx is the request's fault. */
  readonly revocation?: boolean;
}

/** Throws the named error for a token endpoint answer that is not 200. Reads the (bounded) body. */
async function throwForStatus(response: Response, call: TokenCall): Promise<never> {
  const { what } = call;
  if (response.status < 400) {
    throw new ProviderResponseError(`${what} answered with status ${response.status}, not 200`, {
      outcomeUnknown: call.rotates && response.status < 300,
    });
  }
  const verdict = classifyTokenError({
    status: response.status,
    contentType: response.headers.get('content-type'),
    wwwAuthenticate: response.headers.get('www-authenticate'),
    body: await response.text(),
  });
  switch (verdict.kind) {
    case 'unavailable':
      throw unavailable(what, verdict.status, undefined, false, response.headers.get('retry-after'));
    case 'client-rejected':
      throw new ClientCredentialsRejectedError(
        `${what} refused the broker's client credentials ("${verdict.oauthError ?? `status ${verdict.status}`}"): ` +
          'the operator must fix the client id or secret; users need not sign in again',
        { oauthError: verdict.oauthError, status: verdict.status },
      );
    case 'grant-refused':
      if (!call.revocation) {
        throw new InvalidGrantError(`${what} refused the grant (${verdict.reason})`, {
          confirmed: verdict.confirmed,
          reason: verdict.reason,
          shape: verdict.shape,
        });
      }
      throw new ProviderResponseError(`${what} refused the request (${verdict.reason})`, {
        oauthError: verdict.oauthError,
      });
    case 'bad-response':
      throw new ProviderResponseError(`${what} answered with status ${verdict.status}: check OAUTH2_BASE_URL`, {
        oauthError: verdict.oauthError,
      });
  }
}

/**
 * Maps any failure of a token endpoint call to a named error. Messages never carry the body (which
 * may hold tokens): only oauth4webapi's own fixed messages or this module's.
 */
function mapTokenError(error: unknown, call: TokenCall, sent: boolean): Error {
  if (error instanceof BrokerError) return error;
  const { what } = call;
  if (error instanceof BodyTooLargeError) {
    return new ProviderResponseError(`${what} gave an invalid response: ${error.message}`, {
      outcomeUnknown: call.rotates,
    });
  }
  if (isTransportError(error)) return unavailable(what, undefined, error, sent && mayHaveBeenSent(error));
  if (error instanceof oauth.OperationProcessingError || error instanceof oauth.UnsupportedOperationError) {
    // A 200 that is not a token response: the provider answered, so it probably issued tokens. Not
    // kept as the cause: oauth4webapi's causes hold the parsed body (tokens) or the parse error
    // (which quotes the body), and whoever prints an error prints its causes.
    return new ProviderResponseError(`${what} gave an invalid response: ${error.message} (${error.code})`, {
      outcomeUnknown: call.rotates,
    });
  }
  return new ProviderResponseError(`${what} gave an invalid response`, { cause: error, outcomeUnknown: call.rotates });
}

/**
 * Creates the provider client.
 * @param getSecret the client secret, read only when a request needs it
 * @param options.fetch injectable HTTP for tests (oauth4webapi's customFetch)
 */
export function createProviderClient(
  config: ProviderConfig,
  getSecret: SecretSource,
  options: { fetch?: typeof fetch } = {},
): ProviderClient {
  const doFetch = options.fetch ?? fetch;
  const bounded = boundedFetch(doFetch);
  const as: oauth.AuthorizationServer = {
    issuer: config.issuer ?? new URL(config.tokenUrl).origin,
    token_endpoint: config.tokenUrl,
    revocation_endpoint: config.revocationUrl,
    // With OAUTH2_ISSUER set, a missing or different `iss` is refused (RFC 9207 section 2.4).
    authorization_response_iss_parameter_supported: config.issuer !== undefined,
  };
  const client: oauth.Client = { client_id: config.clientId };
  const requestOptions = (signal: AbortSignal): oauth.TokenEndpointRequestOptions => ({
    signal,
    [oauth.allowInsecureRequests]: config.allowInsecureHttp,
    [oauth.customFetch]: bounded,
  });

  /**
   * Runs one token request under one timeout that covers reading the secret, the request and the
   * body, and turns its answer (or failure) into a token set or a named error.
   */
  const tokenCall = async <T>(
    call: TokenCall,
    timeoutMs: number,
    send: (auth: oauth.ClientAuth, options: oauth.TokenEndpointRequestOptions) => Promise<Response>,
    process: (response: Response) => Promise<T>,
  ): Promise<T> => {
    // Never past the request's deadline (the callback must answer before its function times out);
    // past it, nothing is sent (a code or refresh token is not spent on an answer nobody can use).
    const limit = limitMs(timeoutMs);
    if (limit <= 0) throw unavailable(call.what);
    const signal = AbortSignal.timeout(limit);
    let sent = false;
    try {
      // A secret that takes too long is a timeout before anything was sent: nothing was used up.
      const auth = oauth.ClientSecretBasic(await withSignal(getSecret(), signal));
      sent = true;
      const response = await send(auth, requestOptions(signal));
      if (response.status !== 200) await throwForStatus(response, call);
      return await process(response);
    } catch (error) {
      throw mapTokenError(error, call, sent);
    }
  };

  return {
    async exchangeCode({ code, state, iss, codeVerifier }) {
      const params = new URLSearchParams({ code, state });
      if (config.issuer !== undefined && iss !== undefined) params.set('iss', iss);
      let callbackParams: URLSearchParams;
      try {
        callbackParams = oauth.validateAuthResponse(as, client, params, oauth.skipStateCheck);
      } catch (cause) {
        throw new IssuerMismatchError(
          'the sign-in response did not come from the expected authorization server ("iss")',
          { cause },
        );
      }
      return tokenCall(
        // A code is single-use too, but a lost answer costs only a new sign-in, never a stored grant.
        { what: 'the token endpoint', rotates: false },
        config.timeoutMs,
        (auth, opts) =>
          oauth.authorizationCodeGrantRequest(
            as,
            client,
            auth,
            callbackParams,
            config.redirectUri,
            codeVerifier ?? oauth.nopkce,
            opts,
          ),
        async (response) => {
          const body = await oauth.processAuthorizationCodeResponse(as, client, response);
          return toTokenSet(body, { now: nowSeconds(), requestedScope: config.scopes.join(' ') });
        },
      );
    },

    async refresh({ refreshToken, scope }) {
      return tokenCall(
        { what: 'the token endpoint', rotates: true },
        config.refreshTimeoutMs,
        (auth, opts) => oauth.refreshTokenGrantRequest(as, client, auth, refreshToken, opts),
        async (response) => {
          const body = await oauth.processRefreshTokenResponse(as, client, response);
          return toTokenSet(body, { now: nowSeconds(), requestedScope: scope });
        },
      );
    },

    async fetchProfileId(accessToken) {
      const what = 'the profile endpoint';
      const limit = limitMs(config.timeoutMs);
      if (limit <= 0) throw unavailable(what);
      const signal = AbortSignal.timeout(limit);
      let response: Response;
      try {
        response = await bounded(config.profileUrl, {
          headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
          signal,
        });
      } catch (cause) {
        if (cause instanceof BodyTooLargeError) throw new ProviderResponseError(`${what} gave an invalid response`);
        throw unavailable(what, undefined, cause);
      }
      if (response.status >= 500 || response.status === 429) {
        throw unavailable(what, response.status, undefined, false, response.headers.get('retry-after'));
      }
      if (response.status !== 200) {
        throw new ProviderResponseError(
          `${what} answered with status ${response.status}; the token needs the "profile.compact" scope`,
        );
      }
      let id: unknown;
      try {
        id = ((await response.json()) as { data?: { id?: unknown } })?.data?.id;
      } catch {
        // Not kept as the cause: a parse error's message quotes the body's first characters.
        throw new ProviderResponseError(`${what} did not answer with JSON`);
      }
      if (typeof id !== 'string' || id.length === 0 || id.length > MAX_PROFILE_ID_LENGTH) {
        throw new ProviderResponseError(`${what} answered without a valid "data.id"`);
      }
      return id;
    },

    async revoke(refreshToken, timeoutMs = config.timeoutMs) {
      if (!config.revocationUrl) return false;
      await tokenCall(
        { what: 'the revocation endpoint', rotates: false, revocation: true },
        Math.min(timeoutMs, config.timeoutMs),
        (auth, opts) =>
          oauth.revocationRequest(as, client, auth, refreshToken, {
            ...opts,
            additionalParameters: { token_type_hint: 'refresh_token' },
          }),
        (response) => oauth.processRevocationResponse(response),
      );
      return true;
    },
  };
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
