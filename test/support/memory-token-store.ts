/**
 * An in-memory {@link TokenStore} for fast flow tests (and mutation testing): the same conditions as
 * the DynamoDB store (version, lease owner and expiry, status), the same sparse due index, the same
 * named errors. test/integration/token-store-contract.test.ts runs one set of cases against both, so
 * this fake cannot drift from the real store unnoticed.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { ConcurrentUpdateError, UnknownUserError } from '../../functions/core/errors';
import {
  nextRefreshAt,
  refreshShard,
  retryDelaySeconds,
  type TokenRecord,
  type TokenSet,
  type TokenStatus,
} from '../../functions/core/tokens';
import {
  REAUTH_RETENTION_SECONDS,
  type ReaderRecord,
  type TokenStore,
  type TokenSummary,
} from '../../functions/adapters/token-store';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** An item as the table holds it: the record plus the index key and the TTL attribute. */
export type MemoryItem = Mutable<TokenRecord> & { refreshShard?: number; ttl?: number };

/** A user as a login stores them, for seeding; every field can be overridden. */
export function activeRecord(userId: string, overrides: Partial<MemoryItem> = {}): MemoryItem {
  const issuedAt = overrides.tokensIssuedAt ?? 1_000_000;
  const expiresAt = overrides.expiresAt ?? issuedAt + 1800;
  return {
    userId,
    profileId: userId,
    accessToken: `${userId}-access-1`,
    refreshToken: `${userId}-refresh-1`,
    tokenType: 'bearer',
    scope: 'product.compact profile.compact',
    expiresAt,
    version: 1,
    status: 'active',
    consecutiveFailures: 0,
    tokensIssuedAt: issuedAt,
    createdAt: issuedAt,
    updatedAt: issuedAt,
    refreshShard: refreshShard(userId),
    nextRefreshAt: nextRefreshAt({ expiresAt, tokensIssuedAt: issuedAt }),
    ...overrides,
  };
}

function record(item: MemoryItem): TokenRecord {
  const { refreshShard: _shard, ttl: _ttl, ...rest } = item;
  return { ...rest };
}

export class MemoryTokenStore implements TokenStore {
  readonly items = new Map<string, MemoryItem>();
  /** Every call, as `method:key` (the user id, or the shard for `queryDue`), in order. */
  readonly calls: string[] = [];
  readonly consumed = { readUnits: 0 };

  /** Puts items as they are, like a direct table write. */
  seed(...items: MemoryItem[]): this {
    for (const item of items) this.items.set(item.userId, { ...item });
    return this;
  }

  /** The stored item with its index key and TTL (undefined attributes are absent). */
  raw(userId: string): MemoryItem | undefined {
    const item = this.items.get(userId);
    return item && { ...item };
  }

  private existing(userId: string): MemoryItem {
    const item = this.items.get(userId);
    if (!item) throw new ConcurrentUpdateError(`the tokens of user "${userId}" changed during the refresh`);
    return item;
  }

  async get(userId: string): Promise<TokenRecord | undefined> {
    this.calls.push(`get:${userId}`);
    this.consumed.readUnits += 1;
    const item = this.items.get(userId);
    return item && record(item);
  }

  async getForReader(userId: string): Promise<ReaderRecord | undefined> {
    this.calls.push(`getForReader:${userId}`);
    const item = this.items.get(userId);
    if (!item) return undefined;
    const { accessToken, expiresAt, scope, tokenType, status, statusReason, version } = item;
    return { userId, accessToken, expiresAt, scope, tokenType, status, statusReason, version };
  }

  async saveLogin(input: {
    userId: string;
    profileId: string;
    tokens: TokenSet & { refreshToken: string };
    now: number;
  }): Promise<TokenStatus | undefined> {
    const { userId, profileId, tokens, now } = input;
    this.calls.push(`saveLogin:${userId}`);
    const old = this.items.get(userId);
    const item: MemoryItem = {
      userId,
      profileId,
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      tokenType: tokens.tokenType,
      scope: tokens.scope,
      expiresAt: tokens.expiresAt,
      status: 'active',
      statusAt: now,
      consecutiveFailures: 0,
      tokensIssuedAt: now,
      updatedAt: now,
      refreshShard: refreshShard(userId),
      nextRefreshAt: nextRefreshAt({ expiresAt: tokens.expiresAt, tokensIssuedAt: now }),
      version: (old?.version ?? 0) + 1,
      createdAt: old?.createdAt ?? now,
      // Kept from before, as an UpdateItem that does not name them keeps them.
      lastRefreshAt: old?.lastRefreshAt,
    };
    this.items.set(userId, item);
    return old?.status;
  }

  async acquireLease(userId: string, owner: string, nowMs: number, leaseMs: number): Promise<TokenRecord> {
    this.calls.push(`acquireLease:${userId}`);
    const item = this.items.get(userId);
    if (!item) throw new UnknownUserError(userId);
    if (item.leaseUntil !== undefined && !(item.leaseUntil < nowMs) && item.leaseOwner !== owner) {
      throw new ConcurrentUpdateError(`the refresh lease for user "${userId}" is held by another process`);
    }
    item.leaseOwner = owner;
    item.leaseUntil = nowMs + leaseMs;
    return record(item);
  }

  async releaseLease(userId: string, owner: string): Promise<void> {
    this.calls.push(`releaseLease:${userId}`);
    const item = this.items.get(userId);
    if (item && item.leaseOwner === owner) {
      delete item.leaseOwner;
      delete item.leaseUntil;
    }
  }

  async saveRefresh(userId: string, version: number, tokens: TokenSet, now: number): Promise<TokenRecord> {
    this.calls.push(`saveRefresh:${userId}`);
    const item = this.existing(userId);
    if (item.version !== version || item.status !== 'active') {
      throw new ConcurrentUpdateError(`the tokens of user "${userId}" changed during the refresh`);
    }
    Object.assign(item, {
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken ?? item.refreshToken,
      tokenType: tokens.tokenType,
      scope: tokens.scope,
      expiresAt: tokens.expiresAt,
      version: version + 1,
      consecutiveFailures: 0,
      lastRefreshAt: now,
      tokensIssuedAt: now,
      updatedAt: now,
      nextRefreshAt: nextRefreshAt({ expiresAt: tokens.expiresAt, tokensIssuedAt: now }),
    });
    delete item.leaseOwner;
    delete item.leaseUntil;
    delete item.lastRefreshError;
    return record(item);
  }

  async recordFailure(previous: TokenRecord, reason: string, now: number): Promise<number> {
    this.calls.push(`recordFailure:${previous.userId}`);
    const item = this.existing(previous.userId);
    if (item.version !== previous.version || item.status !== 'active') {
      throw new ConcurrentUpdateError(`the tokens of user "${previous.userId}" changed during the refresh`);
    }
    const failures = previous.consecutiveFailures + 1;
    Object.assign(item, {
      consecutiveFailures: failures,
      lastRefreshAt: now,
      lastRefreshError: reason,
      updatedAt: now,
      nextRefreshAt: nextRefreshAt({ ...previous, retryAt: now + retryDelaySeconds(failures) }),
    });
    delete item.leaseOwner;
    delete item.leaseUntil;
    return failures;
  }

  async markReauthRequired(userId: string, version: number, reason: string, now: number): Promise<void> {
    this.calls.push(`markReauthRequired:${userId}`);
    const item = this.existing(userId);
    if (item.version !== version) {
      throw new ConcurrentUpdateError(`the tokens of user "${userId}" changed during the refresh`);
    }
    Object.assign(item, {
      status: 'reauth_required',
      statusReason: reason,
      statusAt: now,
      lastRefreshAt: now,
      lastRefreshError: reason,
      updatedAt: now,
      version: version + 1,
      ttl: now + REAUTH_RETENTION_SECONDS,
    });
    for (const key of ['leaseOwner', 'leaseUntil', 'refreshShard', 'nextRefreshAt'] as const) delete item[key];
  }

  async delete(userId: string): Promise<TokenRecord | undefined> {
    this.calls.push(`delete:${userId}`);
    const item = this.items.get(userId);
    this.items.delete(userId);
    return item && record(item);
  }

  async *list(): AsyncIterable<TokenSummary> {
    this.calls.push('list:*');
    for (const item of this.items.values()) {
      yield {
        userId: item.userId,
        profileId: item.profileId || undefined,
        status: item.status,
        expiresAt: item.expiresAt,
        scope: item.scope || undefined,
        statusReason: item.statusReason,
        consecutiveFailures: item.consecutiveFailures,
      };
    }
  }

  /**
   * Like a query of the sparse index: only items with both index attributes, in `nextRefreshAt`
   * order, paged by `limit` with a start key after which the next page begins (DynamoDB returns a
   * key whenever it stopped at the limit, even if nothing follows).
   */
  async queryDue(
    shard: number,
    before: number,
    options: { limit?: number; startKey?: Record<string, AttributeValue> } = {},
  ): Promise<{ userIds: string[]; nextKey?: Record<string, AttributeValue>; readUnits: number }> {
    this.calls.push(`queryDue:${shard}`);
    this.consumed.readUnits += 0.5;
    const after = options.startKey && {
      at: Number(options.startKey.nextRefreshAt?.N),
      userId: options.startKey.userId?.S ?? '',
    };
    const matching = [...this.items.values()]
      .filter((i) => i.refreshShard === shard && i.nextRefreshAt !== undefined && i.nextRefreshAt <= before)
      .sort((a, b) => a.nextRefreshAt! - b.nextRefreshAt! || a.userId.localeCompare(b.userId))
      .filter(
        (i) => !after || i.nextRefreshAt! > after.at || (i.nextRefreshAt === after.at && i.userId > after.userId),
      );
    const page = options.limit === undefined ? matching : matching.slice(0, options.limit);
    const last = page[page.length - 1];
    const stopped = options.limit !== undefined && page.length === options.limit;
    return {
      userIds: page.map((i) => i.userId),
      nextKey: stopped
        ? {
            userId: { S: last.userId },
            refreshShard: { N: String(shard) },
            nextRefreshAt: { N: String(last.nextRefreshAt) },
          }
        : undefined,
      readUnits: 0.5,
    };
  }
}
