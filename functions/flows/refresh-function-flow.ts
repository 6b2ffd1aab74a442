/**
 * The refresh function's flow: other services' readers invoke it (IAM-authorised) when a stored token
 * is too close to expiry. It refreshes single-flight and answers `{ok, expiresAt}` or
 * `{ok: false, code, message}`, never a token: the reader re-reads the table, so tokens travel only
 * where IAM lets them be read.
 */
import {
  ArgumentError,
  BrokerError,
  DependencyUnavailableError,
  ProviderUnavailableError,
  retryAdviceOf,
} from '../core/errors';
import { parseRefreshRequest, type RefreshFunctionResult } from '../core/refresh-protocol';
import type { Logger } from '../adapters/logger';
import type { TokenRefresher } from './single-flight-refresh';

/** What the refresh function needs. */
export interface RefreshFunctionDeps {
  readonly refresher: Pick<TokenRefresher, 'refreshForReader'>;
  readonly logger: Logger;
}

/** Handles one invocation; never throws (a thrown error would reach the reader as a bare `FunctionError`). */
export async function handleRefreshRequest(event: unknown, deps: RefreshFunctionDeps): Promise<RefreshFunctionResult> {
  let userId: string | undefined;
  try {
    const request = parseRefreshRequest(event);
    userId = request.userId;
    // The reader has just read the item: its refresh goes straight to the lease.
    const token = await deps.refresher.refreshForReader(request.userId, {
      forceRefresh: request.forceRefresh,
      marginSeconds: request.marginSeconds,
    });
    return { ok: true, expiresAt: token.expiresAt };
  } catch (error) {
    if (error instanceof ArgumentError) return { ok: false, code: 'BAD_REQUEST', message: error.message };
    if (error instanceof BrokerError) {
      // Whether to try again travels with the code, so a reader older than a code still knows.
      const retry = retryAdviceOf(error);
      // The refresher logs the provider's failures itself; an AWS dependency's are logged here, once.
      if (error instanceof DependencyUnavailableError && !(error instanceof ProviderUnavailableError)) {
        deps.logger.warn('refresh failed: a dependency is unavailable; the caller may try again', {
          userId,
          errorCode: error.code,
          dependency: error.dependency,
          error,
        });
      }
      return { ok: false, code: error.code, message: error.message, ...retry };
    }
    deps.logger.error('refresh failed unexpectedly', { userId, error });
    return { ok: false, code: 'INTERNAL', message: 'the refresh failed unexpectedly' };
  }
}
