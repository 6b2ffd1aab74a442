/**
 * Completing a connection: the app's backend presents a connect code for its own signed-in user,
 * and only then is the grant stored, under that user. The pending connection is closed by one
 * conditional write whatever the outcome, so a code completes once; a code presented for another
 * app user than the link's is cancelled on the spot, and that user gets nothing. Every refusal
 * writes no tokens.
 *
 * Runs in the broker's complete function (the app invokes it; it answers ids, never a token), and in
 * process for local runs and the CLI.
 */
import { ArgumentError, BrokerError, ConnectionRefusedError, retryAdviceOf } from '../core/errors';
import {
  type CompleteFunctionResult,
  type CompleteRequest,
  type Connection,
  hashConnectCode,
  parseAppUserId,
  parseCompleteRequest,
  parseConnectCode,
} from '../core/connect';
import type { EventPublisher } from '../adapters/events';
import type { Logger } from '../adapters/logger';
import type { SessionStore } from '../adapters/session-store';
import type { TokenStore } from '../adapters/token-store';
import type { RefreshPolicy } from '../core/tokens';
import { storedNothing, storeGrant } from './store-grant';

/** What completing a connection needs. */
export interface CompleteDeps {
  readonly sessions: SessionStore;
  readonly tokens: TokenStore;
  readonly events: EventPublisher;
  readonly logger: Logger;
  /** Where the new grant goes in the refresher's schedule. @default `eager` */
  readonly policy?: RefreshPolicy;
  /** Epoch seconds; injectable for tests. */
  readonly now?: () => number;
  /**
   * Makes sure the field key that seals the grant can be used before the pending connection is
   * closed: when KMS is down, the app hears "try again" and the same code still completes later.
   * @default nothing to check
   */
  readonly ready?: () => Promise<void>;
}

/**
 * Completes the pending connection of `request.connectCode` for `request.appUserId`: stores its
 * grant under that user (version, `active`, the previous grant replaced, `token.connected` or
 * `token.recovered`) and marks it bound through a connect link.
 * @throws {ArgumentError} a malformed or oversized code, or a bad app user id (nothing was looked up)
 * @throws {ConnectionRefusedError} the code is unknown, used, expired, cancelled, or belongs to
 * another app user (which cancels it); nothing was stored
 */
export async function completeConnection(deps: CompleteDeps, request: CompleteRequest): Promise<Connection> {
  const connectCode = parseConnectCode(request.connectCode);
  const appUserId = parseAppUserId(request.appUserId);
  const now = deps.now?.() ?? Math.floor(Date.now() / 1000);
  await deps.ready?.();
  const closed = await deps.sessions.consumePending(hashConnectCode(connectCode), appUserId, now);
  if (closed.outcome !== 'consumed') {
    if (closed.outcome === 'foreign') {
      // The forwarded-link attack, or a mix-up: worth an operator's attention either way.
      deps.logger.warn('connect code presented for another app user: cancelled', {
        presentedFor: appUserId,
        linkAppUserId: closed.linkAppUserId,
      });
    } else {
      deps.logger.info('connect code refused', { reason: closed.outcome, presentedFor: appUserId });
    }
    throw new ConnectionRefusedError(closed.outcome);
  }
  const { profileId, tokens } = closed.pending;
  try {
    await storeGrant(deps, { userId: appUserId, profileId, tokens, now, boundBy: 'connect' });
  } catch (error) {
    // Provably nothing stored (DynamoDB refused the write outright, or the key could not seal it):
    // reopen the connection, so the app's retry of the same code completes it.
    if (storedNothing(error)) await deps.sessions.reopenPending(closed.pending, appUserId, now);
    throw error;
  }
  return { userId: appUserId, profileId };
}

/**
 * The complete function's handler: `{connectCode, appUserId}` in, `{ok: true, userId, profileId}`
 * or `{ok: false, code, message}` out. Never throws (a thrown error would reach the app as a bare
 * `FunctionError`), and never answers a token.
 */
export async function handleCompleteRequest(event: unknown, deps: CompleteDeps): Promise<CompleteFunctionResult> {
  try {
    const connection = await completeConnection(deps, parseCompleteRequest(event));
    return { ok: true, ...connection };
  } catch (error) {
    if (error instanceof ArgumentError) return { ok: false, code: 'BAD_REQUEST', message: error.message };
    if (error instanceof BrokerError) {
      if (error.retryable) deps.logger.warn('completing a connection failed; the app may try again', { error });
      return { ok: false, code: error.code, message: error.message, ...retryAdviceOf(error) };
    }
    deps.logger.error('completing a connection failed unexpectedly', { error });
    return { ok: false, code: 'INTERNAL', message: 'completing the connection failed unexpectedly' };
  }
}
