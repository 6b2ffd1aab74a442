/**
 * GET /callback: finish the authorization code flow. Order matters: input is bounded and parsed,
 * then the login attempt is consumed (atomically, bound to this browser) before anything else, and
 * only then is the provider called. Tokens are written in one item update at the very end, so a
 * failure anywhere leaves nothing half-written; the browser never receives a token.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.7 (CSRF) and section 4.5 (code injection)
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { ProviderConfig } from '../core/config';
import { describeProviderError, parseCallbackQuery, readCookie } from '../core/callback';
import { ProviderResponseError, RequestRejectedError } from '../core/errors';
import { bindingCookie, htmlPage, type HttpResult, redirect } from '../core/http';
import { bindingCookieName, hashBinding } from '../core/login';
import { type RefreshPolicy, scheduleAfterTokens } from '../core/tokens';
import type { EventPublisher } from '../adapters/events';
import type { Logger } from '../adapters/logger';
import type { ProviderClient } from '../adapters/provider';
import type { SessionStore } from '../adapters/session-store';
import type { TokenStore } from '../adapters/token-store';
import { errorPage } from './pages';

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
  /** Epoch seconds; injectable for tests. */
  readonly now?: () => number;
}

/** Handles GET /callback. */
export async function handleCallback(event: APIGatewayProxyEventV2, deps: CallbackDeps): Promise<HttpResult> {
  const logger = deps.logger.child({ route: 'callback', requestId: event.requestContext?.requestId });
  const now = deps.now?.() ?? Math.floor(Date.now() / 1000);
  const redirectUri = new URL(deps.provider.redirectUri);
  // Once the attempt is consumed, its binding cookie has done its job: expire it in every answer.
  let clearCookie: string[] | undefined;
  try {
    const params = parseCallbackQuery(event.rawQueryString);
    const cookieName = bindingCookieName(params.state);
    const cookieHeader = event.cookies ?? (event.headers?.cookie ? [event.headers.cookie] : undefined);
    const cookie = readCookie(cookieHeader, cookieName);
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
    clearCookie = [
      bindingCookie(cookieName, '', {
        path: redirectUri.pathname,
        secure: redirectUri.protocol === 'https:',
        maxAgeSeconds: 0,
      }),
    ];

    if (params.kind === 'error') {
      logger.info('provider returned an error', { oauthError: params.error });
      throw new RequestRejectedError(
        describeProviderError(params.error),
        'CALLBACK_PROVIDER_ERROR',
        params.error === 'access_denied' ? 403 : 400,
        params.errorDescription ? `Kroger said: ${params.errorDescription}` : undefined,
      );
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
    const profileId = await deps.client.fetchProfileId(tokens.accessToken);
    const userId = attempt.appUserId ?? profileId;
    const previous = await deps.tokens.saveLogin({
      userId,
      profileId,
      tokens: { ...tokens, refreshToken: tokens.refreshToken },
      now,
      schedule: scheduleAfterTokens(userId, tokens, now, deps.policy),
    });
    logger.info('user connected', { userId, connectLink: attempt.appUserId !== undefined, previousStatus: previous });
    await publishSafely(deps, logger, previous === 'reauth_required' ? 'token.recovered' : 'token.connected', {
      userId,
      profileId,
      at: new Date(now * 1000).toISOString(),
    });

    if (attempt.returnTo) return redirect(attempt.returnTo, clearCookie);
    return htmlPage(
      200,
      {
        title: 'Connected',
        message: 'Your Kroger account is connected. You can close this window.',
      },
      clearCookie,
    );
  } catch (error) {
    return errorPage(error, logger, clearCookie);
  }
}

async function publishSafely(
  deps: CallbackDeps,
  logger: Logger,
  type: Parameters<EventPublisher['publish']>[0],
  detail: Parameters<EventPublisher['publish']>[1],
): Promise<void> {
  try {
    await deps.events.publish(type, detail);
  } catch (error) {
    // The tokens are stored; a lost notification must not turn a successful login into an error.
    logger.error('could not publish event', { event: type, error });
  }
}
