/**
 * An in-memory {@link TokenStore} for fast flow tests (and mutation testing): the same conditions as
 * the DynamoDB store (version, lease owner and expiry, status, the public-login guard), the same
 * sparse due index, the same named errors. It stands in for the store above the field encoding:
 * refresh tokens are kept in plaintext, as `get` returns them. test/integration/token-store-contract.test.ts
 * runs one set of cases against both, so this fake cannot drift from the real store unnoticed.
 */
import { ConcurrentUpdateError, LeaseLostError, UnknownUserError } from '../../functions/core/errors';
import { REFRESH_SHARDS } from '../../functions/core/schema';
import { scheduleAfterTokens, type TokenRecord } from '../../functions/core/tokens';
import type {
  DuePage,
  ReaderRecord,
  SaveLoginOutcome,
  TokenStore,
  TokenSummary,
} from '../../functions/adapters/token-store';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** An item as the table holds it: the record plus the index key and the TTL attribute. */
export type MemoryItem = Mutable<TokenRecord> & { refreshShard?: number; ttl?: number };

/** A user as a public login stores them, for seeding; every field can be overridden. */
export function activeRecord(userId: string, overrides: Partial<MemoryItem> = {}): MemoryItem {
  const issuedAt = overrides.tokensIssuedAt ?? 1_000_000;
  const expiresAt = overrides.expiresAt ?? issuedAt + 1800;
  const schedule = scheduleAfterTokens(userId, { expiresAt }, issuedAt);
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
    refreshShard: schedule.shard,
    nextRefreshAt: schedule.nextRefreshAt,
    boundBy: 'public',
    ...overrides,
  };
}

function record(item: MemoryItem): TokenRecord {
  const { refreshShard: _shard, ttl: _ttl, ...rest } = item;
  return Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as unknown as TokenRecord;
}

/** A page position: opaque to callers, as the DynamoDB store's is. */
const encodeCursor = (key: { at: number; userId: string }) => Buffer.from(JSON.stringify(key)).toString('base64url');
const decodeCursor = (cursor: string) =>
  JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { at: number; userId: string };

export class MemoryTokenStore implements TokenStore {
  readonly items = new Map<string, MemoryItem>();
  /** Every call, as `method:key` (the user id, or the shard for `queryDue`), in order. */
  readonly calls: string[] = [];

  /** Puts items as they are, like a direct table write. */
  seed(...items: MemoryItem[]): this {
    for (const item of items) this.items.set(item.userId, { ...item });
    return this;
  }

  /** The stored item with its index key and TTL (undefined attributes are absent). */
  raw(userId: string): MemoryItem | undefined {
    const item = this.items.get(userId);
    return item && (Object.fromEntries(Object.entries(item).filter(([, v]) => v !== undefined)) as MemoryItem);
  }

  /**
   * A write conditional on version, status and lease owner, as the DynamoDB store's: a failed
   * condition is {@link LeaseLostError} when another owner holds the lease now, else
   * {@link ConcurrentUpdateError}.
   */
  private fenced(
    userId: string,
    owner: string,
    holds: (item: MemoryItem) => boolean,
    landed: (item: MemoryItem) => boolean = () => false,
  ): MemoryItem | { landed: MemoryItem } {
    const item = this.items.get(userId);
    if (item && holds(item) && item.leaseOwner === owner) return item;
    if (item && landed(item)) return { landed: item };
    if (item?.leaseOwner !== undefined && item.leaseOwner !== owner) throw new LeaseLostError(userId);
    throw new ConcurrentUpdateError(`the tokens of user "${userId}" changed during the refresh`);
  }

  async get(userId: string): Promise<TokenRecord | undefined> {
    this.calls.push(`get:${userId}`);
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

  async saveLogin(input: Parameters<TokenStore['saveLogin']>[0]): Promise<SaveLoginOutcome> {
    const { userId, profileId, tokens, now, schedule, boundBy } = input;
    this.calls.push(`saveLogin:${userId}`);
    const old = this.items.get(userId);
    // A public login never replaces a link-bound item (marked, or holding another profile).
    if (boundBy === 'public' && old && (old.profileId !== profileId || old.boundBy === 'connect')) {
      return { outcome: 'link-bound' };
    }
    const item: MemoryItem = {
      // Kept from before, as an UpdateItem that does not name them keeps them.
      ...old,
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
      refreshShard: schedule.shard,
      nextRefreshAt: schedule.nextRefreshAt,
      boundBy,
      version: (old?.version ?? 0) + 1,
      createdAt: old?.createdAt ?? now,
    };
    for (const key of ['statusReason', 'leaseOwner', 'leaseUntil', 'lastRefreshError', 'ttl'] as const) {
      delete item[key];
    }
    this.items.set(userId, item);
    return { outcome: 'saved', previousStatus: old?.status };
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

  async acquireLeaseIfStale(
    userId: string,
    owner: string,
    nowMs: number,
    leaseMs: number,
    staleBefore: number,
  ): Promise<{ readonly taken: boolean; readonly record: TokenRecord }> {
    this.calls.push(`acquireLeaseIfStale:${userId}`);
    const item = this.items.get(userId);
    if (!item) throw new UnknownUserError(userId);
    // As the DynamoDB store: a fresh token comes back without a lease and without its refresh token.
    if (item.expiresAt > staleBefore) return { taken: false, record: { ...record(item), refreshToken: '' } };
    if (item.leaseUntil !== undefined && !(item.leaseUntil < nowMs) && item.leaseOwner !== owner) {
      throw new ConcurrentUpdateError(`the refresh lease for user "${userId}" is held by another process`);
    }
    item.leaseOwner = owner;
    item.leaseUntil = nowMs + leaseMs;
    return { taken: true, record: record(item) };
  }

  async releaseLease(userId: string, owner: string): Promise<void> {
    this.calls.push(`releaseLease:${userId}`);
    const item = this.items.get(userId);
    if (item && item.leaseOwner === owner) {
      delete item.leaseOwner;
      delete item.leaseUntil;
    }
  }

  async saveRefresh(input: Parameters<TokenStore['saveRefresh']>[0]): Promise<TokenRecord> {
    const { userId, owner, version, tokens, now, nextRefreshAt } = input;
    this.calls.push(`saveRefresh:${userId}`);
    const found = this.fenced(
      userId,
      owner,
      (i) => i.version === version && i.status === 'active',
      (i) => i.version === version + 1 && i.accessToken === tokens.accessToken,
    );
    if ('landed' in found) return record(found.landed);
    const item = found;
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
      nextRefreshAt,
    });
    for (const key of ['leaseOwner', 'leaseUntil', 'lastRefreshError'] as const) delete item[key];
    return record(item);
  }

  async recordFailure(input: Parameters<TokenStore['recordFailure']>[0]): Promise<void> {
    const { userId, owner, version, reason, now, failures, nextRefreshAt } = input;
    this.calls.push(`recordFailure:${userId}`);
    const item = this.fenced(userId, owner, (i) => i.version === version && i.status === 'active') as MemoryItem;
    Object.assign(item, {
      consecutiveFailures: failures,
      lastRefreshAt: now,
      lastRefreshError: reason,
      updatedAt: now,
      nextRefreshAt,
    });
    delete item.leaseOwner;
    delete item.leaseUntil;
  }

  async markReauthRequired(input: Parameters<TokenStore['markReauthRequired']>[0]): Promise<void> {
    const { userId, owner, version, reason, now, deleteAfter } = input;
    this.calls.push(`markReauthRequired:${userId}`);
    const item = this.fenced(userId, owner, (i) => i.version === version) as MemoryItem;
    Object.assign(item, {
      status: 'reauth_required',
      statusReason: reason,
      statusAt: now,
      lastRefreshAt: now,
      lastRefreshError: reason,
      updatedAt: now,
      version: version + 1,
      ttl: deleteAfter,
    });
    for (const key of ['leaseOwner', 'leaseUntil', 'refreshShard', 'nextRefreshAt'] as const) delete item[key];
  }

  async delete(userId: string, options: { withRefreshToken?: boolean } = {}): Promise<TokenRecord | undefined> {
    this.calls.push(`delete:${userId}`);
    const item = this.items.get(userId);
    this.items.delete(userId);
    if (!item) return undefined;
    return options.withRefreshToken === false ? { ...record(item), refreshToken: '' } : record(item);
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
        ...(item.boundBy ? { boundBy: item.boundBy } : {}),
      };
    }
  }

  /**
   * Like a query of the sparse index: only items with both index attributes, in `nextRefreshAt`
   * order, paged by `limit` with a cursor after which the next page begins (DynamoDB returns one
   * whenever it stopped at the limit, even if nothing follows).
   */
  async queryDue(shard: number, before: number, options: { limit?: number; cursor?: string } = {}): Promise<DuePage> {
    this.calls.push(`queryDue:${shard}`);
    if (shard < 0 || shard >= REFRESH_SHARDS) throw new Error(`no shard ${shard}`);
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    const matching = [...this.items.values()]
      .filter((i) => i.refreshShard === shard && i.nextRefreshAt !== undefined && i.nextRefreshAt <= before)
      .sort((a, b) => a.nextRefreshAt! - b.nextRefreshAt! || (a.userId < b.userId ? -1 : 1))
      .filter(
        (i) => !after || i.nextRefreshAt! > after.at || (i.nextRefreshAt === after.at && i.userId > after.userId),
      );
    const page = options.limit === undefined ? matching : matching.slice(0, options.limit);
    const last = page[page.length - 1];
    const stopped = options.limit !== undefined && page.length === options.limit;
    return {
      userIds: page.map((i) => i.userId),
      cursor: stopped ? encodeCursor({ at: last.nextRefreshAt!, userId: last.userId }) : undefined,
      readUnits: 0.5,
    };
  }
}
