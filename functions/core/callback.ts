/**
 * Parsing the authorization response that arrives at /callback. Pure: it only checks shape and
 * size; the state lookup and browser binding happen against the store.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2
 */
import { RequestRejectedError } from './errors';
import { MAX_STATE_LENGTH } from './login';

/** Bounds on what a callback may carry; anything bigger is refused before any I/O. */
export const CALLBACK_LIMITS = {
  query: 4096,
  code: 2048,
  state: MAX_STATE_LENGTH,
  error: 128,
  errorDescription: 1024,
  iss: 512,
  cookieHeader: 8192,
} as const;

/** A well-formed authorization response: a code, or an error from the provider. */
export type CallbackParams =
  | { readonly kind: 'code'; readonly state: string; readonly code: string; readonly iss?: string }
  | {
      readonly kind: 'error';
      readonly state: string;
      readonly error: string;
      readonly errorDescription?: string;
    };

function single(params: URLSearchParams, name: keyof typeof CALLBACK_LIMITS): string | undefined {
  const values = params.getAll(name === 'errorDescription' ? 'error_description' : name);
  const label = name === 'errorDescription' ? 'error_description' : name;
  if (values.length > 1) {
    // RFC 6749 section 3.1: request and response parameters must not be included more than once.
    throw new RequestRejectedError(`the "${label}" parameter appears more than once`, 'CALLBACK_MISSING_PARAMETERS');
  }
  const value = values[0];
  if (value !== undefined && value.length > CALLBACK_LIMITS[name]) {
    throw new RequestRejectedError(`the "${label}" parameter is too long`, 'CALLBACK_INPUT_TOO_LARGE');
  }
  return value === '' ? undefined : value;
}

/**
 * Validates the raw query string of a callback request. Extra parameters (such as `iss`, RFC 9207,
 * or provider-specific ones) are accepted and ignored unless named here.
 * @throws {RequestRejectedError} missing, repeated or oversized parameters
 */
export function parseCallbackQuery(rawQuery: string | undefined): CallbackParams {
  const query = rawQuery ?? '';
  if (query.length > CALLBACK_LIMITS.query) {
    throw new RequestRejectedError('the callback request is too large', 'CALLBACK_INPUT_TOO_LARGE', 414);
  }
  const params = new URLSearchParams(query);
  const state = single(params, 'state');
  const code = single(params, 'code');
  const error = single(params, 'error');
  const errorDescription = single(params, 'errorDescription');
  const iss = single(params, 'iss');
  if (!state) {
    throw new RequestRejectedError(
      'the "state" parameter is missing: open the sign-in link again to start over',
      'CALLBACK_MISSING_PARAMETERS',
    );
  }
  if (error) {
    return { kind: 'error', state, error, errorDescription };
  }
  if (!code) {
    throw new RequestRejectedError('the "code" parameter is missing', 'CALLBACK_MISSING_PARAMETERS');
  }
  return { kind: 'code', state, code, iss };
}

/**
 * Reads one cookie from API Gateway's `cookies` array (payload 2.0) or a raw `Cookie` header.
 * Returns undefined when it is absent, repeated with different values, or oversized.
 */
export function readCookie(cookies: readonly string[] | undefined, name: string): string | undefined {
  if (!cookies) return undefined;
  const total = cookies.reduce((n, c) => n + c.length, 0);
  if (total > CALLBACK_LIMITS.cookieHeader) return undefined;
  const found = new Set<string>();
  for (const part of cookies.flatMap((c) => c.split(';'))) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      found.add(part.slice(eq + 1).trim());
    }
  }
  return found.size === 1 ? [...found][0] : undefined;
}

/** Provider error codes a person can act on, mapped to plain words; anything else is shown generically. */
const PROVIDER_ERRORS: Readonly<Record<string, string>> = {
  access_denied: 'You cancelled the sign-in or did not approve access, so nothing was connected.',
  login_required: 'Kroger needs you to sign in again.',
  consent_required: 'Kroger needs your approval to connect.',
  invalid_scope: 'Kroger refused the permissions this service asked for.',
  temporarily_unavailable: 'Kroger is temporarily unavailable. Please try again in a few minutes.',
  server_error: 'Kroger had a problem completing the sign-in. Please try again.',
};

/**
 * A plain message for a provider `error` response. The raw `error_description` is shown only as
 * escaped text by the page renderer; it is never reflected into markup or a header.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
 */
export function describeProviderError(error: string): string {
  return PROVIDER_ERRORS[error] ?? 'Kroger did not complete the sign-in, so nothing was connected.';
}
