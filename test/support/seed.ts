/** Tokens-table items as a login would store them, for seeding many users without logging each in. */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { nextRefreshAt, type RefreshPolicy, refreshShard } from '../../functions/core/tokens';

/**
 * One active user's item. `tokens` prefixes the (fake) token values: a refresh with them is refused
 * by the provider, so a test seeding them must not expect a successful refresh. `policy` places the
 * user in the refresher's index as that refresh policy would (`eager` by default).
 */
export function seededItem(
  userId: string,
  times: { issuedAt: number; expiresAt: number },
  tokens = 'not-used',
  policy?: RefreshPolicy,
): Record<string, AttributeValue> {
  return {
    userId: { S: userId },
    profileId: { S: userId },
    accessToken: { S: `${tokens}-access` },
    refreshToken: { S: `${tokens}-refresh` },
    tokenType: { S: 'bearer' },
    scope: { S: 'product.compact cart.basic:write profile.compact' },
    expiresAt: { N: String(times.expiresAt) },
    version: { N: '1' },
    status: { S: 'active' },
    consecutiveFailures: { N: '0' },
    tokensIssuedAt: { N: String(times.issuedAt) },
    createdAt: { N: String(times.issuedAt) },
    updatedAt: { N: String(times.issuedAt) },
    refreshShard: { N: String(refreshShard(userId)) },
    nextRefreshAt: {
      N: String(nextRefreshAt({ expiresAt: times.expiresAt, tokensIssuedAt: times.issuedAt }, policy)),
    },
  };
}
