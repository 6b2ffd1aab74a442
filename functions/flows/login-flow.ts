/**
 * GET /login: start an authorization code flow for this browser and redirect to the provider.
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-2.1.1
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { FlowConfig, ProviderConfig } from '../core/config';
import { isAllowedTarget, loginUrlFromRedirect } from '../core/config';
import { readCookie } from '../core/callback';
import { carriesConnectCode } from '../core/connect';
import { RequestRejectedError } from '../core/errors';
import { bindingCookie, type HttpResult, redirect } from '../core/http';
import {
  bindingCookieName,
  LOGIN_ATTEMPT_TTL_SECONDS,
  LOGIN_LEDGER_COOKIE,
  planLoginCookies,
  type RandomSource,
  startLogin,
} from '../core/login';
import type { Logger } from '../adapters/logger';
import type { SessionStore } from '../adapters/session-store';
import { errorPage, pageContext } from './pages';

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
 * The return URL as checked: allow-listed, without a `connect_code` of its own (the callback adds
 * one), serialised, since the raw text could still carry characters (CR, LF, tabs) that URL parsing
 * drops but a Location header must not contain.
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.11 (open redirection)
 */
function checkedReturnTo(returnTo: string | undefined, flow: FlowConfig): string | undefined {
  if (returnTo === undefined) return undefined;
  if (!isAllowedTarget(returnTo, flow.returnToAllowlist) || carriesConnectCode(returnTo)) {
    throw new RequestRejectedError(
      'the "returnTo" address is not on the allow-list (or carries a "connect_code" of its own)',
      'LOGIN_RETURN_TO_NOT_ALLOWED',
    );
  }
  return new URL(returnTo).href;
}

/**
 * Handles GET /login. `?session=` uses a one-time connect link: the sign-in then yields a pending
 * connection for the link's app user, which the app completes. The link's return URL (or
 * `?returnTo=`, honoured only when allow-listed) is checked before the link is used up, so a bad
 * one leaves the link intact. Without a link, `PUBLIC_LOGIN=false` refuses the request.
 */
export async function handleLogin(event: APIGatewayProxyEventV2, deps: LoginDeps): Promise<HttpResult> {
  const logger = deps.logger.child({ route: 'login', requestId: event.requestContext?.requestId });
  const now = deps.now?.() ?? Math.floor(Date.now() / 1000);
  const context = pageContext(deps.provider, deps.flow);
  let via: 'link' | 'public' = 'public';
  try {
    const raw = event.rawQueryString ?? '';
    if (raw.length > MAX_LOGIN_QUERY) {
      throw new RequestRejectedError('the sign-in request is too large', 'LOGIN_INPUT_TOO_LARGE', 414);
    }
    const params = new URLSearchParams(raw);
    const sessionId = queryParam(params, 'session', MAX_SESSION_ID);
    via = sessionId ? 'link' : 'public';
    const requestedReturnTo = queryParam(params, 'returnTo', 1024);

    let appUserId: string | undefined;
    let returnTo: string | undefined;
    const invalid = () =>
      new RequestRejectedError(
        'this connect link is not valid (unknown, expired or already used): ask for a new link',
        'LOGIN_INVALID_SESSION',
      );
    if (sessionId) {
      // Read first, check, then consume: a return URL that is refused leaves the link usable.
      const link = await deps.sessions.peekLink(sessionId, now);
      if (!link) throw invalid();
      returnTo = checkedReturnTo(link.returnTo ?? requestedReturnTo ?? deps.flow.successRedirect, deps.flow);
      appUserId = link.appUserId;
    } else {
      if (deps.flow.publicLogin === false) {
        throw new RequestRejectedError(
          'public sign-in is turned off: connect through a link from the app',
          'LOGIN_PUBLIC_DISABLED',
          403,
        );
      }
      returnTo = checkedReturnTo(requestedReturnTo ?? deps.flow.successRedirect, deps.flow);
    }

    const login = startLogin(deps.provider, { now, random: deps.random, appUserId, returnTo });
    // The attempt is stored before the link is consumed: when DynamoDB or KMS fails the write, the
    // person gets a 503 and the link still works. An attempt whose link was then used by a
    // concurrent request is never completed: no browser holds its binding cookie, and it expires.
    await deps.sessions.putAttempt(login.attempt);
    if (sessionId && !(await deps.sessions.consumeLink(sessionId, now))) throw invalid();
    const redirectUri = new URL(deps.provider.redirectUri);
    const secure = redirectUri.protocol === 'https:';
    const name = bindingCookieName(login.attempt.state);
    // At most MAX_LIVE_LOGINS binding cookies per browser: the oldest beyond that are expired, so
    // repeated logins cannot grow the cookie header past what /callback accepts.
    const loginPath = new URL(loginUrlFromRedirect(deps.provider.redirectUri)).pathname;
    const cookieHeader = event.cookies ?? (event.headers?.cookie ? [event.headers.cookie] : undefined);
    const plan = planLoginCookies(
      readCookie(cookieHeader, LOGIN_LEDGER_COOKIE),
      { name, expiresAt: login.attempt.expiresAt },
      now,
    );
    const onCallback = (maxAgeSeconds: number) => ({ path: redirectUri.pathname, secure, maxAgeSeconds });
    const cookies = [
      bindingCookie(name, login.bindingValue, onCallback(LOGIN_ATTEMPT_TTL_SECONDS)),
      ...plan.evict.map((evicted) => bindingCookie(evicted, '', onCallback(0))),
      bindingCookie(LOGIN_LEDGER_COOKIE, plan.ledger, {
        path: loginPath,
        secure,
        maxAgeSeconds: LOGIN_ATTEMPT_TTL_SECONDS,
      }),
    ];
    logger.info('login started', {
      connectLink: Boolean(appUserId),
      pkce: deps.provider.pkce,
      evictedLogins: plan.evict.length,
    });
    return redirect(login.authorizationUrl, cookies);
  } catch (error) {
    return errorPage(error, logger, context, via);
  }
}
