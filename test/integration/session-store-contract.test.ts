/**
 * One contract, two implementations: the DynamoDB session store against DynamoDB Local, and the
 * in-memory store the fast flow tests use (test/support/memory-session-store.ts). Each case runs
 * against both: login attempts, connect links and pending connections are consumed once, expire,
 * and answer with the same outcomes.
 */
import type { LoginAttempt } from '../../functions/core/login';
import type { PendingConnection, SessionStore } from '../../functions/adapters/session-store';
import { MemorySessionStore } from '../support/memory-session-store';
import { createTestStores } from '../support/stores';

const T0 = 1_000_000;

interface Subject {
  readonly store: SessionStore;
  dispose(): void;
}

async function dynamoSubject(): Promise<Subject> {
  const stores = await createTestStores('session-contract');
  return { store: stores.sessions, dispose: () => stores.client.destroy() };
}

const attempt = (state: string, overrides: Partial<LoginAttempt> = {}): LoginAttempt => ({
  state,
  codeVerifier: `verifier-${state}`,
  bindingHash: `hash-${state}`,
  expiresAt: T0 + 600,
  ...overrides,
});

const pending = (codeHash: string, overrides: Partial<PendingConnection> = {}): PendingConnection => ({
  codeHash,
  appUserId: 'app-user',
  profileId: 'kroger-1',
  tokens: {
    accessToken: 'access-1',
    refreshToken: 'refresh-1',
    tokenType: 'bearer',
    scope: 'profile.compact',
    expiresAt: T0 + 1800,
  },
  expiresAt: T0 + 900,
  closedRetention: T0 + 86_400,
  ...overrides,
});

describe.each([
  ['DynamoSessionStore (DynamoDB Local)', dynamoSubject],
  ['MemorySessionStore (the fake)', async (): Promise<Subject> => ({ store: new MemorySessionStore(), dispose() {} })],
])('Contract: %s', (_name, make) => {
  let subject: Subject;
  let store: SessionStore;

  beforeEach(async () => {
    subject = await make();
    store = subject.store;
  });
  afterEach(() => subject.dispose());

  describe('Method: consumeAttempt', () => {
    it('consumes an attempt once, for the browser it is bound to, returning it whole', async () => {
      await store.putAttempt(attempt('s1', { appUserId: 'app-1', returnTo: 'https://app.example/done' }));

      expect(await store.consumeAttempt('s1', 'hash-s1', T0)).toEqual({
        outcome: 'consumed',
        attempt: {
          state: 's1',
          codeVerifier: 'verifier-s1',
          bindingHash: 'hash-s1',
          appUserId: 'app-1',
          returnTo: 'https://app.example/done',
          expiresAt: T0 + 600,
        },
      });
      expect(await store.consumeAttempt('s1', 'hash-s1', T0)).toEqual({ outcome: 'invalid' });
    });

    it('leaves an attempt in place for its own browser when another (or none) presents it', async () => {
      await store.putAttempt(attempt('s2'));

      expect(await store.consumeAttempt('s2', 'hash-other', T0)).toEqual({ outcome: 'wrong-browser' });
      expect(await store.consumeAttempt('s2', undefined, T0)).toEqual({ outcome: 'wrong-browser' });
      expect(await store.consumeAttempt('s2', 'hash-s2', T0)).toMatchObject({ outcome: 'consumed' });
    });

    it('calls an expired or unknown attempt invalid, whatever the browser', async () => {
      await store.putAttempt(attempt('s3', { expiresAt: T0 }));

      expect(await store.consumeAttempt('s3', 'hash-s3', T0)).toEqual({ outcome: 'invalid' });
      expect(await store.consumeAttempt('s3', 'hash-other', T0)).toEqual({ outcome: 'invalid' });
      expect(await store.consumeAttempt('never', 'hash-never', T0)).toEqual({ outcome: 'invalid' });
    });

    it('refuses a second attempt with the same state', async () => {
      await store.putAttempt(attempt('dup'));

      await expect(store.putAttempt(attempt('dup'))).rejects.toThrow();
    });
  });

  describe('Methods: putLink, peekLink, consumeLink', () => {
    it('peeks without consuming, consumes once, and forgets an expired link', async () => {
      const link = { id: 'l1', appUserId: 'app-1', returnTo: 'https://app.example/x', expiresAt: T0 + 900 };
      await store.putLink(link);
      await store.putLink({ id: 'l2', appUserId: 'app-2', expiresAt: T0 });

      expect(await store.peekLink('l1', T0)).toEqual(link);
      expect(await store.peekLink('l1', T0)).toEqual(link);
      expect(await store.consumeLink('l1', T0)).toEqual(link);
      expect(await store.peekLink('l1', T0)).toBeUndefined();
      expect(await store.consumeLink('l1', T0)).toBeUndefined();
      expect(await store.peekLink('l2', T0)).toBeUndefined();
      expect(await store.consumeLink('l2', T0)).toBeUndefined();
    });
  });

  describe('Method: consumePending', () => {
    it('hands the grant to its own app user once; a second presentation hears "used"', async () => {
      await store.putPending(pending('h1'));

      expect(await store.consumePending('h1', 'app-user', T0)).toEqual({ outcome: 'consumed', pending: pending('h1') });
      expect(await store.consumePending('h1', 'app-user', T0)).toEqual({ outcome: 'used' });
      expect(await store.consumePending('h1', 'someone-else', T0)).toEqual({ outcome: 'used' });
    });

    it('cancels a connection presented for another app user, for good', async () => {
      await store.putPending(pending('h2'));

      expect(await store.consumePending('h2', 'intruder', T0)).toEqual({
        outcome: 'foreign',
        linkAppUserId: 'app-user',
      });
      expect(await store.consumePending('h2', 'app-user', T0)).toEqual({ outcome: 'cancelled' });
    });

    it('says expired and unknown', async () => {
      await store.putPending(pending('h3', { expiresAt: T0 }));

      expect(await store.consumePending('h3', 'app-user', T0)).toEqual({ outcome: 'expired' });
      expect(await store.consumePending('nope', 'app-user', T0)).toEqual({ outcome: 'unknown' });
    });
  });
});
