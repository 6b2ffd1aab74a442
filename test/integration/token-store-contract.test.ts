/**
 * One contract, two implementations: the DynamoDB token store against DynamoDB Local, and the
 * in-memory store the fast flow tests use (test/support/memory-token-store.ts). Every case runs
 * against both, so the fake cannot drift from the real conditions unnoticed. The fake stands in for
 * the store above the field encoding: the DynamoDB subject's raw view shows the refresh token
 * decrypted (test/integration/at-rest.test.ts checks what the table really holds).
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { ConcurrentUpdateError, LeaseLostError, UnknownUserError } from '../../functions/core/errors';
import { READER_ATTRIBUTES, REFRESH_SHARDS } from '../../functions/core/schema';
import {
  afterTransientFailure,
  reauthDeleteAfter,
  refreshShard,
  scheduleAfterTokens,
  type TokenSet,
} from '../../functions/core/tokens';
import { openField } from '../../functions/adapters/field-cipher';
import type { BoundBy, TokenStore } from '../../functions/adapters/token-store';
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
      const raw: Record<string, string | number> = Object.fromEntries(
        Object.entries(out.Item).map(([k, v]) => [k, v.N !== undefined ? Number(v.N) : (v.S as string)]),
      );
      const context = { purpose: 'tokens', field: 'refreshToken', id: userId } as const;
      const sealed = raw.refreshToken as string | undefined;
      if (sealed !== undefined) raw.refreshToken = (await openField(stores.cipher, context, sealed))!;
      return raw;
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
  const login = (
    userId: string,
    n = 1,
    now = T0,
    overrides: Partial<TokenSet> = {},
    as: { profileId?: string; boundBy?: BoundBy } = {},
  ) => {
    const set = tokens(n, overrides);
    return store.saveLogin({
      userId,
      profileId: as.profileId ?? `p-${userId}`,
      tokens: set,
      now,
      schedule: scheduleAfterTokens(userId, set, now),
      boundBy: as.boundBy ?? 'public',
    });
  };
  /** Takes the lease for `owner` and records one transient failure from the item as read. */
  const fail = async (userId: string, now = T0, reason = 'unavailable', owner = 'a') => {
    const read = await store.acquireLease(userId, owner, now * 1000, 50_000);
    await store.recordFailure({
      userId,
      owner,
      version: read.version,
      reason,
      now,
      ...afterTransientFailure(read, now),
    });
  };
  const save = (userId: string, owner: string, version: number, set: TokenSet, now = T0) =>
    store.saveRefresh({ userId, owner, version, tokens: set, now, nextRefreshAt: set.expiresAt });
  const markDead = (userId: string, owner: string, version: number, now = T0) =>
    store.markReauthRequired({
      userId,
      owner,
      version,
      reason: 'invalid_grant',
      now,
      deleteAfter: reauthDeleteAfter(now),
    });

  beforeEach(async () => {
    subject = await make();
    store = subject.store;
  });
  afterEach(() => subject.dispose());

  describe('Method: saveLogin', () => {
    it('says what the status was, bumps the version and keeps the creation time', async () => {
      expect(await login('u', 1, T0)).toEqual({ outcome: 'saved', previousStatus: undefined });
      expect(await login('u', 2, T0 + 10)).toEqual({ outcome: 'saved', previousStatus: 'active' });
      await store.acquireLease('u', 'a', T0 * 1000, 50_000);
      await markDead('u', 'a', 2, T0 + 20);
      expect(await login('u', 3, T0 + 30)).toEqual({ outcome: 'saved', previousStatus: 'reauth_required' });

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
        boundBy: 'public',
      });
      for (const gone of ['statusReason', 'ttl', 'leaseOwner', 'leaseUntil', 'lastRefreshError']) {
        expect(raw).not.toHaveProperty(gone);
      }
    });

    it('replaces a lease held during the login', async () => {
      await login('u');
      await store.acquireLease('u', 'refresher', T0 * 1000, 50_000);

      await login('u', 2);

      expect(await subject.raw('u')).not.toHaveProperty('leaseOwner');
    });

    it('never lets a public login replace a link-bound user, marked or holding another profile', async () => {
      await login('app-1', 1, T0, {}, { profileId: 'kroger-1', boundBy: 'connect' });
      await login('legacy', 1, T0, {}, { profileId: 'kroger-2', boundBy: 'public' });

      expect(await login('app-1', 2, T0, {}, { profileId: 'kroger-1' })).toEqual({ outcome: 'link-bound' });
      expect(await login('legacy', 2, T0, {}, { profileId: 'kroger-3' })).toEqual({ outcome: 'link-bound' });
      expect(await subject.raw('app-1')).toMatchObject({ accessToken: 'access-1', version: 1, boundBy: 'connect' });
      expect(await subject.raw('legacy')).toMatchObject({ accessToken: 'access-1', version: 1 });
      // A completion (connect) writes the app's own user whatever was there.
      expect(await login('legacy', 3, T0, {}, { profileId: 'kroger-3', boundBy: 'connect' })).toMatchObject({
        outcome: 'saved',
      });
      expect(await subject.raw('legacy')).toMatchObject({ profileId: 'kroger-3', boundBy: 'connect', version: 2 });
    });
  });

  describe('Method: acquireLease', () => {
    it('takes a free lease and returns the item as it is now', async () => {
      await login('u');

      const held = await store.acquireLease('u', 'a', T0 * 1000, 50_000);

      expect(held).toMatchObject({ userId: 'u', accessToken: 'access-1', refreshToken: 'refresh-1', version: 1 });
      expect(held).toMatchObject({ leaseOwner: 'a', leaseUntil: T0 * 1000 + 50_000 });
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

  describe('Method: acquireLeaseIfStale', () => {
    // The token expires at T0 + 1800.
    it('takes the lease of a stale token and returns the item with its refresh token', async () => {
      await login('u');

      const out = await store.acquireLeaseIfStale('u', 'a', T0 * 1000, 50_000, T0 + 1800);

      expect(out.taken).toBe(true);
      expect(out.record).toMatchObject({ refreshToken: 'refresh-1', leaseOwner: 'a', leaseUntil: T0 * 1000 + 50_000 });
    });

    it('takes no lease on a token refreshed meanwhile and returns it without its refresh token', async () => {
      await login('u');

      const out = await store.acquireLeaseIfStale('u', 'a', T0 * 1000, 50_000, T0 + 1799);

      expect(out).toMatchObject({ taken: false, record: { accessToken: 'access-1', refreshToken: '' } });
      expect(await subject.raw('u')).not.toHaveProperty('leaseOwner');
    });

    it('returns a fresh token even while another owner holds the lease, and refuses a stale one', async () => {
      await login('u');
      await store.acquireLease('u', 'b', T0 * 1000, 30_000);

      await expect(store.acquireLeaseIfStale('u', 'a', T0 * 1000, 30_000, T0 + 1799)).resolves.toMatchObject({
        taken: false,
      });
      await expect(store.acquireLeaseIfStale('u', 'a', T0 * 1000, 30_000, T0 + 1800)).rejects.toBeInstanceOf(
        ConcurrentUpdateError,
      );
    });

    it('says the user is unknown', async () => {
      await expect(store.acquireLeaseIfStale('nobody', 'a', T0 * 1000, 30_000, T0)).rejects.toBeInstanceOf(
        UnknownUserError,
      );
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
      await fail('u', T0 + 5);
      await store.acquireLease('u', 'a', T0 * 1000, 50_000);

      const saved = await save('u', 'a', 1, tokens(2, { expiresAt: T0 + 3600 }), T0 + 10);

      expect(saved).toMatchObject({ accessToken: 'access-2', refreshToken: 'refresh-2', version: 2 });
      const raw = await subject.raw('u');
      expect(raw).toMatchObject({
        refreshToken: 'refresh-2',
        consecutiveFailures: 0,
        lastRefreshAt: T0 + 10,
        tokensIssuedAt: T0 + 10,
        nextRefreshAt: T0 + 3600,
        version: 2,
      });
      expect(raw).not.toHaveProperty('leaseOwner');
      expect(raw).not.toHaveProperty('lastRefreshError');
    });

    it('keeps the stored refresh token when none came back', async () => {
      await login('u');
      await store.acquireLease('u', 'a', T0 * 1000, 50_000);

      const saved = await save('u', 'a', 1, { ...tokens(2), refreshToken: undefined });

      expect(saved.refreshToken).toBe('refresh-1');
      expect(await subject.raw('u')).toMatchObject({ accessToken: 'access-2', refreshToken: 'refresh-1' });
    });

    it('returns the stored item when the same write already landed (an answer lost on the way)', async () => {
      await login('u');
      await store.acquireLease('u', 'a', T0 * 1000, 50_000);
      await save('u', 'a', 1, tokens(2));

      await expect(save('u', 'a', 1, tokens(2))).resolves.toMatchObject({ accessToken: 'access-2', version: 2 });
      await expect(save('u', 'a', 1, tokens(3))).rejects.toBeInstanceOf(ConcurrentUpdateError);
    });

    it('refuses an older version, a dead grant, a missing user and a write without the lease', async () => {
      await login('u');
      await login('u', 2);
      await store.acquireLease('u', 'a', T0 * 1000, 50_000);
      await expect(save('u', 'a', 1, tokens(3))).rejects.toBeInstanceOf(ConcurrentUpdateError);

      await markDead('u', 'a', 2);
      await store.acquireLease('u', 'a', T0 * 1000, 50_000);
      await expect(save('u', 'a', 3, tokens(3))).rejects.toBeInstanceOf(ConcurrentUpdateError);
      await expect(save('nobody', 'a', 1, tokens(3))).rejects.toBeInstanceOf(ConcurrentUpdateError);

      await login('v');
      const error = await save('v', 'a', 1, tokens(3)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConcurrentUpdateError);
      expect(error).not.toBeInstanceOf(LeaseLostError);
    });

    it('refuses a holder whose lease was taken over, with LeaseLostError', async () => {
      await login('u');
      await store.acquireLease('u', 'a', T0 * 1000, 30_000);
      await store.acquireLease('u', 'b', T0 * 1000 + 30_001, 30_000);

      await expect(save('u', 'a', 1, tokens(2))).rejects.toBeInstanceOf(LeaseLostError);
      const fenced = { userId: 'u', owner: 'a', version: 1, reason: 'x', now: T0 };
      await expect(store.recordFailure({ ...fenced, failures: 1, nextRefreshAt: T0 })).rejects.toBeInstanceOf(
        LeaseLostError,
      );
      await expect(store.markReauthRequired({ ...fenced, deleteAfter: T0 })).rejects.toBeInstanceOf(LeaseLostError);
      expect(await subject.raw('u')).toMatchObject({ accessToken: 'access-1', leaseOwner: 'b', version: 1 });
    });
  });

  describe('Method: recordFailure', () => {
    it('stores the failure count and next attempt it is given, and drops the lease', async () => {
      await login('u', 1, T0, { expiresAt: T0 - 10 });

      await fail('u', T0);
      await fail('u', T0, 'invalid_client');

      const raw = await subject.raw('u');
      expect(raw).toMatchObject({
        consecutiveFailures: 2,
        lastRefreshError: 'invalid_client',
        lastRefreshAt: T0,
        nextRefreshAt: T0 + 120,
        version: 1,
      });
      expect(raw).not.toHaveProperty('leaseOwner');
    });

    it('refuses a record that is no longer current', async () => {
      await login('u');
      const stale = await store.acquireLease('u', 'a', T0 * 1000, 50_000);
      await login('u', 2);
      await store.acquireLease('u', 'a', T0 * 1000, 50_000);

      await expect(
        store.recordFailure({
          userId: 'u',
          owner: 'a',
          version: stale.version,
          reason: 'x',
          now: T0,
          failures: 1,
          nextRefreshAt: T0,
        }),
      ).rejects.toBeInstanceOf(ConcurrentUpdateError);
    });
  });

  describe('Method: markReauthRequired', () => {
    it('takes the user out of the due index and sets the TTL it is given', async () => {
      await login('u', 1, T0, { expiresAt: T0 - 10 });
      await store.acquireLease('u', 'a', T0 * 1000, 50_000);

      await markDead('u', 'a', 1);

      const raw = await subject.raw('u');
      expect(raw).toMatchObject({
        status: 'reauth_required',
        statusReason: 'invalid_grant',
        lastRefreshError: 'invalid_grant',
        version: 2,
        ttl: reauthDeleteAfter(T0),
      });
      for (const gone of ['nextRefreshAt', 'refreshShard', 'leaseOwner']) expect(raw).not.toHaveProperty(gone);
      expect((await store.queryDue(refreshShard('u'), T0 + 10_000)).userIds).toEqual([]);
      await store.acquireLease('u', 'a', T0 * 1000, 50_000);
      await expect(markDead('u', 'a', 1)).rejects.toBeInstanceOf(ConcurrentUpdateError);
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
      const second = await store.queryDue(refreshShard(a), T0 + 30, { limit: 2, cursor: first.cursor });
      const rest = second.cursor
        ? await store.queryDue(refreshShard(a), T0 + 30, { limit: 2, cursor: second.cursor })
        : { userIds: [] };

      expect(first.userIds).toEqual([b, c]);
      expect(typeof first.cursor).toBe('string');
      expect(second.userIds).toEqual([a]);
      expect(rest.userIds).toEqual([]);
      expect((await store.queryDue((refreshShard(a) + 1) % REFRESH_SHARDS, T0 + 1000)).userIds).not.toContain(a);
    });

    it('lists a user again on a later page when a failure moved it later, still within the time', async () => {
      const [a, b] = sameShard(2, 'm');
      await login(a, 1, T0, { expiresAt: T0 - 10 });
      await login(b, 1, T0, { expiresAt: T0 - 5 });

      const first = await store.queryDue(refreshShard(a), T0 + 600, { limit: 1 });
      await fail(first.userIds[0], T0);
      const second = await store.queryDue(refreshShard(a), T0 + 600, { limit: 1, cursor: first.cursor });
      const third = await store.queryDue(refreshShard(a), T0 + 600, { limit: 1, cursor: second.cursor });

      expect(first.userIds).toEqual([a]);
      expect(second.userIds).toEqual([b]);
      expect(third.userIds).toEqual([a]);
    });
  });

  describe('Methods: get, getForReader, delete, list', () => {
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
      expect(await store.delete('u')).toMatchObject({
        userId: 'u',
        accessToken: 'access-1',
        refreshToken: 'refresh-1',
      });
      expect(await store.get('u')).toBeUndefined();
      expect(await store.getForReader('u')).toBeUndefined();
      expect(await store.delete('u')).toBeUndefined();
    });

    it('deletes without the refresh token when asked to', async () => {
      await login('u');

      expect(await store.delete('u', { withRefreshToken: false })).toMatchObject({ userId: 'u', refreshToken: '' });
    });

    it('lists summaries with how each grant was bound, never a token', async () => {
      await login('u');
      await login('app-1', 1, T0, {}, { profileId: 'k', boundBy: 'connect' });

      const rows = [];
      for await (const row of store.list()) rows.push(row);

      expect(rows.sort((x, y) => (x.userId < y.userId ? -1 : 1))).toEqual([
        {
          userId: 'app-1',
          profileId: 'k',
          status: 'active',
          expiresAt: T0 + 1800,
          scope: 'product.compact profile.compact',
          consecutiveFailures: 0,
          boundBy: 'connect',
        },
        {
          userId: 'u',
          profileId: 'p-u',
          status: 'active',
          expiresAt: T0 + 1800,
          scope: 'product.compact profile.compact',
          consecutiveFailures: 0,
          boundBy: 'public',
        },
      ]);
    });
  });
});
