/**
 * Disconnecting a user: revoke the grant at the provider first, then delete the stored tokens. The
 * other order would leave, after a failed revocation, a grant that is live at the provider with no
 * refresh token left anywhere to revoke it with. The refresh lease is held from the read to the
 * delete, so no refresh can rotate the refresh token between reading it and revoking it.
 * @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1
 */
import { randomUUID } from 'node:crypto';
import {
  BrokerError,
  ConcurrentUpdateError,
  ProviderUnavailableError,
  RefreshInProgressError,
  UnknownUserError,
} from '../core/errors';
import { DEFAULT_REFRESH_TIMEOUT_MS, MAX_LEASE_WAIT_MS, refreshLeaseMs } from '../core/budget';
import type { Logger } from '../adapters/logger';
import type { ProviderClient } from '../adapters/provider';
import type { TokenStore } from '../adapters/token-store';

/**
 * How a disconnect ended (the tokens are deleted in every case):
 * - `revoked`: the provider revoked the grant;
 * - `not-revocable`: this process cannot revoke (no revocation endpoint is configured, and Kroger
 *   documents none; or no client secret, as in the deployed CLI): the grant stays live at the
 *   provider until it expires or the person removes the app's access there;
 * - `forced`: deleted without trying to revoke, as asked: the grant stays live at the provider.
 */
export type DisconnectOutcome = 'revoked' | 'not-revocable' | 'forced';

/** What a disconnect needs. */
export interface DisconnectDeps {
  readonly tokens: Pick<TokenStore, 'get' | 'delete' | 'acquireLease' | 'releaseLease'>;
  /**
   * The provider client to revoke with, or undefined when this process cannot revoke. Called only
   * when a revocation may be attempted (`force` needs no provider settings).
   */
  readonly revoker: () => Pick<ProviderClient, 'revoke'> | undefined;
  readonly logger: Logger;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Revokes the user's grant, then deletes their tokens; with `force`, deletes without revoking.
 * @throws {UnknownUserError} no tokens stored for the user
 * @throws {ProviderUnavailableError} the revocation failed: the tokens are kept, nothing changed
 * @throws {RefreshInProgressError} a refresh held the user's lease for too long: nothing changed
 * @throws {ConfigError} the provider settings are missing (and `force` was not given)
 */
export async function disconnectUser(
  userId: string,
  deps: DisconnectDeps,
  options: { force?: boolean } = {},
): Promise<DisconnectOutcome> {
  const logger = deps.logger.child({ userId });
  // Built first: missing provider settings fail here, before anything is touched.
  const client = options.force ? undefined : deps.revoker();
  if (!client) {
    // Nothing to revoke: the refresh token is not decrypted (no field key needed).
    const removed = await deps.tokens.delete(userId, { withRefreshToken: false });
    if (!removed) throw new UnknownUserError(userId);
    logger.warn('tokens deleted without revoking the grant; it is still live at the provider');
    return options.force ? 'forced' : 'not-revocable';
  }
  const owner = `disconnect:${randomUUID()}`;
  const deadline = Date.now() + MAX_LEASE_WAIT_MS;
  for (;;) {
    try {
      // acquireLease throws UnknownUserError for a user with no tokens.
      await deps.tokens.acquireLease(userId, owner, Date.now(), refreshLeaseMs(DEFAULT_REFRESH_TIMEOUT_MS));
      break;
    } catch (error) {
      if (!(error instanceof ConcurrentUpdateError)) throw error;
      if (Date.now() >= deadline) throw new RefreshInProgressError(userId);
      await sleep(250);
    }
  }
  // Disconnected by someone else meanwhile: nothing left to revoke or delete.
  const record = await deps.tokens.get(userId);
  if (!record) throw new UnknownUserError(userId);
  let revoked: boolean;
  try {
    revoked = await client.revoke(record.refreshToken);
  } catch (error) {
    await deps.tokens.releaseLease(userId, owner);
    logger.warn('revocation failed; the tokens are kept', { error });
    const why = error instanceof BrokerError ? error.message : 'an unexpected error';
    throw new ProviderUnavailableError(
      `revoking the grant at the provider failed (${why}): the tokens are kept; try again later, ` +
        'or use --force to delete them without revoking (the grant then stays live at the provider)',
      { cause: error },
    );
  }
  await deps.tokens.delete(userId, { withRefreshToken: false });
  logger.info('user disconnected', { revoked });
  return revoked ? 'revoked' : 'not-revocable';
}
