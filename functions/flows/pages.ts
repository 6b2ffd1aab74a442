/**
 * Maps the outcome of a flow to a page: named errors to one of the page vocabulary's outcomes
 * (functions/core/result-page.ts) with their status and plain words, anything unexpected to a
 * generic 500 with details only in the log.
 */
import { DEFAULT_APP_NAME, type FlowConfig, loginUrlFromRedirect, type ProviderConfig } from '../core/config';
import {
  ClientCredentialsRejectedError,
  DependencyUnavailableError,
  type ErrorCode,
  InvalidGrantError,
  IssuerMismatchError,
  KeyUnavailableError,
  ProviderResponseError,
  ProviderUnavailableError,
  RequestRejectedError,
} from '../core/errors';
import { htmlPage, type HttpResult } from '../core/http';
import {
  type Outcome,
  type PageContext,
  renderOutcome,
  type ResultKind,
  RETRY_AFTER_SECONDS,
} from '../core/result-page';
import type { Logger } from '../adapters/logger';

/** The page of each refusal code the login and callback flows throw. */
const REFUSALS: Partial<Record<ErrorCode, ResultKind>> = {
  CALLBACK_MISSING_PARAMETERS: 'malformed',
  CALLBACK_INPUT_TOO_LARGE: 'malformed',
  CALLBACK_INVALID_STATE: 'attempt-invalid',
  CALLBACK_BROWSER_MISMATCH: 'wrong-browser',
  CALLBACK_LINK_BOUND: 'link-bound',
  CALLBACK_PUBLIC_DISABLED: 'public-off',
  LOGIN_INVALID_SESSION: 'invalid-link',
  LOGIN_RETURN_TO_NOT_ALLOWED: 'return-to-refused',
  LOGIN_INPUT_TOO_LARGE: 'malformed',
  LOGIN_PUBLIC_DISABLED: 'public-off',
};

/** What the pages need, from the provider and flow settings. */
export function pageContext(
  provider: Pick<ProviderConfig, 'redirectUri'>,
  flow: Pick<FlowConfig, 'appName' | 'publicLogin' | 'returnToAllowlist'> | undefined,
): PageContext {
  return {
    appName: flow?.appName ?? DEFAULT_APP_NAME,
    publicLogin: flow?.publicLogin ?? true,
    loginUrl: loginUrlFromRedirect(provider.redirectUri),
    returnToAllowlist: flow?.returnToAllowlist ?? [],
  };
}

/**
 * Which page an error thrown by the login or callback flow gets, logged here: known refusals as a
 * warning with their code, provider trouble with its name and code, the rest as an error.
 */
export function failureKind(error: unknown, logger: Logger): ResultKind {
  if (error instanceof RequestRejectedError) {
    logger.warn('request refused', { errorCode: error.code, status: error.status });
    return REFUSALS[error.code] ?? 'internal';
  }
  if (error instanceof IssuerMismatchError) {
    // RFC 9207: a response from another authorization server is refused before the code is used.
    logger.warn('request refused', { errorCode: 'CALLBACK_ISSUER_MISMATCH', status: 400 });
    return 'issuer-mismatch';
  }
  if (error instanceof InvalidGrantError) {
    logger.warn('sign-in code refused by the provider', { error });
    return 'code-refused';
  }
  if (error instanceof ClientCredentialsRejectedError) {
    // The operator's problem: the person can do nothing about it but come back later.
    logger.error("the provider refused the broker's client credentials", { errorCode: error.code, error });
    return 'service-rejected';
  }
  if (error instanceof ProviderUnavailableError) {
    logger.warn('provider unavailable', { error });
    return 'unavailable';
  }
  if (error instanceof KeyUnavailableError) {
    // KMS unreachable, throttled, or the key disabled or not granted: the operator's to see (an
    // error), the person's only to retry, so a 503 rather than the generic 500.
    logger.error('the field encryption key could not be used', { errorCode: error.code, error });
    return 'storage-unavailable';
  }
  if (error instanceof DependencyUnavailableError && error.retryable) {
    // DynamoDB or Secrets Manager throttled, slow or unreachable: nothing was half-written (every
    // write is one conditional request), and the person only has to try again.
    logger.warn('a dependency is unavailable', { errorCode: error.code, dependency: error.dependency, error });
    return 'storage-unavailable';
  }
  if (error instanceof ProviderResponseError) {
    logger.error('provider gave an unexpected response', { error });
    return 'bad-response';
  }
  logger.error('unexpected error', { error });
  return 'internal';
}

/**
 * The page of `outcome`, as an HTTP result. A 503 ("try again") says when, in `Retry-After`, for
 * the clients and monitors that read it.
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3
 */
export function outcomePage(outcome: Outcome, context: PageContext, cookies?: string[]): HttpResult {
  const { status, page } = renderOutcome(outcome, context);
  const result = htmlPage(status, page, cookies);
  if (status === 503) result.headers['retry-after'] = String(RETRY_AFTER_SECONDS);
  return result;
}

/** Turns an error thrown by a flow into its page (logged by {@link failureKind}). */
export function errorPage(
  error: unknown,
  logger: Logger,
  context: PageContext,
  via: Outcome['via'],
  cookies?: string[],
): HttpResult {
  return outcomePage({ kind: failureKind(error, logger), via }, context, cookies);
}
