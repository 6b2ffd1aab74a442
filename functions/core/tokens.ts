/**
 * The stored token record and the pure rules around it: turning a token response into what we
 * store, deciding when a token needs refreshing, and where it sits in the refresher's index.
 */
import { createHash } from 'node:crypto';
import {
  DEFAULT_REFRESH_POLICY,
  REAUTH_RETENTION_SECONDS,
  REFRESH_POLICY_SETTINGS,
  REFRESH_SHARDS,
  type RefreshPolicyName,
} from './schema';

/** `active` while the grant works; `reauth_required` once the provider refused the refresh token. */
export type TokenStatus = 'active' | 'reauth_required';

/** What a token endpoint response gives us, validated (see the provider adapter). */
export interface TokenSet {
  readonly accessToken: string;
  /** Absent when the provider did not rotate it: the stored one is then kept. */
  readonly refreshToken?: string;
  readonly tokenType: string;
  /** Granted scope, space separated. */
  readonly scope: string;
  /** Epoch seconds. */
  readonly expiresAt: number;
}

/** One item of the tokens table: one per user. */
export interface TokenRecord {
  /** The app's user id (connect link) or the Kroger profile id. */
  readonly userId: string;
  readonly profileId: string;
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly tokenType: string;
  readonly scope: string;
  readonly expiresAt: number;
  /** Incremented by every write of tokens; writes are conditional on it (optimistic lock). */
  readonly version: number;
  readonly status: TokenStatus;
  readonly statusReason?: string;
  readonly statusAt?: number;
  /** Refresh lease: who holds it and until when (epoch milliseconds). */
  readonly leaseOwner?: string;
  readonly leaseUntil?: number;
  /** Last refresh attempt (epoch seconds), its outcome, and failures in a row. */
  readonly lastRefreshAt?: number;
  readonly lastRefreshError?: string;
  readonly consecutiveFailures: number;
  /** When tokens were last obtained (login or refresh), epoch seconds. */
  readonly tokensIssuedAt: number;
  /** When the scheduled refresher should next look at this user; absent unless `active`. */
  readonly nextRefreshAt?: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  /**
   * How the grant was bound: `connect` (a completed connect link: a public sign-in never replaces
   * it) or `public` (/login without a link). Absent on items stored before the mark existed.
   */
  readonly boundBy?: 'connect' | 'public';
}

/** A valid access token as handed to readers. */
export interface AccessToken {
  readonly userId: string;
  readonly accessToken: string;
  /** Epoch seconds. */
  readonly expiresAt: number;
  readonly scope: string;
  readonly tokenType: string;
}

/** Options of one read. */
export interface GetTokenOptions {
  /**
   * Minimum remaining lifetime in seconds, capped at half the token's lifetime.
   * @default 300
   */
  readonly marginSeconds?: number;
  /**
   * Refresh even if the stored token is still valid: honoured at most once per user per
   * `FORCE_REFRESH_MIN_INTERVAL_SECONDS` (60 s by default); within it, the current token is returned.
   */
  readonly forceRefresh?: boolean;
}

/** Kroger documents 30-minute access tokens; used only when a response omits `expires_in`. */
export const DEFAULT_EXPIRES_IN_SECONDS = 1800;

/** An unused grant is refreshed at least this often, so it does not lapse. */
export const MAX_GRANT_IDLE_SECONDS = 86_400;

/** Default minimum remaining lifetime of a token handed to a reader. */
export const DEFAULT_MARGIN_SECONDS = 300;

/**
 * Builds what we store from a validated token response.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1 (scope omitted = as requested)
 */
export function toTokenSet(
  response: { access_token: string; refresh_token?: string; token_type: string; expires_in?: number; scope?: string },
  options: { now: number; requestedScope: string },
): TokenSet {
  const expiresIn =
    typeof response.expires_in === 'number' && response.expires_in > 0
      ? response.expires_in
      : DEFAULT_EXPIRES_IN_SECONDS;
  return {
    accessToken: response.access_token,
    refreshToken: response.refresh_token || undefined,
    tokenType: response.token_type.toLowerCase(),
    scope: response.scope?.trim() || options.requestedScope,
    expiresAt: options.now + Math.floor(expiresIn),
  };
}

/** True when the token stays valid for at least `marginSeconds` more. */
export function isFresh(record: Pick<TokenRecord, 'expiresAt'>, now: number, marginSeconds: number): boolean {
  return record.expiresAt - marginSeconds > now;
}

/** Shard of the refresher index for a user: stable, evenly spread. */
export function refreshShard(userId: string): number {
  return createHash('sha256').update(userId).digest().readUInt32BE(0) % REFRESH_SHARDS;
}

/** How refreshes are scheduled (see `REFRESH_POLICIES` in `schema.ts`). */
export interface RefreshPolicy {
  readonly name: RefreshPolicyName;
  /** `on-read`: an unread grant is refreshed this long after its last tokens; unused by `eager`. */
  readonly keepAliveSeconds: number;
}

/** The default policy: `eager`, as the broker always refreshed. */
export const DEFAULT_POLICY: RefreshPolicy = {
  name: DEFAULT_REFRESH_POLICY,
  keepAliveSeconds: REFRESH_POLICY_SETTINGS.KEEP_ALIVE_SECONDS.default,
};

/**
 * When the scheduled refresher should next look at a user; pushed back after failures so a failing
 * user cannot starve others.
 * - `eager`: when the access token expires, or a day after the last tokens, whichever is first;
 * - `on-read`: the keep-alive interval after the last tokens, whatever the access token's expiry
 *   (a reader refreshes an expired token when it needs one, and every refresh moves this on).
 */
export function nextRefreshAt(
  options: { expiresAt: number; tokensIssuedAt: number; retryAt?: number },
  policy: RefreshPolicy = DEFAULT_POLICY,
): number {
  const due =
    policy.name === 'on-read'
      ? options.tokensIssuedAt + policy.keepAliveSeconds
      : Math.min(options.expiresAt, options.tokensIssuedAt + MAX_GRANT_IDLE_SECONDS);
  return options.retryAt !== undefined ? Math.max(due, options.retryAt) : due;
}

/** Back-off after `failures` consecutive transient failures: 1, 2, 4 ... minutes, at most an hour. */
export function retryDelaySeconds(failures: number): number {
  return Math.min(3600, 60 * 2 ** Math.max(0, failures - 1));
}

/** Where a user sits in the scheduled refresher's due index. */
export interface RefreshSchedule {
  /** Partition of the due index. */
  readonly shard: number;
  /** Epoch seconds: the sort key the refresher queries against. */
  readonly nextRefreshAt: number;
}

/** The schedule of a user whose tokens were just obtained (a login or a refresh) at `now`. */
export function scheduleAfterTokens(
  userId: string,
  tokens: Pick<TokenSet, 'expiresAt'>,
  now: number,
  policy: RefreshPolicy = DEFAULT_POLICY,
): RefreshSchedule {
  return {
    shard: refreshShard(userId),
    nextRefreshAt: nextRefreshAt({ expiresAt: tokens.expiresAt, tokensIssuedAt: now }, policy),
  };
}

/** What a transient refresh failure at `now` changes on a user's item. */
export interface FailureRecord {
  /** Failures in a row, this one included. */
  readonly failures: number;
  /** The next scheduled attempt, pushed back by {@link retryDelaySeconds}. */
  readonly nextRefreshAt: number;
}

/**
 * The failure count and next attempt after one more transient failure of `record`: pushed back, so
 * one failing user cannot hold the scheduled refresher's attention.
 */
export function afterTransientFailure(
  record: Pick<TokenRecord, 'consecutiveFailures' | 'expiresAt' | 'tokensIssuedAt'>,
  now: number,
  policy: RefreshPolicy = DEFAULT_POLICY,
): FailureRecord {
  const failures = record.consecutiveFailures + 1;
  return {
    failures,
    nextRefreshAt: nextRefreshAt({ ...record, retryAt: now + retryDelaySeconds(failures) }, policy),
  };
}

/**
 * When DynamoDB's TTL may delete the item of a user who must sign in again (marked at `now`): kept a
 * while so `list` shows who must reconnect; a new login clears it.
 */
export function reauthDeleteAfter(now: number): number {
  return now + REAUTH_RETENTION_SECONDS;
}
