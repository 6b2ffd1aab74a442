/**
 * Valid access tokens on demand: read the stored token, and when it is too close to expiry refresh
 * it, single-flight across processes. The refresh lease in DynamoDB makes one process the refresher;
 * the others wait and re-read what it wrote. The rotated refresh token is stored with the new access
 * token in one write conditional on `version` (an older pair never overwrites a newer one) and on the
 * lease owner (a holder whose lease was taken over cannot overwrite what the new holder stored); the
 * lease outlasts the holder's whole budget (`core/budget.ts`).
 *
 * What a refusal does (see `core/refusals.ts` for how an answer is classified):
 * - a confirmed refusal of the grant marks the user `reauth_required` at once; an unexplained one (a
 *   bare 400) is confirmed by the next attempt: two refusals in a row, the same refresh token;
 * - unless more than the mass-refusal threshold of one shape came in the window: then the grant is
 *   kept (a transient failure), a metric is published and an operator alarmed;
 * - a refusal of the client credentials keeps every grant untouched, publishes a metric and tells
 *   the reader the operator must act.
 *
 * Readers cannot spend the provider's limits: a forced refresh is honoured at most once per user per
 * interval, the margin is capped at half the token's lifetime, and a token written after a read began
 * satisfies that read whatever its lifetime.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-6
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2 (refresh token rotation)
 */
import { randomUUID } from 'node:crypto';
import {
  BrokerError,
  ClientCredentialsRejectedError,
  ConcurrentUpdateError,
  ConfigError,
  DependencyUnavailableError,
  InvalidGrantError,
  LeaseLostError,
  ProviderResponseError,
  ProviderUnavailableError,
  ReauthRequiredError,
  RefreshInProgressError,
  StoreUnavailableError,
  UnknownUserError,
} from '../core/errors';
import {
  DEFAULT_REFRESH_TIMEOUT_MS,
  DYNAMODB_CALL_BUDGET_MS,
  LEASE_SAFETY_MS,
  MAX_LEASE_WAIT_MS,
  refreshLeaseMs,
  retryPauseMs,
  SAVE_ATTEMPTS,
  SAVE_BACKOFF_MS,
} from '../core/budget';
import {
  capMarginSeconds,
  DEFAULT_FORCE_REFRESH_MIN_INTERVAL_SECONDS,
  mayForceRefresh,
} from '../core/refresh-protocol';
import { isMassRefusal } from '../core/refusals';
import { type FaultMetricName, METRICS_DIMENSION, METRICS_NAMESPACE, REFRESH_LIMIT_SETTINGS } from '../core/schema';
import {
  type AccessToken,
  afterTransientFailure,
  DEFAULT_MARGIN_SECONDS,
  type GetTokenOptions,
  isFresh,
  reauthDeleteAfter,
  type RefreshPolicy,
  scheduleAfterTokens,
  type TokenRecord,
  type TokenSet,
} from '../core/tokens';
import type { EventPublisher } from '../adapters/events';
import type { Logger } from '../adapters/logger';
import type { ProviderClient } from '../adapters/provider';
import type { RefusalCounter } from '../adapters/refusal-counter';
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
type ObtainOptions = GetTokenOptions & { readonly dueBy?: number; readonly leaseFirst?: boolean };

/** What the refresher needs. */
export interface RefreshDeps {
  readonly tokens: TokenStore;
  readonly client: Pick<ProviderClient, 'refresh'>;
  readonly events: EventPublisher;
  readonly logger: Logger;
  /**
   * Counts dead-grant verdicts across processes for the mass-refusal guard.
   * @default - no guard: every dead grant is marked
   */
  readonly refusals?: RefusalCounter;
  /** Epoch milliseconds; injectable for tests. */
  readonly nowMs?: () => number;
  /**
   * Prefix of this process's lease owner ids. Every refresh attempt owns its lease under its own id
   * (prefix + a fresh UUID): two calls in one process must exclude each other as two processes do.
   * @default a random UUID
   */
  readonly owner?: string;
  /**
   * The provider client's refresh timeout (`REFRESH_TIMEOUT_MS`), from which the lease is sized.
   * @default 15 s
   */
  readonly refreshTimeoutMs?: number;
  /**
   * How long a lease lasts. Must outlast the holder's whole budget: a lease that expired mid-call
   * would let a second process present the same single-use refresh token.
   * @default - `refreshLeaseMs(refreshTimeoutMs)`, about 50 s; a shorter one is refused
   */
  readonly leaseMs?: number;
  /** How long a reader waits for another process's refresh before giving up. @default 12 s */
  readonly maxWaitMs?: number;
  /** Consecutive transient failures after which `token.refresh_failed` is published. @default 3 */
  readonly failureEventThreshold?: number;
  /** A forced refresh is honoured at most once per user per this many seconds. @default 60 */
  readonly forceRefreshMinIntervalSeconds?: number;
  /**
   * The mass-refusal guard: at most `threshold` users marked `reauth_required` per `windowSeconds`
   * and refusal shape; 0 turns it off.
   * @default 20 per 600 s
   */
  readonly massRefusal?: { readonly threshold: number; readonly windowSeconds: number };
  /**
   * Where a refreshed user goes in the scheduled refresher's index, and what the sweep refreshes:
   * under `on-read`, only users due by their schedule (the keep-alive), never merely expired ones.
   * @default `eager`
   */
  readonly policy?: RefreshPolicy;
}

/** Reads and refreshes tokens; see {@link createTokenRefresher}. */
export interface TokenRefresher {
  /**
   * Returns an access token valid for at least the margin, refreshing first when needed.
   * @throws {UnknownUserError} no tokens for this user
   * @throws {ReauthRequiredError} the grant is gone; the user must sign in again
   * @throws {ProviderUnavailableError} the provider failed transiently; the grant is kept, try again
   * @throws {ClientCredentialsRejectedError} the provider refused the broker's client credentials:
   * the operator must fix them; the user need not sign in again
   * @throws {RefreshInProgressError} another process is refreshing and did not finish in time
   */
  getAccessToken(userId: string, options?: GetTokenOptions): Promise<AccessToken>;
  /**
   * The scheduled sweep's call for a user it found in the due index: refreshes when the token expires
   * within the margin or the user is due by `dueBy`, and says whether this call refreshed the token
   * (`refreshed`) or found it already fresh (`fresh`): the sweep's counts.
   */
  refreshIfDue(userId: string, options: DueRefreshOptions): Promise<'refreshed' | 'fresh'>;
  /**
   * The refresh function's call: a reader has just read the item and found the token too close to
   * expiry, so this goes straight to the lease, whose update returns the item, instead of reading
   * it again first (one strongly consistent read less per refresh). A forced refresh reads first:
   * it is honoured at most once per interval, and a read decides that without taking the lease.
   * Same answers and errors as {@link getAccessToken}.
   */
  refreshForReader(userId: string, options?: GetTokenOptions): Promise<AccessToken>;
}

/**
 * Prefix of `lastRefreshError` after a refusal that did not say why: the next refusal in a row of
 * the same refresh token confirms it.
 */
export const UNCONFIRMED_REFUSAL = 'refused_unconfirmed';

/** Prefix of `lastRefreshError` when the mass-refusal guard kept a refused grant. */
export const HELD_REFUSAL = 'refusal_held';

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

/** The reason recorded for a transient failure (`lastRefreshError`): a code, never a message. */
function transientReason(error: unknown): string {
  if (error instanceof ProviderUnavailableError) return 'unavailable';
  if (error instanceof ProviderResponseError) return error.oauthError ?? 'bad_response';
  if (error instanceof BrokerError) return error.code.toLowerCase();
  return 'unexpected';
}

/**
 * One CloudWatch Embedded Metric Format line with one count, in the namespace and dimension of the
 * refresher's metrics (the logger's `function` field): what the fault alarms watch.
 */
function publishFaultMetric(logger: Logger, name: FaultMetricName, message: string, fields: object, nowMs: number) {
  logger.metrics(message, {
    ...fields,
    [name]: 1,
    _aws: {
      Timestamp: nowMs,
      CloudWatchMetrics: [
        { Namespace: METRICS_NAMESPACE, Dimensions: [[METRICS_DIMENSION]], Metrics: [{ Name: name, Unit: 'Count' }] },
      ],
    },
  });
}

/** Whether a held lease was dropped by a write of the refresh's outcome. */
interface HeldLease {
  dropped: boolean;
}

/** Creates the refresher. */
export function createTokenRefresher(deps: RefreshDeps): TokenRefresher {
  const nowMs = deps.nowMs ?? Date.now;
  const ownerPrefix = deps.owner ?? randomUUID();
  const minLeaseMs = refreshLeaseMs(deps.refreshTimeoutMs ?? DEFAULT_REFRESH_TIMEOUT_MS);
  const leaseMs = deps.leaseMs ?? minLeaseMs;
  if (leaseMs < minLeaseMs) {
    throw new ConfigError(
      `the refresh lease (${leaseMs} ms) must outlast one refresh's whole budget (${minLeaseMs} ms), ` +
        'or two processes can present the same single-use refresh token',
    );
  }
  const maxWaitMs = deps.maxWaitMs ?? MAX_LEASE_WAIT_MS;
  const maxSaveAttempts = Math.ceil(leaseMs / SAVE_BACKOFF_MS);
  const threshold = deps.failureEventThreshold ?? 3;
  const forceInterval = deps.forceRefreshMinIntervalSeconds ?? DEFAULT_FORCE_REFRESH_MIN_INTERVAL_SECONDS;
  const massRefusal = deps.massRefusal ?? {
    threshold: REFRESH_LIMIT_SETTINGS.MASS_REFUSAL_THRESHOLD.default,
    windowSeconds: REFRESH_LIMIT_SETTINGS.MASS_REFUSAL_WINDOW_SECONDS.default,
  };
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
   * the only one left: a failed write (a throttled or unavailable DynamoDB, beyond the SDK's own
   * retries) is tried again, for as long as the lease leaves room for one more whole call
   * (`heldUntilMs`, never fewer than {@link SAVE_ATTEMPTS} tries), before the grant is given up for
   * lost. A lost lease is not retried: the new holder's outcome is what counts now. A write that
   * timed out may have landed: the next try is then refused by its condition, and the caller reads
   * what landed. `rotated` says whether the provider issued a new refresh token (`tokens` always
   * carries one: the stored one when it did not), for the log of a lost write.
   */
  const saveRotated = async (
    record: TokenRecord,
    owner: string,
    tokens: TokenSet,
    rotated: boolean,
    heldUntilMs: number,
    logger: Logger,
  ): Promise<TokenRecord> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const now = seconds();
        return await deps.tokens.saveRefresh({
          userId: record.userId,
          owner,
          version: record.version,
          tokens,
          now,
          nextRefreshAt: scheduleAfterTokens(record.userId, tokens, now, deps.policy).nextRefreshAt,
        });
      } catch (error) {
        const raced = error instanceof ConcurrentUpdateError;
        const backoff = SAVE_BACKOFF_MS * Math.min(attempt, 4);
        // Past the reserved tries, only a dependency that may recover is worth the rest of the lease
        // (and never more tries than the lease has back-off slots, whatever the clock says).
        const mayRecover = error instanceof DependencyUnavailableError && error.retryable;
        // Every try must end before the lease does: a try that could outlast it would let another
        // process present the refresh token the provider has already rotated away.
        const roomLeft = attempt < maxSaveAttempts && nowMs() + backoff + DYNAMODB_CALL_BUDGET_MS <= heldUntilMs;
        if (raced || !roomLeft || (attempt >= SAVE_ATTEMPTS && !mayRecover)) {
          // A login in between replaced the tokens: theirs are newer, and ours are not needed.
          const why = error instanceof LeaseLostError ? 'lease_lost' : raced ? 'item_changed' : 'write_failed';
          logger[why === 'item_changed' ? 'warn' : 'error'](
            'refreshed tokens could not be stored; the user may have to sign in again',
            { errorCode: 'ROTATED_TOKEN_NOT_SAVED', why, rotated, attempts: attempt, error },
          );
          throw error;
        }
        logger.warn('refreshed tokens not stored yet; trying again while the lease holds', {
          errorCode: 'ROTATED_TOKEN_SAVE_RETRY',
          attempt,
          error,
        });
        await sleep(backoff);
      }
    }
  };

  /**
   * Drops the lease, best effort: when DynamoDB cannot take even that, the lease runs out by itself
   * (readers then wait for it, and hear `REFRESH_IN_PROGRESS`), and the error that ended the refresh
   * is what the caller hears, not this one.
   */
  const releaseQuietly = async (userId: string, owner: string, logger: Logger): Promise<void> => {
    try {
      await deps.tokens.releaseLease(userId, owner);
    } catch (error) {
      logger.warn('could not drop the refresh lease; it runs out by itself', {
        errorCode: 'LEASE_NOT_RELEASED',
        error,
      });
    }
  };

  /**
   * Whether this dead-grant verdict is held back by the mass-refusal guard. When the count cannot be
   * taken, it is held: a grant is never given up on a guess.
   */
  const heldBack = async (error: InvalidGrantError, logger: Logger): Promise<boolean> => {
    if (!deps.refusals || massRefusal.threshold <= 0) return false;
    try {
      const counts = await deps.refusals.count(error.shape, nowMs(), massRefusal.windowSeconds);
      return isMassRefusal(counts, { nowSeconds: seconds(), ...massRefusal });
    } catch (countError) {
      logger.error('could not count the refusal; the grant is kept for now', { error: countError });
      return true;
    }
  };

  /** Records a transient failure (the grant kept, retried with back-off) and drops the lease. */
  const recordTransient = async (
    record: TokenRecord,
    owner: string,
    reason: string,
    lease: HeldLease,
    logger: Logger,
    error: unknown,
  ) => {
    const { failures, nextRefreshAt } = afterTransientFailure(record, seconds(), deps.policy);
    await deps.tokens.recordFailure({
      userId: record.userId,
      owner,
      version: record.version,
      reason,
      now: seconds(),
      failures,
      nextRefreshAt,
    });
    lease.dropped = true;
    logger.warn('refresh failed; the grant is kept and retried later', { failures, reason, error });
    if (failures === threshold) {
      await publish('token.refresh_failed', record, { reason, consecutiveFailures: failures });
    }
  };

  /** Decides what a failed provider call means for the user; always throws. */
  const onRefreshFailure = async (
    record: TokenRecord,
    owner: string,
    error: unknown,
    lease: HeldLease,
    logger: Logger,
  ): Promise<never> => {
    if (error instanceof ClientCredentialsRejectedError) {
      // Every user would be refused the same way, and none can fix it: nothing is recorded on the
      // item (no failure count, no re-auth), the operator is alerted, the reader told who must act.
      await releaseQuietly(record.userId, owner, logger);
      lease.dropped = true;
      logger.error("the provider refused the broker's client credentials; every grant is kept", {
        errorCode: error.code,
        error,
      });
      publishFaultMetric(
        logger,
        'clientRejected',
        'client credentials refused',
        { oauthError: error.oauthError },
        nowMs(),
      );
      throw error;
    }
    if (error instanceof InvalidGrantError) {
      const confirming = record.lastRefreshError?.startsWith(UNCONFIRMED_REFUSAL) === true;
      if (!error.confirmed && !confirming) {
        // Refused without a reason (a bare 400, an unknown shape): one more attempt with the same
        // refresh token decides. If the first refusal was real, presenting it again costs nothing
        // (the grant is dead); if it was a fault on the way, the grant is saved.
        await recordTransient(record, owner, `${UNCONFIRMED_REFUSAL}: ${error.reason}`, lease, logger, error);
        throw new ProviderUnavailableError(
          'the provider refused the refresh token without saying why; the next attempt decides whether the user must sign in again',
          { cause: error },
        );
      }
      if (await heldBack(error, logger)) {
        await recordTransient(record, owner, `${HELD_REFUSAL}: ${error.reason}`, lease, logger, error);
        logger.error('grant refused, but too many grants were refused the same way: the grant is kept', {
          errorCode: 'MASS_REFUSAL_HELD',
          shape: error.shape,
          reason: error.reason,
        });
        publishFaultMetric(logger, 'refusalsHeld', 'refusal held', { shape: error.shape }, nowMs());
        throw new ProviderUnavailableError(
          'the provider refused this grant, but so many grants were refused in a short time that the broker keeps it for now (an operator is alerted)',
          { cause: error },
        );
      }
      const now = seconds();
      await deps.tokens.markReauthRequired({
        userId: record.userId,
        owner,
        version: record.version,
        reason: error.reason,
        now,
        deleteAfter: reauthDeleteAfter(now),
      });
      lease.dropped = true;
      logger.warn('grant refused by the provider; user must sign in again', {
        reason: error.reason,
        confirmed: error.confirmed,
      });
      await publish('token.reauth_required', record, { reason: error.reason });
      throw new ReauthRequiredError(record.userId, error.reason);
    }
    if ((error as { outcomeUnknown?: unknown }).outcomeUnknown === true) {
      // The request was sent and no usable answer came: the provider may have rotated the refresh
      // token. The stored one is kept; if it was used up, the next attempt is refused and says so.
      logger.warn('refresh outcome unknown: the provider may have used the refresh token', {
        errorCode: 'REFRESH_OUTCOME_UNKNOWN',
        error,
      });
    }
    await recordTransient(record, owner, transientReason(error), lease, logger, error);
    if (error instanceof ProviderUnavailableError) throw error;
    if (error instanceof BrokerError) {
      throw new ProviderUnavailableError('the provider could not refresh the token; try again later', { cause: error });
    }
    throw error;
  };

  /**
   * Refreshes with the lease held; `record` is the item as read when the lease was taken, which was
   * at `leaseTakenMs`.
   */
  const refreshHeld = async (
    record: TokenRecord,
    owner: string,
    leaseTakenMs: number,
    lease: HeldLease,
    logger: Logger,
  ): Promise<AccessToken> => {
    let tokens: TokenSet;
    try {
      tokens = await deps.client.refresh({ refreshToken: record.refreshToken, scope: record.scope });
    } catch (error) {
      return onRefreshFailure(record, owner, error, lease, logger);
    }
    // A refresh token the provider did not rotate is written again (RFC 6749 section 6 keeps it): the
    // store then seals one that was still stored in plaintext from before field encryption.
    const rotated = tokens.refreshToken !== undefined;
    let saved: TokenRecord;
    try {
      saved = await saveRotated(
        record,
        owner,
        { ...tokens, refreshToken: tokens.refreshToken ?? record.refreshToken },
        rotated,
        // The last write must end before the lease does, with the safety margin to spare.
        leaseTakenMs + leaseMs - LEASE_SAFETY_MS,
        logger,
      );
    } catch (error) {
      // The last try may still land (a write abandoned at its limit can be applied late): dropping
      // the lease now could let that write be refused and another process present the rotated-away
      // token at once. The lease runs out by itself instead.
      if (rotated) lease.dropped = true;
      throw error;
    }
    lease.dropped = true;
    logger.info('tokens refreshed', { rotated });
    if (record.consecutiveFailures >= threshold) await publish('token.recovered', saved);
    return toAccessToken(saved);
  };

  const obtain = async (
    userId: string,
    options: ObtainOptions,
  ): Promise<{ token: AccessToken; refreshed: boolean }> => {
    const logger = deps.logger.child({ userId });
    const owner = `${ownerPrefix}:${randomUUID()}`;
    const requestedMargin = options.marginSeconds ?? DEFAULT_MARGIN_SECONDS;
    const deadline = nowMs() + maxWaitMs;
    let firstVersion: number | undefined;
    let forced: boolean | undefined;

    /** Whether a stored token answers this read. */
    const answers = (record: TokenRecord): boolean => {
      const now = seconds();
      firstVersion ??= record.version;
      if (forced === undefined) {
        forced = options.forceRefresh === true && mayForceRefresh(record.tokensIssuedAt, now, forceInterval);
        if (options.forceRefresh && !forced) {
          logger.info('forced refresh not honoured: the tokens are newer than the minimum interval', {
            issuedSecondsAgo: now - record.tokensIssuedAt,
            minIntervalSeconds: forceInterval,
          });
        }
      }
      // Written after this read began (by a login or another process's refresh): it answers the read
      // whatever its lifetime, so short-lived tokens never cost one refresh per reader.
      if (record.version > firstVersion) return record.expiresAt > now;
      if (forced) return false;
      if (options.dueBy !== undefined && record.nextRefreshAt !== undefined && record.nextRefreshAt <= options.dueBy) {
        return false;
      }
      // on-read: the sweep keeps grants alive; an expired token waits for a reader that needs it.
      if (options.dueBy !== undefined && deps.policy?.name === 'on-read') return true;
      return isFresh(record, now, capMarginSeconds(requestedMargin, record.expiresAt - record.tokensIssuedAt));
    };

    /**
     * Waits before the next try (with jitter), or gives up when the wait is over: with what stopped
     * this try when DynamoDB did (a typed, retryable error), else because another process still
     * holds the lease.
     */
    const waitOrGiveUp = async (attempt: number, cause: unknown): Promise<void> => {
      if (nowMs() >= deadline) {
        if (cause instanceof StoreUnavailableError) throw cause;
        throw new RefreshInProgressError(userId);
      }
      await sleep(retryPauseMs(attempt));
    };

    for (let attempt = 0; ; attempt++) {
      // The scheduled refresher found the user in the due index, or a reader found the token stale:
      // straight to the lease, which returns the item too, saving a strongly consistent read.
      if (attempt > 0 || (options.dueBy === undefined && !options.leaseFirst)) {
        let record: TokenRecord | undefined;
        try {
          record = await deps.tokens.get(userId);
        } catch (error) {
          // A throttled or unavailable read changes nothing: read again within the reader's wait.
          if (!(error instanceof StoreUnavailableError)) throw error;
          await waitOrGiveUp(attempt, error);
          continue;
        }
        if (!record) throw new UnknownUserError(userId);
        if (record.status === 'reauth_required') throw new ReauthRequiredError(userId, record.statusReason);
        if (answers(record)) return { token: toAccessToken(record), refreshed: false };
      }

      let held: TokenRecord;
      const leaseTakenMs = nowMs();
      try {
        if (attempt === 0 && options.leaseFirst) {
          // A reader found the token stale: the lease only while it still is, so a process that
          // comes after another's refresh gets the new token back from the same request.
          const lease = await deps.tokens.acquireLeaseIfStale(
            userId,
            owner,
            leaseTakenMs,
            leaseMs,
            seconds() + requestedMargin,
          );
          if (!lease.taken) {
            const found = lease.record;
            if (found.status === 'reauth_required') throw new ReauthRequiredError(userId, found.statusReason);
            if (answers(found)) return { token: toAccessToken(found), refreshed: false };
            continue;
          }
          held = lease.record;
        } else {
          held = await deps.tokens.acquireLease(userId, owner, leaseTakenMs, leaseMs);
        }
      } catch (error) {
        // Someone else is refreshing, or DynamoDB did not take the lease (throttled: nothing was
        // written; timed out: the lease may be this call's, under its owner id, and simply runs out):
        // wait a little and read what is there.
        if (!(error instanceof ConcurrentUpdateError) && !(error instanceof StoreUnavailableError)) throw error;
        await waitOrGiveUp(attempt, error);
        continue;
      }

      // Every outcome a refresh writes (new tokens, a failure, a dead grant) drops the lease with it;
      // when none could be written, or nothing was refreshed, the lease is dropped here.
      const lease: HeldLease = { dropped: false };
      try {
        if (held.status === 'reauth_required') throw new ReauthRequiredError(userId, held.statusReason);
        if (answers(held)) return { token: toAccessToken(held), refreshed: false };
        return { token: await refreshHeld(held, owner, leaseTakenMs, lease, logger), refreshed: true };
      } catch (error) {
        if (error instanceof ConcurrentUpdateError) {
          // A login replaced the tokens, or another process took the lease over: read what is there.
          lease.dropped = true;
          continue;
        }
        throw error;
      } finally {
        if (!lease.dropped) await releaseQuietly(userId, owner, logger);
      }
    }
  };

  return {
    getAccessToken: async (userId, options = {}) => (await obtain(userId, options)).token,
    refreshIfDue: async (userId, options) => ((await obtain(userId, options)).refreshed ? 'refreshed' : 'fresh'),
    refreshForReader: async (userId, options = {}) =>
      (await obtain(userId, { ...options, leaseFirst: options.forceRefresh !== true })).token,
  };
}
