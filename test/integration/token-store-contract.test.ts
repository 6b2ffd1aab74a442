/**
 * One contract, two implementations: the DynamoDB token store against DynamoDB Local, and the
 * in-memory store the fast flow tests use (test/support/memory-token-store.ts). Every case runs
 * against both, so the fake cannot drift from the real conditions unnoticed.
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { ConcurrentUpdateError, UnknownUserError } from '../../functions/core/errors';
import { refreshShard, type TokenSet } from '../../functions/core/tokens';
import { READER_ATTRIBUTES, REAUTH_RETENTION_SECONDS, type TokenStore } from '../../functions/adapters/token-store';
import { MemoryTokenStore } from '../support/memory-token-store';
import { createTestStores, type TestStores } from '../support/stores';

const T0 = 1_000_000;

interface Subject {
  readonly store: TokenStore;
  /** The stored attributes as plain values, including the index key and the TTL. */
  raw(userId: string): Promise<Record<string, string | number> | undefined>;
  dispose(): void;
}

async function dynamoSubject(): Promise<Subject> {
  const stores: TestStores = await createTestStores('contract');
  return {
    store: stores.tokens,
    async raw(userId) {
      const out = await stores.client.send(
        new GetItemCommand({ TableName: stores.config.tokensTable, Key: { userId: { S: userId } } }),
      );
      if (!out.Item) return undefined;
      return Object.fromEntries(
        Object.entries(out.Item).map(([k, v]) => [k, v.N !== undefined ? Number(v.N) : (v.S as string)]),
      );
    },
    dispose: () => stores.client.destroy(),
  };
}

function memorySubject(): Subject {
  const store = new MemoryTokenStore();
  return {
    store,
    async raw(userId) {
      const item = store.raw(userId);
      if (!item) return undefined;
      return Object.fromEntries(Object.entries(item).filter(([, v]) => v !== undefined)) as Record<
        string,
        string | number
      >;
    },
    dispose: () => undefined,
  };
}

const tokens = (n: number, overrides: Partial<TokenSet> = {}): TokenSet & { refreshToken: string } => ({
  accessToken: `access-${n}`,
  tokenType: 'bearer',
  scope: 'product.compact profile.compact',
  expiresAt: T0 + 1800,
  ...overrides,
  refreshToken: overrides.refreshToken ?? `refresh-${n}`,
});

/** `count` user ids in one shard of the due index. */
function sameShard(count: number, prefix: string): string[] {
  const byShard = new Map<number, string[]>();
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    const ids = byShard.get(refreshShard(id)) ?? [];
    ids.push(id);
    byShard.set(refreshShard(id), ids);
    if (ids.length === count) return ids;
  }
}

describe.each([
  ['DynamoTokenStore (DynamoDB Local)', dynamoSubject],
  ['MemoryTokenStore (the fake)', async () => memorySubject()],
])('Contract: %s', (_name, make) => {
  let subject: Subject;
  let store: TokenStore;
  const login = (userId: string, n = 1, now = T0, overrides: Partial<TokenSet> = {}) =>
    store.saveLogin({ userId, profileId: `p-${userId}`, tokens: tokens(n, overrides), now });

  beforeEach(async () => {
    subject = await make();
    store = subject.store;
  });
  afterEach(() => subject.dispose());

  describe('Method: saveLogin', () => {
    it('returns the previous status, bumps the version and keeps the creation time', async () => {
      expect(await login('u', 1, T0)).toBeUndefined();
      expect(await login('u', 2, T0 + 10)).toBe('active');
      await store.markReauthRequired('u', 2, 'invalid_grant', T0 + 20);
      expect(await login('u', 3, T0 + 30)).toBe('reauth_required');

      const raw = await subject.raw('u');
      expect(raw).toMatchObject({
        userId: 'u',
        profileId: 'p-u',
        accessToken: 'access-3',
        refreshToken: 'refresh-3',
        status: 'active',
        version: 4,
        createdAt: T0,
        tokensIssuedAt: T0 + 30,
        consecutiveFailures: 0,
        refreshShard: refreshShard('u'),
        nextRefreshAt: T0 + 1800,
      });
      for (const gone of ['statusReason', 'ttl', 'leaseOwner', 'leaseUntil', 'lastRefreshError']) {
        expect(raw).not.toHaveProperty(gone);
      }
    });

    it('replaces a lease held during the login', async () => {
      await login('u');
      await store.acquireLease('u', 'refresher', T0 * 1000, 30_000);

      await login('u', 2);

      expect(await subject.raw('u')).not.toHaveProperty('leaseOwner');
    });
  });

  describe('Method: acquireLease', () => {
    it('takes a free lease and returns the item as it is now', async () => {
      await login('u');

      const held = await store.acquireLease('u', 'a', T0 * 1000, 30_000);

      expect(held).toMatchObject({ userId: 'u', accessToken: 'access-1', version: 1, leaseOwner: 'a' });
      expect(held.leaseUntil).toBe(T0 * 1000 + 30_000);
    });

    it('refuses a lease another owner holds until it has expired, and lets its owner take it again', async () => {
      await login('u');
      await store.acquireLease('u', 'a', T0 * 1000, 30_000);

      await expect(store.acquireLease('u', 'b', T0 * 1000 + 30_000, 30_000)).rejects.toBeInstanceOf(
        ConcurrentUpdateError,
      );
      await expect(store.acquireLease('u', 'a', T0 * 1000 + 1, 30_000)).resolves.toMatchObject({ leaseOwner: 'a' });
      await expect(store.acquireLease('u', 'b', T0 * 1000 + 30_002, 30_000)).resolves.toMatchObject({
        leaseOwner: 'b',
      });
    });

    it('says the user is unknown rather than busy', async () => {
      await expect(store.acquireLease('nobody', 'a', T0 * 1000, 30_000)).rejects.toBeInstanceOf(UnknownUserError);
    });
  });

  describe('Method: releaseLease', () => {
    it("releases only its own lease, and is a no-op for someone else's or a missing user", async () => {
      await login('u');
      await store.acquireLease('u', 'a', T0 * 1000, 30_000);

      await store.releaseLease('u', 'b');
      await store.releaseLease('nobody', 'a');
      expect(await subject.raw('u')).toMatchObject({ leaseOwner: 'a' });
      await store.releaseLease('u', 'a');
      expect(await subject.raw('u')).not.toHaveProperty('leaseOwner');
    });
  });

  describe('Method: saveRefresh', () => {
    it('stores the new pair under the next version, clearing lease and failures', async () => {
      await login('u');
      await store.recordFailure((await store.get('u'))!, 'unavailable', T0 + 5);
      await store.acquireLease('u', 'a', T0 * 1000, 30_000);

      const saved = await store.saveRefresh('u', 1, tokens(2, { expiresAt: T0 + 3600 }), T0 + 10);

      expect(saved).toMatchObject({ accessToken: 'access-2', refreshToken: 'refresh-2', version: 2 });
      const raw = await subject.raw('u');
      expect(raw).toMatchObject({
        consecutiveFailures: 0,
        lastRefreshAt: T0 + 10,
        tokensIssuedAt: T0 + 10,
        nextRefreshAt: T0 + 3600,
      });
      expect(raw).not.toHaveProperty('leaseOwner');
      expect(raw).not.toHaveProperty('lastRefreshError');
    });

    it('keeps the stored refresh token when none came back', async () => {
      await login('u');

      await store.saveRefresh('u', 1, { ...tokens(2), refreshToken: undefined }, T0);

      expect(await subject.raw('u')).toMatchObject({ accessToken: 'access-2', refreshToken: 'refresh-1' });
    });

    it('refuses an older version, a dead grant and a missing user', async () => {
      await login('u');
      await login('u', 2);
      await expect(store.saveRefresh('u', 1, tokens(3), T0)).rejects.toBeInstanceOf(ConcurrentUpdateError);

      await store.markReauthRequired('u', 2, 'invalid_grant', T0);
      await expect(store.saveRefresh('u', 3, tokens(3), T0)).rejects.toBeInstanceOf(ConcurrentUpdateError);
      await expect(store.saveRefresh('nobody', 1, tokens(3), T0)).rejects.toBeInstanceOf(ConcurrentUpdateError);
    });
  });

  describe('Method: recordFailure', () => {
    it('counts failures in a row from the item as read and pushes the next attempt back', async () => {
      await login('u', 1, T0, { expiresAt: T0 - 10 });

      expect(await store.recordFailure((await store.get('u'))!, 'unavailable', T0)).toBe(1);
      expect(await store.recordFailure((await store.get('u'))!, 'invalid_client', T0)).toBe(2);

      expect(await subject.raw('u')).toMatchObject({
        consecutiveFailures: 2,
        lastRefreshError: 'invalid_client',
        lastRefreshAt: T0,
        nextRefreshAt: T0 + 120,
        version: 1,
      });
    });

    it('refuses a record that is no longer current', async () => {
      await login('u');
      const stale = (await store.get('u'))!;
      await login('u', 2);

      await expect(store.recordFailure(stale, 'unavailable', T0)).rejects.toBeInstanceOf(ConcurrentUpdateError);
    });
  });

  describe('Method: markReauthRequired', () => {
    it('takes the user out of the due index and sets the 90-day TTL', async () => {
      await login('u', 1, T0, { expiresAt: T0 - 10 });

      await store.markReauthRequired('u', 1, 'invalid_grant', T0);

      const raw = await subject.raw('u');
      expect(raw).toMatchObject({
        status: 'reauth_required',
        statusReason: 'invalid_grant',
        version: 2,
        ttl: T0 + REAUTH_RETENTION_SECONDS,
      });
      expect(raw).not.toHaveProperty('nextRefreshAt');
      expect(raw).not.toHaveProperty('refreshShard');
      expect((await store.queryDue(refreshShard('u'), T0 + 10_000)).userIds).toEqual([]);
      await expect(store.markReauthRequired('u', 1, 'invalid_grant', T0)).rejects.toBeInstanceOf(ConcurrentUpdateError);
    });
  });

  describe('Method: queryDue', () => {
    it('lists the users of one shard due by the given time, earliest first, page by page', async () => {
      const [a, b, c, d] = sameShard(4, 'q');
      await login(a, 1, T0, { expiresAt: T0 + 30 });
      await login(b, 1, T0, { expiresAt: T0 + 10 });
      await login(c, 1, T0, { expiresAt: T0 + 20 });
      await login(d, 1, T0, { expiresAt: T0 + 99 });

      const first = await store.queryDue(refreshShard(a), T0 + 30, { limit: 2 });
      const second = await store.queryDue(refreshShard(a), T0 + 30, { limit: 2, startKey: first.nextKey });
      const rest = second.nextKey
        ? await store.queryDue(refreshShard(a), T0 + 30, { limit: 2, startKey: second.nextKey })
        : { userIds: [] };

      expect(first.userIds).toEqual([b, c]);
      expect(second.userIds).toEqual([a]);
      expect(rest.userIds).toEqual([]);
      expect((await store.queryDue((refreshShard(a) + 1) % 16, T0 + 1000)).userIds).not.toContain(a);
    });

    it('lists a user again on a later page when a failure moved it later, still within the time', async () => {
      const [a, b] = sameShard(2, 'm');
      await login(a, 1, T0, { expiresAt: T0 - 10 });
      await login(b, 1, T0, { expiresAt: T0 - 5 });

      const first = await store.queryDue(refreshShard(a), T0 + 600, { limit: 1 });
      await store.recordFailure((await store.get(first.userIds[0]))!, 'unavailable', T0);
      const second = await store.queryDue(refreshShard(a), T0 + 600, { limit: 1, startKey: first.nextKey });
      const third = await store.queryDue(refreshShard(a), T0 + 600, { limit: 1, startKey: second.nextKey });

      expect(first.userIds).toEqual([a]);
      expect(second.userIds).toEqual([b]);
      expect(third.userIds).toEqual([a]);
    });
  });

  describe('Methods: get, getForReader, delete', () => {
    it('reads the whole record, the reader projection, and deletes returning what was there', async () => {
      await login('u');

      expect(await store.get('u')).toMatchObject({ userId: 'u', refreshToken: 'refresh-1', version: 1 });
      const reader = await store.getForReader('u');
      expect(
        Object.keys(reader!)
          .filter((k) => (reader as Record<string, unknown>)[k] !== undefined)
          .sort(),
      ).toEqual(READER_ATTRIBUTES.filter((k) => k !== 'statusReason').sort());
      expect(reader).not.toHaveProperty('refreshToken');
      expect(await store.delete('u')).toMatchObject({ userId: 'u', accessToken: 'access-1' });
      expect(await store.get('u')).toBeUndefined();
      expect(await store.getForReader('u')).toBeUndefined();
      expect(await store.delete('u')).toBeUndefined();
    });
  });
});
