/**
 * GET /login: start an authorization code flow for this browser and redirect to the provider.
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-2.1.1
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { FlowConfig, ProviderConfig } from '../core/config';
import { isAllowedTarget } from '../core/config';
import { RequestRejectedError } from '../core/errors';
import { bindingCookie, type HttpResult, redirect } from '../core/http';
import { bindingCookieName, LOGIN_ATTEMPT_TTL_SECONDS, type RandomSource, startLogin } from '../core/login';
import type { Logger } from '../adapters/logger';
import type { SessionStore } from '../adapters/session-store';
import { errorPage } from './pages';

/** What the login flow needs. */
export interface LoginDeps {
  readonly provider: ProviderConfig;
  readonly flow: FlowConfig;
  readonly sessions: SessionStore;
  readonly logger: Logger;
  /** Epoch seconds; injectable for tests. */
  readonly now?: () => number;
  readonly random?: RandomSource;
}

const MAX_LOGIN_QUERY = 2048;
const MAX_SESSION_ID = 128;

function queryParam(params: URLSearchParams, name: string, max: number): string | undefined {
  const values = params.getAll(name);
  if (values.length > 1) {
    throw new RequestRejectedError(`the "${name}" parameter appears more than once`, 'LOGIN_INPUT_TOO_LARGE');
  }
  if (values[0] !== undefined && values[0].length > max) {
    throw new RequestRejectedError(`the "${name}" parameter is too long`, 'LOGIN_INPUT_TOO_LARGE');
  }
  return values[0] || undefined;
}

/**
 * Handles GET /login. `?session=` consumes a one-time connect link (tokens are then stored under the
 * app's user id); `?returnTo=` is honoured only when allow-listed.
 */
export async function handleLogin(event: APIGatewayProxyEventV2, deps: LoginDeps): Promise<HttpResult> {
  const logger = deps.logger.child({ route: 'login', requestId: event.requestContext?.requestId });
  const now = deps.now?.() ?? Math.floor(Date.now() / 1000);
  try {
    const raw = event.rawQueryString ?? '';
    if (raw.length > MAX_LOGIN_QUERY) {
      throw new RequestRejectedError('the sign-in request is too large', 'LOGIN_INPUT_TOO_LARGE', 414);
    }
    const params = new URLSearchParams(raw);
    const sessionId = queryParam(params, 'session', MAX_SESSION_ID);
    const requestedReturnTo = queryParam(params, 'returnTo', 1024);

    let appUserId: string | undefined;
    let returnTo = requestedReturnTo;
    if (sessionId) {
      const link = await deps.sessions.consumeLink(sessionId, now);
      if (!link) {
        throw new RequestRejectedError(
          'this connect link is not valid (unknown, expired or already used): ask for a new link',
          'LOGIN_INVALID_SESSION',
        );
      }
      appUserId = link.appUserId;
      returnTo = link.returnTo ?? requestedReturnTo;
    }
    returnTo ??= deps.flow.successRedirect;
    if (returnTo !== undefined) {
      if (!isAllowedTarget(returnTo, deps.flow.returnToAllowlist)) {
        throw new RequestRejectedError(
          'the "returnTo" address is not on the allow-list',
          'LOGIN_RETURN_TO_NOT_ALLOWED',
        );
      }
      // Stored as the URL that was checked, serialised: the raw text could still carry characters
      // (CR, LF, tabs) that URL parsing drops but a Location header must not contain.
      returnTo = new URL(returnTo).href;
    }

    const login = startLogin(deps.provider, { now, random: deps.random, appUserId, returnTo });
    await deps.sessions.putAttempt(login.attempt);
    const redirectUri = new URL(deps.provider.redirectUri);
    const cookie = bindingCookie(bindingCookieName(login.attempt.state), login.bindingValue, {
      path: redirectUri.pathname,
      secure: redirectUri.protocol === 'https:',
      maxAgeSeconds: LOGIN_ATTEMPT_TTL_SECONDS,
    });
    logger.info('login started', { connectLink: Boolean(appUserId), pkce: deps.provider.pkce });
    return redirect(login.authorizationUrl, [cookie]);
  } catch (error) {
    return errorPage(error, logger);
  }
}
