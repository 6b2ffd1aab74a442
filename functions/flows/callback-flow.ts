/**
 * GET /callback: finish the authorization code flow. Order matters: input is bounded and parsed,
 * then the login attempt is consumed (atomically, bound to this browser) before anything else, and
 * only then is the provider called. The browser never receives a token.
 *
 * What the sign-in yields depends on how it started:
 * - through a connect link: a *pending connection* (nothing is bound yet), and a one-time connect
 *   code sent to the link's return URL, or shown for the person to paste into the app. Only the
 *   app's completion (`completeConnection`) stores the grant, under its own signed-in user;
 * - through the public /login: the grant, stored under the Kroger profile id, unless that id holds a
 *   link-bound grant, which a public sign-in never replaces.
 *
 * The provider's redirect carries `code` and `state`; no page is rendered at that URL. The answer is
 * a redirect: to the return URL, or (303) to the callback's own clean path, with the outcome in a
 * short-lived result cookie that the clean path renders (functions/core/result-page.ts).
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.7 (CSRF) and section 4.5 (code injection)
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { FlowConfig, ProviderConfig } from '../core/config';
import { parseCallbackQuery, readCookie } from '../core/callback';
import {
  hashConnectCode,
  newConnectCode,
  CLOSED_CONNECTION_RETENTION_SECONDS,
  PENDING_CONNECTION_TTL_SECONDS,
  withConnectCode,
} from '../core/connect';
import { ProviderResponseError, RequestRejectedError } from '../core/errors';
import { bindingCookie, type HttpResult, redirect } from '../core/http';
import { bindingCookieName, hashBinding, type RandomSource } from '../core/login';
import {
  decodeOutcome,
  encodeOutcome,
  type Outcome,
  RESULT_COOKIE,
  RESULT_COOKIE_MAX_AGE_SECONDS,
} from '../core/result-page';
import type { RefreshPolicy } from '../core/tokens';
import { withDeadline } from '../adapters/deadline';
import type { EventPublisher } from '../adapters/events';
import type { Logger } from '../adapters/logger';
import type { ProviderClient } from '../adapters/provider';
import type { SessionStore } from '../adapters/session-store';
import type { TokenStore } from '../adapters/token-store';
import { failureKind, outcomePage, pageContext } from './pages';
import { storedNothing, storeGrant } from './store-grant';

/** What the callback flow needs. */
export interface CallbackDeps {
  readonly provider: Pick<ProviderConfig, 'redirectUri'>;
  readonly client: ProviderClient;
  readonly sessions: SessionStore;
  readonly tokens: TokenStore;
  readonly events: EventPublisher;
  readonly logger: Logger;
  /** Where the new tokens go in the refresher's schedule. @default `eager` */
  readonly policy?: RefreshPolicy;
  /**
   * The app's name on the pages, whether public sign-in is on, where "Return to ..." may point.
   * @default `APP_NAME` "the app", public sign-in on, no return URLs
   */
  readonly flow?: Pick<FlowConfig, 'appName' | 'publicLogin' | 'returnToAllowlist'>;
  /** Epoch seconds; injectable for tests. */
  readonly now?: () => number;
  /** The connect codes' randomness; injectable for tests. */
  readonly random?: RandomSource;
  /**
   * Makes sure what the exchange and the store write will need can be used (the client secret, the
   * field key that seals the tokens) before the sign-in attempt is consumed: when Secrets Manager or
   * KMS is down, the person gets a 503 and the same callback still works once it is back. Cached
   * after the first call of a container, so it costs nothing warm.
   * @default nothing to check
   */
  readonly ready?: () => Promise<void>;
}

/** Handles GET /callback: the provider's redirect, or (without a query) the clean result page. */
export async function handleCallback(event: APIGatewayProxyEventV2, deps: CallbackDeps): Promise<HttpResult> {
  const logger = deps.logger.child({ route: 'callback', requestId: event.requestContext?.requestId });
  const now = deps.now?.() ?? Math.floor(Date.now() / 1000);
  const redirectUri = new URL(deps.provider.redirectUri);
  const context = pageContext(deps.provider, deps.flow);
  const cookieHeader = event.cookies ?? (event.headers?.cookie ? [event.headers.cookie] : undefined);
  const cookieOptions = (maxAgeSeconds: number) => ({
    path: redirectUri.pathname,
    secure: redirectUri.protocol === 'https:',
    maxAgeSeconds,
  });

  if (!event.rawQueryString) {
    // The clean URL the callback redirects to: show the outcome the result cookie names.
    const outcome = decodeOutcome(readCookie(cookieHeader, RESULT_COOKIE));
    return outcomePage(outcome ?? { kind: 'nothing', via: 'public' }, context);
  }

  /** The 303 to the clean result page, the outcome in its cookie. */
  const showOutcome = (outcome: Outcome, cookies: string[]): HttpResult =>
    redirect(
      redirectUri.origin + redirectUri.pathname,
      [...cookies, bindingCookie(RESULT_COOKIE, encodeOutcome(outcome), cookieOptions(RESULT_COOKIE_MAX_AGE_SECONDS))],
      303,
    );

  let via: Outcome['via'] = 'public';
  let returnTo: string | undefined;
  // Once the attempt is consumed, its binding cookie has done its job: expire it in every answer.
  let clearCookie: string[] = [];
  // Kroger's new refresh token once the code is exchanged, and whether a store write has begun: a
  // failure before the write proves the broker kept nothing; after it, only some failures do.
  let issued: string | undefined;
  let writing = false;
  try {
    const params = parseCallbackQuery(event.rawQueryString);
    const cookieName = bindingCookieName(params.state);
    const cookie = readCookie(cookieHeader, cookieName);
    await deps.ready?.();
    const consumed = await deps.sessions.consumeAttempt(params.state, cookie && hashBinding(cookie), now);
    if (consumed.outcome === 'wrong-browser') {
      throw new RequestRejectedError(
        cookie
          ? 'this sign-in was started in a different browser: open the sign-in link again in this browser'
          : 'the sign-in cookie is missing (cookies blocked, or a different browser): open the sign-in link again',
        'CALLBACK_BROWSER_MISMATCH',
      );
    }
    if (consumed.outcome === 'invalid') {
      throw new RequestRejectedError(
        'this sign-in response is not valid here (unknown, expired or already used "state"): open the sign-in link again',
        'CALLBACK_INVALID_STATE',
      );
    }
    const { attempt } = consumed;
    via = attempt.appUserId !== undefined ? 'link' : 'public';
    returnTo = attempt.returnTo;
    clearCookie = [bindingCookie(cookieName, '', cookieOptions(0))];

    if (params.kind === 'error') {
      logger.info('provider returned an error', { oauthError: params.error });
      const cancelled = params.error === 'access_denied';
      return showOutcome(
        { kind: cancelled ? 'cancelled' : 'provider-error', providerError: params.error, via, returnTo },
        clearCookie,
      );
    }
    if (via === 'public' && context.publicLogin === false) {
      // An attempt started before public sign-in was turned off.
      throw new RequestRejectedError('public sign-in is turned off', 'CALLBACK_PUBLIC_DISABLED', 403);
    }

    const tokens = await deps.client.exchangeCode({
      code: params.code,
      state: params.state,
      iss: params.iss,
      codeVerifier: attempt.codeVerifier,
    });
    if (!tokens.refreshToken) {
      throw new ProviderResponseError('the token response has no "refresh_token": the broker could not keep it fresh');
    }
    issued = tokens.refreshToken;
    const grant = { ...tokens, refreshToken: tokens.refreshToken };
    const profileId = await deps.client.fetchProfileId(tokens.accessToken);
    writing = true;

    if (attempt.appUserId !== undefined) {
      // A connect link: bind nothing. The app completes the connection for its own signed-in user.
      const connectCode = newConnectCode(deps.random);
      const expiresAt = now + PENDING_CONNECTION_TTL_SECONDS;
      await deps.sessions.putPending({
        codeHash: hashConnectCode(connectCode),
        appUserId: attempt.appUserId,
        profileId,
        tokens: grant,
        expiresAt,
        closedRetention: expiresAt + CLOSED_CONNECTION_RETENTION_SECONDS,
      });
      logger.info('connection pending', { appUserId: attempt.appUserId, profileId, returnTo: Boolean(returnTo) });
      if (returnTo) return redirect(withConnectCode(returnTo, connectCode), clearCookie);
      return showOutcome({ kind: 'pending', via, connectCode }, clearCookie);
    }

    const saved = await storeGrant(deps, { userId: profileId, profileId, tokens: grant, now, boundBy: 'public' });
    if (saved.outcome === 'link-bound') {
      // Refused for good, nothing written: the new grant must not stay live with nobody holding it.
      await revokeUnkept(deps.client, grant.refreshToken, logger);
      throw new RequestRejectedError(
        `the user id "${profileId}" is bound through a connect link; a public sign-in does not replace it`,
        'CALLBACK_LINK_BOUND',
        409,
      );
    }
    if (returnTo) return redirect(returnTo, clearCookie);
    return showOutcome({ kind: 'connected', via }, clearCookie);
  } catch (error) {
    const page = showOutcome({ kind: failureKind(error, logger), via, returnTo }, clearCookie);
    if (issued !== undefined && keptNothing(error, writing)) await revokeUnkept(deps.client, issued, logger);
    return page;
  }
}

/**
 * Whether a failure after the code exchange proves that the broker kept none of the new tokens: it
 * came before any store write, the field key could not seal them, or DynamoDB refused the write
 * outright (throttled: nothing landed). After any other write failure the write may have landed (a
 * timeout), and revoking could kill a grant that is stored. (A link-bound refusal revokes where it
 * happens.)
 */
function keptNothing(error: unknown, writing: boolean): boolean {
  return !writing || storedNothing(error);
}

/**
 * How long the revocation of an unkept grant may take: after a code exchange and a profile lookup of
 * up to `PROVIDER_TIMEOUT_MS` (8 s) each, 3 s more still fits the callback function's 25 s and API
 * Gateway's 30 s, so the person gets a page even when the provider is slow to answer all three.
 */
export const UNKEPT_REVOKE_TIMEOUT_MS = 3000;

/**
 * Revokes (RFC 7009) a grant the broker obtained but will not keep, so it does not stay live at the
 * provider with nobody holding it. Best effort, within {@link UNKEPT_REVOKE_TIMEOUT_MS}: the person's
 * page does not depend on it, and a failure is logged without the token.
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-2.2.2 (limit what a leaked refresh token can do)
 */
async function revokeUnkept(client: ProviderClient, refreshToken: string, logger: Logger): Promise<void> {
  try {
    // Its own time, kept out of the request's deadline (the handler reserves it): a failure that used
    // up the deadline is exactly when a grant is left unkept.
    const revoked = await withDeadline(Date.now() + UNKEPT_REVOKE_TIMEOUT_MS, () =>
      client.revoke(refreshToken, UNKEPT_REVOKE_TIMEOUT_MS),
    );
    if (revoked) logger.info('unkept grant revoked at the provider');
    else logger.warn('unkept grant left live at the provider: no revocation endpoint is configured');
  } catch (error) {
    logger.warn('could not revoke the unkept grant at the provider', { error });
  }
}
