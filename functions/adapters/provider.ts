/**
 * The provider client: Kroger's token endpoint (authorization code, refresh, revocation) and the
 * identity profile endpoint. Protocol work is done by oauth4webapi (request building, HTTP Basic
 * client authentication, response validation); this module adds timeouts and maps every failure
 * to one of three named errors: unavailable (retry), invalid grant (re-auth), bad response (operator).
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6
 */
import * as oauth from 'oauth4webapi';
import type { ProviderConfig } from '../core/config';
import {
  InvalidGrantError,
  IssuerMismatchError,
  ProviderResponseError,
  ProviderUnavailableError,
} from '../core/errors';
import { toTokenSet, type TokenSet } from '../core/tokens';
import type { SecretSource } from './secret';

/** What the flows need from the provider. */
export interface ProviderClient {
  /** Exchanges an authorization code (with the PKCE verifier when one was sent). */
  exchangeCode(input: { code: string; state: string; iss?: string; codeVerifier?: string }): Promise<TokenSet>;
  /** Uses a refresh token; the result's `refreshToken` is absent when the provider did not rotate it. */
  refresh(input: { refreshToken: string; scope: string }): Promise<TokenSet>;
  /** Looks up the Kroger profile id for an access token with a profile scope. */
  fetchProfileId(accessToken: string): Promise<string>;
  /** Revokes a refresh token (RFC 7009), when a revocation endpoint is configured; else a no-op. */
  revoke(refreshToken: string): Promise<boolean>;
}

const MAX_PROFILE_ID_LENGTH = 256;

/** Errors that mean "could not reach or hear from the provider": fetch failures and timeouts. */
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

function unavailable(what: string, status?: number, cause?: unknown): ProviderUnavailableError {
  return new ProviderUnavailableError(
    status ? `${what} answered with status ${status}` : `${what} did not answer in time or could not be reached`,
    { cause },
  );
}

/**
 * Maps any failure of a token endpoint call to a named error. Runs on errors only, so the response
 * body (which may hold tokens) is never part of what is thrown.
 */
function mapTokenError(error: unknown, what: string): Error {
  if (error instanceof ProviderUnavailableError) return error;
  if (isTransportError(error)) return unavailable(what, undefined, error);
  if (error instanceof oauth.ResponseBodyError) {
    if (error.error === 'invalid_grant') {
      return new InvalidGrantError(`${what} refused the grant ("invalid_grant")`, { cause: error });
    }
    if (error.status >= 500 || error.error === 'temporarily_unavailable') return unavailable(what, error.status, error);
    return new ProviderResponseError(`${what} answered with error "${error.error}"`, {
      cause: error,
      oauthError: error.error,
    });
  }
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    const challengeError = error.cause[0]?.parameters.error;
    return new ProviderResponseError(`${what} refused the client credentials ("${challengeError ?? 'unauthorized'}")`, {
      cause: error,
      oauthError: challengeError,
    });
  }
  const message = error instanceof Error ? error.message : 'unexpected failure';
  return new ProviderResponseError(`${what} gave an invalid response: ${message}`, { cause: error });
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
  const as: oauth.AuthorizationServer = {
    issuer: config.issuer ?? new URL(config.tokenUrl).origin,
    token_endpoint: config.tokenUrl,
    revocation_endpoint: config.revocationUrl,
    // With OAUTH2_ISSUER set, a missing or different `iss` is refused (RFC 9207 section 2.4).
    authorization_response_iss_parameter_supported: config.issuer !== undefined,
  };
  const client: oauth.Client = { client_id: config.clientId };
  const requestOptions = (): oauth.TokenEndpointRequestOptions => ({
    signal: AbortSignal.timeout(config.timeoutMs),
    [oauth.allowInsecureRequests]: config.allowInsecureHttp,
    [oauth.customFetch]: doFetch,
  });
  const auth = async () => oauth.ClientSecretBasic(await getSecret());

  /** Guards the status before oauth4webapi reads the body: 5xx and 429 mean "try later". */
  const checkAvailable = (response: Response, what: string): Response => {
    if (response.status >= 500 || response.status === 429) {
      throw unavailable(what, response.status);
    }
    return response;
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
      const what = 'the token endpoint';
      try {
        const response = await oauth.authorizationCodeGrantRequest(
          as,
          client,
          await auth(),
          callbackParams,
          config.redirectUri,
          codeVerifier ?? oauth.nopkce,
          requestOptions(),
        );
        const body = await oauth.processAuthorizationCodeResponse(as, client, checkAvailable(response, what));
        return toTokenSet(body, { now: nowSeconds(), requestedScope: config.scopes.join(' ') });
      } catch (error) {
        throw mapTokenError(error, what);
      }
    },

    async refresh({ refreshToken, scope }) {
      const what = 'the token endpoint';
      try {
        const response = await oauth.refreshTokenGrantRequest(as, client, await auth(), refreshToken, requestOptions());
        const body = await oauth.processRefreshTokenResponse(as, client, checkAvailable(response, what));
        return toTokenSet(body, { now: nowSeconds(), requestedScope: scope });
      } catch (error) {
        throw mapTokenError(error, what);
      }
    },

    async fetchProfileId(accessToken) {
      const what = 'the profile endpoint';
      let response: Response;
      try {
        response = await doFetch(config.profileUrl, {
          headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
          signal: AbortSignal.timeout(config.timeoutMs),
        });
      } catch (cause) {
        throw unavailable(what, undefined, cause);
      }
      checkAvailable(response, what);
      if (response.status !== 200) {
        throw new ProviderResponseError(
          `${what} answered with status ${response.status}; the token needs the "profile.compact" scope`,
        );
      }
      let id: unknown;
      try {
        id = ((await response.json()) as { data?: { id?: unknown } })?.data?.id;
      } catch (cause) {
        if (isTransportError(cause)) throw unavailable(what, undefined, cause);
        throw new ProviderResponseError(`${what} did not answer with JSON`, { cause });
      }
      if (typeof id !== 'string' || id.length === 0 || id.length > MAX_PROFILE_ID_LENGTH) {
        throw new ProviderResponseError(`${what} answered without a valid "data.id"`);
      }
      return id;
    },

    async revoke(refreshToken) {
      if (!config.revocationUrl) return false;
      const what = 'the revocation endpoint';
      try {
        const response = await oauth.revocationRequest(as, client, await auth(), refreshToken, {
          ...requestOptions(),
          additionalParameters: { token_type_hint: 'refresh_token' },
        });
        await oauth.processRevocationResponse(checkAvailable(response, what));
        return true;
      } catch (error) {
        throw mapTokenError(error, what);
      }
    },
  };
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
