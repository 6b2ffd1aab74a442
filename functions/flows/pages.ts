/**
 * Maps the outcome of a flow to an HTTP page: named errors to their status and a plain message,
 * anything unexpected to a generic 500 with details only in the log.
 */
import {
  ClientCredentialsRejectedError,
  InvalidGrantError,
  IssuerMismatchError,
  ProviderResponseError,
  ProviderUnavailableError,
  RequestRejectedError,
} from '../core/errors';
import { htmlPage, type HttpResult } from '../core/http';
import type { Logger } from '../adapters/logger';

const TITLE = 'Sign-in not completed';

/** Error messages are lowercase for logs and callers; a page shows them as a sentence. */
function sentence(message: string): string {
  const text = message.charAt(0).toUpperCase() + message.slice(1);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/**
 * Turns an error thrown by the login or callback flow into a page. Known errors get their own
 * status and message; the rest are logged and answered with a generic 500.
 */
export function errorPage(error: unknown, logger: Logger, cookies?: string[]): HttpResult {
  if (error instanceof RequestRejectedError) {
    logger.warn('request refused', { errorCode: error.code, status: error.status });
    return htmlPage(error.status, { title: TITLE, message: sentence(error.message), detail: error.detail }, cookies);
  }
  if (error instanceof IssuerMismatchError) {
    // RFC 9207: a response from another authorization server is refused before the code is used.
    logger.warn('request refused', { errorCode: 'CALLBACK_ISSUER_MISMATCH', status: 400 });
    return htmlPage(400, { title: TITLE, message: sentence(error.message) }, cookies);
  }
  if (error instanceof InvalidGrantError) {
    logger.warn('sign-in code refused by the provider', { error });
    return htmlPage(
      400,
      {
        title: TITLE,
        message: 'The sign-in code was already used or has expired. Please open the sign-in link again.',
      },
      cookies,
    );
  }
  if (error instanceof ClientCredentialsRejectedError) {
    // The operator's problem: the person can do nothing about it but come back later.
    logger.error("the provider refused the broker's client credentials", { errorCode: error.code, error });
    return htmlPage(
      502,
      {
        title: TITLE,
        message: 'Kroger did not accept this service, so nothing was saved. The service operator has to fix this.',
      },
      cookies,
    );
  }
  if (error instanceof ProviderUnavailableError) {
    logger.warn('provider unavailable', { error });
    return htmlPage(
      503,
      { title: 'Kroger is not answering', message: 'Nothing was saved. Please try again in a few minutes.' },
      cookies,
    );
  }
  if (error instanceof ProviderResponseError) {
    logger.error('provider gave an unexpected response', { error });
    return htmlPage(
      502,
      { title: TITLE, message: 'Kroger gave an unexpected answer, so nothing was saved. Please try again later.' },
      cookies,
    );
  }
  logger.error('unexpected error', { error });
  return htmlPage(
    500,
    { title: 'Something went wrong', message: 'Nothing was saved. Please try again later.' },
    cookies,
  );
}
