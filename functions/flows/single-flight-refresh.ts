/**
 * Valid access tokens on demand: read the stored token, and when it is too close to expiry refresh
 * it, single-flight across processes. The refresh lease in DynamoDB makes one process the refresher;
 * the others wait and re-read what it wrote. The rotated refresh token is stored with the new access
 * token in one write conditional on `version`, so an older pair never overwrites a newer one.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2 (refresh token rotation)
 */
import { randomUUID } from 'node:crypto';
import {
  ConcurrentUpdateError,
  InvalidGrantError,
  ProviderResponseError,
  ProviderUnavailableError,
  ReauthRequiredError,
  RefreshInProgressError,
  UnknownUserError,
} from '../core/errors';
import {
  type AccessToken,
  afterTransientFailure,
  DEFAULT_MARGIN_SECONDS,
  type GetTokenOptions,
  isFresh,
  reauthDeleteAfter,
  scheduleAfterTokens,
  type TokenRecord,
  type TokenSet,
} from '../core/tokens';
import type { EventPublisher } from '../adapters/events';
import type { Logger } from '../adapters/logger';
import type { ProviderClient } from '../adapters/provider';
import type { TokenStore } from '../adapters/token-store';

// Defined in core (the published reader's declarations must not reach the provider client's).
export type { AccessToken, GetTokenOptions };

/** Options of the scheduled sweep's refresh of one due user (not part of the reader API). */
export interface DueRefreshOptions {
  /** Minimum remaining lifetime in seconds: the sweep's window. */
  readonly marginSeconds: number;
  /**
   * Also refresh when the user is scheduled for a refresh by this time (epoch seconds): how the
   * sweep keeps an idle grant from lapsing.
   */
  readonly dueBy: number;
}

/** Everything {@link obtain} may be asked: a reader's options or the sweep's. */
type ObtainOptions = GetTokenOptions & { readonly dueBy?: number };

/** What the refresher needs. */
export interface RefreshDeps {
  readonly tokens: TokenStore;
  readonly client: Pick<ProviderClient, 'refresh'>;
  readonly events: EventPublisher;
  readonly logger: Logger;
  /** Epoch milliseconds; injectable for tests. */
  readonly nowMs?: () => number;
  /**
   * Prefix of this process's lease owner ids. Every refresh attempt owns its lease under its own id
   * (prefix + a fresh UUID): two calls in one process must exclude each other as two processes do.
   * @default a random UUID
   */
  readonly owner?: string;
  /**
   * How long a lease lasts. Must outlast one provider call (its timeout) with room to spare: a lease
   * that expired mid-call would let a second process present the same single-use refresh token.
   * @default 30 s
   */
  readonly leaseMs?: number;
  /** How long a reader waits for another process's refresh before giving up. @default 12 s */
  readonly maxWaitMs?: number;
  /** Consecutive transient failures after which `token.refresh_failed` is published. @default 3 */
  readonly failureEventThreshold?: number;
}

/** Reads and refreshes tokens; see {@link createTokenRefresher}. */
export interface TokenRefresher {
  /**
   * Returns an access token valid for at least the margin, refreshing first when needed.
   * @throws {UnknownUserError} no tokens for this user
   * @throws {ReauthRequiredError} the grant is gone; the user must sign in again
   * @throws {ProviderUnavailableError} the provider failed transiently; nothing was lost, try again
   * @throws {RefreshInProgressError} another process is refreshing and did not finish in time
   */
  getAccessToken(userId: string, options?: GetTokenOptions): Promise<AccessToken>;
  /**
   * The scheduled sweep's call for a user it found in the due index: refreshes when the token expires
   * within the margin or the user is due by `dueBy`, and says whether this call refreshed the token
   * (`refreshed`) or found it already fresh (`fresh`): the sweep's counts.
   */
  refreshIfDue(userId: string, options: DueRefreshOptions): Promise<'refreshed' | 'fresh'>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The part of a stored record a reader gets. */
export function toAccessToken(
  record: Pick<TokenRecord, 'userId' | 'accessToken' | 'expiresAt' | 'scope' | 'tokenType'>,
): AccessToken {
  return {
    userId: record.userId,
    accessToken: record.accessToken,
    expiresAt: record.expiresAt,
    scope: record.scope,
    tokenType: record.tokenType,
  };
}

/**
 * Whether a stored token answers the request apart from its remaining lifetime: a forced refresh is
 * satisfied by any refresh after it was asked for; a scheduled one by the user no longer being due.
 */
function isSatisfied(record: TokenRecord, firstVersion: number, options: ObtainOptions): boolean {
  if (options.forceRefresh) return record.version > firstVersion;
  if (options.dueBy !== undefined && record.nextRefreshAt !== undefined) return record.nextRefreshAt > options.dueBy;
  return true;
}

/** Creates the refresher. */
export function createTokenRefresher(deps: RefreshDeps): TokenRefresher {
  const nowMs = deps.nowMs ?? Date.now;
  const ownerPrefix = deps.owner ?? randomUUID();
  const leaseMs = deps.leaseMs ?? 30_000;
  const maxWaitMs = deps.maxWaitMs ?? 12_000;
  const threshold = deps.failureEventThreshold ?? 3;
  const seconds = () => Math.floor(nowMs() / 1000);

  const publish = async (type: Parameters<EventPublisher['publish']>[0], record: TokenRecord, extra: object = {}) => {
    try {
      await deps.events.publish(type, {
        userId: record.userId,
        profileId: record.profileId,
        at: new Date(nowMs()).toISOString(),
        ...extra,
      });
    } catch (error) {
      deps.logger.error('could not publish event', { event: type, userId: record.userId, error });
    }
  };

  /**
   * Stores a refresh result. The provider has already rotated the refresh token, so the new one is
   * the only one left: a failed write (beyond the SDK's own retries) is tried again while the lease
   * still holds, before the grant is given up for lost.
   */
  const saveRotated = async (record: TokenRecord, tokens: TokenSet, logger: Logger): Promise<TokenRecord> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const now = seconds();
        return await deps.tokens.saveRefresh({
          userId: record.userId,
          version: record.version,
          tokens,
          now,
          nextRefreshAt: scheduleAfterTokens(record.userId, tokens, now).nextRefreshAt,
        });
      } catch (error) {
        if (error instanceof ConcurrentUpdateError || attempt >= 3) {
          if (!(error instanceof ConcurrentUpdateError)) {
            logger.error('refreshed tokens could not be stored; the user may have to sign in again', {
              errorCode: 'ROTATED_TOKEN_NOT_SAVED',
              error,
            });
          }
          throw error;
        }
        await sleep(250 * attempt);
      }
    }
  };

  /** Refreshes with the lease held; `record` is the item as read when the lease was taken. */
  const refreshHeld = async (record: TokenRecord, logger: Logger): Promise<AccessToken> => {
    let tokens;
    try {
      tokens = await deps.client.refresh({ refreshToken: record.refreshToken, scope: record.scope });
    } catch (error) {
      const now = seconds();
      if (error instanceof InvalidGrantError) {
        // One refusal is final: retrying a refused refresh token could only look like reuse.
        await deps.tokens.markReauthRequired({
          userId: record.userId,
          version: record.version,
          reason: 'invalid_grant',
          now,
          deleteAfter: reauthDeleteAfter(now),
        });
        logger.warn('grant refused by the provider; user must sign in again', { userId: record.userId });
        await publish('token.reauth_required', record, { reason: 'invalid_grant' });
        throw new ReauthRequiredError(record.userId, 'invalid_grant');
      }
      const reason = error instanceof ProviderResponseError ? (error.oauthError ?? 'bad_response') : 'unavailable';
      const { failures, nextRefreshAt } = afterTransientFailure(record, now);
      await deps.tokens.recordFailure({
        userId: record.userId,
        version: record.version,
        reason,
        now,
        failures,
        nextRefreshAt,
      });
      logger.warn('refresh failed; the grant is kept and retried later', { userId: record.userId, failures, error });
      if (failures === threshold) {
        await publish('token.refresh_failed', record, { reason, consecutiveFailures: failures });
      }
      if (error instanceof ProviderUnavailableError) throw error;
      throw new ProviderUnavailableError('the provider refused the refresh request; try again later', { cause: error });
    }
    const saved = await saveRotated(record, tokens, logger);
    const rotated = tokens.refreshToken !== undefined;
    logger.info('tokens refreshed', { userId: record.userId, rotated });
    if (record.consecutiveFailures >= threshold) await publish('token.recovered', saved);
    return toAccessToken(saved);
  };

  const obtain = async (
    userId: string,
    options: ObtainOptions,
  ): Promise<{ token: AccessToken; refreshed: boolean }> => {
    const logger = deps.logger.child({ userId });
    const owner = `${ownerPrefix}:${randomUUID()}`;
    const margin = options.marginSeconds ?? DEFAULT_MARGIN_SECONDS;
    const deadline = nowMs() + maxWaitMs;
    let firstVersion: number | undefined;
    for (let attempt = 0; ; attempt++) {
      // The scheduled refresher found the user in the due index: it goes straight to the lease,
      // which returns the item too, and saves a strongly consistent read per user.
      if (attempt > 0 || options.dueBy === undefined) {
        const record = await deps.tokens.get(userId);
        if (!record) throw new UnknownUserError(userId);
        if (record.status === 'reauth_required') throw new ReauthRequiredError(userId, record.statusReason);
        firstVersion ??= record.version;
        if (isSatisfied(record, firstVersion, options) && isFresh(record, seconds(), margin)) {
          return { token: toAccessToken(record), refreshed: false };
        }
      }

      let held: TokenRecord;
      try {
        held = await deps.tokens.acquireLease(userId, owner, nowMs(), leaseMs);
        firstVersion ??= held.version;
      } catch (error) {
        if (!(error instanceof ConcurrentUpdateError)) throw error;
        if (nowMs() >= deadline) throw new RefreshInProgressError(userId);
        // Someone else is refreshing: wait a little (with jitter) and read what they wrote.
        await sleep(Math.min(100 * 2 ** Math.min(attempt, 3), 800) * (0.5 + Math.random()));
        continue;
      }

      let written = false;
      try {
        if (held.status === 'reauth_required') throw new ReauthRequiredError(userId, held.statusReason);
        if (isSatisfied(held, firstVersion, options) && isFresh(held, seconds(), margin)) {
          return { token: toAccessToken(held), refreshed: false };
        }
        written = true; // every outcome of refreshHeld writes the item and drops the lease with it
        return { token: await refreshHeld(held, logger), refreshed: true };
      } catch (error) {
        if (error instanceof ConcurrentUpdateError) {
          // A login replaced the tokens while we refreshed: theirs are newer, read them.
          written = false;
          continue;
        }
        throw error;
      } finally {
        if (!written) await deps.tokens.releaseLease(userId, owner);
      }
    }
  };

  return {
    getAccessToken: async (userId, options = {}) => (await obtain(userId, options)).token,
    refreshIfDue: async (userId, options) => ((await obtain(userId, options)).refreshed ? 'refreshed' : 'fresh'),
  };
}
