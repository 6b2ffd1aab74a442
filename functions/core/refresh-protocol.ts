/**
 * The contract between the reader library and the broker's refresh function (a Lambda invoked with
 * IAM): what a reader may ask for, how the function checks it, and what it answers. The answer never
 * carries a token: the reader re-reads the tokens table, where IAM lets it read the access token only.
 */
import { ArgumentError, type ErrorCode, type FunctionFailure, type ReceivedFunctionFailure } from './errors';
import { DEFAULT_EXPIRES_IN_SECONDS } from './tokens';

/**
 * The largest `marginSeconds` the refresh function accepts without refusing the request (readers
 * deployed before the cap send up to this much). What is honoured is capped by {@link capMarginSeconds}.
 */
export const MAX_REQUEST_MARGIN_SECONDS = 3600;

/** Default of `FORCE_REFRESH_MIN_INTERVAL_SECONDS`: a forced refresh at most once a minute per user. */
export const DEFAULT_FORCE_REFRESH_MIN_INTERVAL_SECONDS = 60;

/**
 * The margin a read is held to: what was asked, but never more than half the token's lifetime, so a
 * freshly issued token always satisfies it and no margin can make every read a refresh (a margin of
 * 3600 s against Kroger's 1800-s tokens did). One limit for the reader library, the refresh function
 * and the scheduled refresher.
 * @param lifetimeSeconds the token's lifetime (`expiresAt - tokensIssuedAt`); unknown (a reader
 * cannot read when the token was issued) or not positive means Kroger's 30 minutes
 */
export function capMarginSeconds(requested: number, lifetimeSeconds?: number): number {
  const lifetime = lifetimeSeconds !== undefined && lifetimeSeconds > 0 ? lifetimeSeconds : DEFAULT_EXPIRES_IN_SECONDS;
  return Math.max(0, Math.min(requested, Math.floor(lifetime / 2)));
}

/**
 * Whether a forced refresh is honoured: only when the tokens were issued (by a login or a refresh,
 * by any process) at least `minIntervalSeconds` ago. Within the interval the current token is
 * returned, so no reader can spend the provider's per-endpoint daily limits by forcing refreshes.
 */
export function mayForceRefresh(tokensIssuedAt: number, now: number, minIntervalSeconds: number): boolean {
  return now - tokensIssuedAt >= minIntervalSeconds;
}

/** The largest user id accepted anywhere a user id comes from outside. */
export const MAX_USER_ID_LENGTH = 256;

/** A request to the refresh function. */
export interface RefreshRequest {
  readonly userId: string;
  /** Refresh even if the stored token is still valid. */
  readonly forceRefresh?: boolean;
  /** Minimum remaining lifetime the caller needs, in seconds. */
  readonly marginSeconds?: number;
}

/**
 * Codes only the wire carries: a malformed request (`BAD_REQUEST`, from before the codes were a
 * closed set; kept so readers already deployed keep understanding it) and an unexpected failure.
 */
export type RefreshWireCode = 'BAD_REQUEST' | 'INTERNAL';

/** What the refresh function answers: the new expiry, or a stable error code and message. */
export type RefreshFunctionResult =
  { readonly ok: true; readonly expiresAt: number } | FunctionFailure<ErrorCode | RefreshWireCode>;

/**
 * An answer as a reader receives it: the function may be a newer broker's, with a code this reader
 * does not know, so the code is any string here.
 */
export type ReceivedRefreshResult = { readonly ok: true; readonly expiresAt: number } | ReceivedFunctionFailure;

/**
 * Checks a refresh function event (JSON from another service, so anything at all).
 * @throws {ArgumentError} a missing, empty or oversized `userId`, or a `marginSeconds` out of range
 */
export function parseRefreshRequest(event: unknown): RefreshRequest {
  const request = (typeof event === 'object' && event !== null ? event : {}) as Record<string, unknown>;
  const { userId, marginSeconds } = request;
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > MAX_USER_ID_LENGTH) {
    throw new ArgumentError(`expected "userId" to be a string of 1 to ${MAX_USER_ID_LENGTH} characters`);
  }
  if (
    marginSeconds !== undefined &&
    (typeof marginSeconds !== 'number' || marginSeconds < 0 || marginSeconds > MAX_REQUEST_MARGIN_SECONDS)
  ) {
    throw new ArgumentError(`expected "marginSeconds" to be a number from 0 to ${MAX_REQUEST_MARGIN_SECONDS}`);
  }
  return { userId, forceRefresh: request.forceRefresh === true, marginSeconds };
}
