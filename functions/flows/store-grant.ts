/**
 * Storing a grant under a user, the one way both paths to a stored grant do it: the callback of a
 * public sign-in (under the Kroger profile id) and the completion of a connect link (under the
 * app's user id). Same rules either way: a new version, `active`, the previous grant replaced, the
 * refresher's schedule, and a `token.connected` (or `token.recovered`) event.
 */
import { KeyUnavailableError, StoreUnavailableError } from '../core/errors';
import type { RefreshPolicy, TokenSet } from '../core/tokens';
import { scheduleAfterTokens } from '../core/tokens';
import type { EventPublisher } from '../adapters/events';
import type { Logger } from '../adapters/logger';
import type { BoundBy, SaveLoginOutcome, TokenStore } from '../adapters/token-store';

/** What storing a grant needs. */
export interface StoreGrantDeps {
  readonly tokens: TokenStore;
  readonly events: EventPublisher;
  readonly logger: Logger;
  /** Where the new grant goes in the refresher's schedule. @default `eager` */
  readonly policy?: RefreshPolicy;
}

/**
 * Stores `tokens` under `userId`. A `public` store never replaces a link-bound user and then
 * answers `link-bound` having written nothing; a `connect` store always writes (the app's own user).
 * The event is published after the write; a lost event never undoes a stored grant.
 */
export async function storeGrant(
  deps: StoreGrantDeps,
  input: {
    userId: string;
    profileId: string;
    tokens: TokenSet & { refreshToken: string };
    now: number;
    boundBy: BoundBy;
  },
): Promise<SaveLoginOutcome> {
  const { userId, profileId, tokens, now, boundBy } = input;
  const saved = await deps.tokens.saveLogin({
    userId,
    profileId,
    tokens,
    now,
    schedule: scheduleAfterTokens(userId, tokens, now, deps.policy),
    boundBy,
  });
  if (saved.outcome === 'link-bound') {
    deps.logger.warn('public sign-in not stored: the user id is bound through a connect link', { userId });
    return saved;
  }
  deps.logger.info('user connected', {
    userId,
    connectLink: boundBy === 'connect',
    previousStatus: saved.previousStatus,
  });
  const type = saved.previousStatus === 'reauth_required' ? 'token.recovered' : 'token.connected';
  try {
    await deps.events.publish(type, { userId, profileId, at: new Date(now * 1000).toISOString() });
  } catch (error) {
    // The tokens are stored; a lost notification must not turn a successful login into an error.
    deps.logger.error('could not publish event', { event: type, error });
  }
  return saved;
}

/**
 * Whether a failed write of a grant provably stored nothing: the field key could not seal it, or
 * DynamoDB refused the write outright (throttled on its only attempt). After a timeout or a lost
 * connection the write may have landed, and undoing anything (revoking the grant, reopening a
 * connection) could break one that is stored.
 */
export function storedNothing(error: unknown): boolean {
  return error instanceof KeyUnavailableError || (error instanceof StoreUnavailableError && !error.outcomeUnknown);
}
