/**
 * What a token endpoint's non-2xx answer means, from its status, headers and (bounded) body alone.
 * Kroger does not answer a dead refresh token with RFC 6749's `invalid_grant` only: its tutorial
 * documents "400 Missing/Invalid Refresh Token", its API errors come as `{"errors":{"reason","code"}}`
 * with no OAuth `error`, and other servers (glewlwyd) answer a revoked refresh token with a bare 400.
 * So the rule is by status first and body second:
 *
 * | answer                                                        | verdict                       |
 * | ------------------------------------------------------------- | ----------------------------- |
 * | 5xx, 408, 425, 429, or `temporarily_unavailable`/`server_error` | unavailable (retry)          |
 * | 401 (any body), `invalid_client`, `unauthorized_client`, `unsupported_grant_type` | client rejected |
 * | `invalid_grant` (any 4xx)                                      | grant refused, confirmed      |
 * | 400 `invalid_request` + "refresh token" in the description     | grant refused, confirmed      |
 * | 400 `{"errors":{...}}` + "refresh token" in the reason         | grant refused, confirmed      |
 * | 404, 405, 415 (the request went to the wrong place)           | bad response (operator)       |
 * | any other 4xx: bare, not JSON, other OAuth error, other `errors` | grant refused, unconfirmed  |
 *
 * Pure: the provider adapter turns the verdict into a named error, the refresher decides.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */
import type { RefusalShapeName } from './errors';

/** The longest recorded reason (`statusReason`): enough for an error code and a sentence. */
export const MAX_REASON_LENGTH = 160;

/** What a non-2xx token endpoint answer means. */
export type TokenErrorVerdict =
  | { readonly kind: 'unavailable'; readonly status: number }
  | { readonly kind: 'client-rejected'; readonly status: number; readonly oauthError?: string }
  | {
      readonly kind: 'grant-refused';
      readonly status: number;
      /** True when the answer names a dead grant; false when it only refuses (see InvalidGrantError). */
      readonly confirmed: boolean;
      readonly shape: RefusalShapeName;
      /** The provider's error and reason, sanitized: safe to store where readers see it. */
      readonly reason: string;
      readonly oauthError?: string;
    }
  | { readonly kind: 'bad-response'; readonly status: number; readonly oauthError?: string };

/** A non-2xx answer as read by the adapter: the body already bounded in size. */
export interface TokenErrorAnswer {
  readonly status: number;
  readonly contentType?: string | null;
  readonly wwwAuthenticate?: string | null;
  readonly body: string;
}

const UNAVAILABLE_STATUSES = new Set([408, 425, 429]);
/** Statuses that say the request went to the wrong URL or in the wrong form: not about the grant. */
const WRONG_PLACE_STATUSES = new Set([404, 405, 415]);
const CLIENT_ERRORS = new Set(['invalid_client', 'unauthorized_client', 'unsupported_grant_type']);
const UNAVAILABLE_ERRORS = new Set(['temporarily_unavailable', 'server_error']);
/** Kroger's "Missing/Invalid Refresh Token", and anything else that names the refresh token. */
const NAMES_REFRESH_TOKEN = /refresh[\s_-]*token/i;

/** An RFC 6749 error code: `%x20-21 / %x23-5B / %x5D-7E`, bounded. */
const OAUTH_ERROR_CODE = /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$/;

/** A run of characters that could be a token, a code or a key: never stored or logged. */
const TOKEN_LIKE = /[A-Za-z0-9._~+/=-]{24,}/g;

/**
 * Makes provider text safe to store and show: printable ASCII only, whitespace collapsed, anything
 * token-shaped replaced, and at most `max` characters.
 */
export function sanitizeReason(text: string, max = MAX_REASON_LENGTH): string {
  const clean = text
    .replace(/[^\x20-\x7e]+/g, ' ')
    .replace(TOKEN_LIKE, '[redacted]')
    .replace(/\s+/g, ' ')
    .trim();
  return clean.length > max ? `${clean.slice(0, max - 3)}...` : clean;
}

function parseJsonObject(body: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const text = (value: unknown): string | undefined =>
  typeof value === 'string' && value.trim() ? value.trim() : undefined;

/** `error` from a challenge such as `Basic realm="x", error="invalid_client"`. */
function challengeError(header: string | null | undefined): string | undefined {
  return header ? /\berror="?([\w.-]{1,64})"?/i.exec(header)?.[1] : undefined;
}

/** Classifies a non-2xx token endpoint answer; see the module documentation for the table. */
export function classifyTokenError(answer: TokenErrorAnswer): TokenErrorVerdict {
  const { status } = answer;
  const json = parseJsonObject(answer.body);
  const rawError = text(json?.error);
  const oauthError = rawError && OAUTH_ERROR_CODE.test(rawError) ? rawError : undefined;
  const description = text(json?.error_description);

  if (status >= 500 || UNAVAILABLE_STATUSES.has(status)) return { kind: 'unavailable', status };
  if (oauthError && UNAVAILABLE_ERRORS.has(oauthError)) return { kind: 'unavailable', status };
  if (oauthError === 'invalid_grant') {
    return {
      kind: 'grant-refused',
      status,
      confirmed: true,
      shape: 'invalid_grant',
      reason: sanitizeReason(description ? `invalid_grant: ${description}` : 'invalid_grant'),
      oauthError,
    };
  }
  const challenged = challengeError(answer.wwwAuthenticate);
  if (status === 401 || (oauthError && CLIENT_ERRORS.has(oauthError))) {
    return { kind: 'client-rejected', status, oauthError: oauthError ?? challenged };
  }
  if (WRONG_PLACE_STATUSES.has(status)) return { kind: 'bad-response', status, oauthError };

  if (oauthError) {
    const named =
      oauthError === 'invalid_request' && description !== undefined && NAMES_REFRESH_TOKEN.test(description);
    return {
      kind: 'grant-refused',
      status,
      confirmed: named,
      shape: oauthError === 'invalid_request' ? 'invalid_request' : 'other',
      reason: sanitizeReason(description ? `${oauthError}: ${description}` : oauthError),
      oauthError,
    };
  }
  const errors = json?.errors;
  if (typeof errors === 'object' && errors !== null) {
    // Kroger's API error shape; sometimes a list of them.
    const first = (Array.isArray(errors) ? errors[0] : errors) as Record<string, unknown> | undefined;
    const reasonText = text(first?.reason) ?? text(first?.message);
    const code = text(first?.code);
    return {
      kind: 'grant-refused',
      status,
      confirmed: reasonText !== undefined && NAMES_REFRESH_TOKEN.test(reasonText),
      shape: 'errors_object',
      reason: sanitizeReason(
        [code, reasonText].filter(Boolean).join(': ') || `http_${status} (errors without a reason)`,
      ),
    };
  }
  const empty = answer.body.trim() === '';
  const type = answer.contentType?.split(';')[0].trim().toLowerCase();
  return {
    kind: 'grant-refused',
    status,
    confirmed: false,
    shape: empty ? 'no_body' : 'other',
    reason: empty ? `http_${status} (no body)` : sanitizeReason(`http_${status} (${type || 'untyped'} body)`),
  };
}

/** Dead-grant verdicts of one refusal shape, in the current fixed window and the one before. */
export interface RefusalCounts {
  readonly current: number;
  readonly previous: number;
}

/**
 * Estimated verdicts in the last `windowSeconds` (a sliding window over two fixed ones): the current
 * window's count plus the previous window's, weighted by how much of it the sliding window still
 * covers. Smooths the burst at a window boundary that a fixed window would let through twice.
 */
export function refusalsInWindow(counts: RefusalCounts, nowSeconds: number, windowSeconds: number): number {
  const elapsed = (nowSeconds % windowSeconds) / windowSeconds;
  return counts.current + counts.previous * (1 - elapsed);
}

/**
 * Whether a dead-grant verdict is held back (the grant kept, the operator alarmed) instead of marking
 * the user `reauth_required`: more than `threshold` verdicts of one shape in the window means
 * something is wrong with the provider or the broker, not with that many users at once.
 * @param threshold 0 turns the guard off
 */
export function isMassRefusal(
  counts: RefusalCounts,
  options: { nowSeconds: number; windowSeconds: number; threshold: number },
): boolean {
  return (
    options.threshold > 0 && refusalsInWindow(counts, options.nowSeconds, options.windowSeconds) > options.threshold
  );
}
