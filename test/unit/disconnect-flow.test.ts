/**
 * Disconnecting a user, fast: the real flow over the in-memory token store (the same conditions as
 * DynamoDB, see test/integration/token-store-contract.test.ts) and a scripted provider, with jest's
 * clock for the wait on a refresh's lease. test/integration/cli-disconnect.test.ts runs it through the
 * CLI against DynamoDB Local and the sandbox; these pin each outcome: what was revoked, what was
 * deleted, what was kept, in which order, and what the logs say (never a token).
 */
import {
  ConfigError,
  ProviderUnavailableError,
  RefreshInProgressError,
  UnknownUserError,
} from '../../functions/core/errors';
import { DEFAULT_REFRESH_TIMEOUT_MS, MAX_LEASE_WAIT_MS, refreshLeaseMs } from '../../functions/core/budget';
import { type DisconnectDeps, disconnectUser } from '../../functions/flows/disconnect-flow';
import { FakeProvider } from '../support/fakes';
import { captureLogger } from '../support/logs';
import { activeRecord, MemoryTokenStore } from '../support/memory-token-store';

let store: MemoryTokenStore;
let provider: FakeProvider;
let logs: ReturnType<typeof captureLogger>;
/** How many times the flow asked for the provider client. */
let revokerBuilt: number;
/** The `delete` options the flow passed, in order. */
let deletes: Array<{ withRefreshToken?: boolean } | undefined>;

function deps(revoker: () => FakeProvider | undefined = () => provider): DisconnectDeps {
  return {
    tokens: store,
    revoker: () => {
      revokerBuilt++;
      return revoker();
    },
    logger: logs.logger,
  };
}

const logged = () => logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>);

/** Neither of the user's tokens appears in any log line. */
function expectNoTokenInLogs() {
  expect(logs.text()).not.toContain('u-refresh-1');
  expect(logs.text()).not.toContain('u-access-1');
}

beforeEach(() => {
  store = new MemoryTokenStore();
  provider = new FakeProvider();
  logs = captureLogger();
  revokerBuilt = 0;
  deletes = [];
  const remove = store.delete.bind(store);
  store.delete = async (userId, options) => {
    deletes.push(options);
    return remove(userId, options);
  };
});

describe('Function: disconnectUser', () => {
  describe('with a provider that can revoke', () => {
    it('revokes the stored refresh token under the lease, then deletes the tokens', async () => {
      store.seed(activeRecord('u'));
      const seen: unknown[] = [];
      provider.onRevoke = async () => {
        // Still stored, and held against refreshes, while the provider revokes.
        seen.push(store.raw('u')?.leaseOwner, store.raw('u')?.leaseUntil! - Date.now());
        return true;
      };

      const outcome = await disconnectUser('u', deps());

      expect(outcome).toBe('revoked');
      expect(provider.revoked).toEqual(['u-refresh-1']);
      expect(seen[0]).toMatch(/^disconnect:[0-9a-f-]{36}$/);
      expect(seen[1]).toBeGreaterThan(refreshLeaseMs(DEFAULT_REFRESH_TIMEOUT_MS) - 1000);
      expect(seen[1]).toBeLessThanOrEqual(refreshLeaseMs(DEFAULT_REFRESH_TIMEOUT_MS));
      expect(store.items.has('u')).toBe(false);
      expect(store.calls).toEqual(['acquireLease:u', 'get:u', 'delete:u']);
      // The refresh token is not decrypted again to delete it.
      expect(deletes).toEqual([{ withRefreshToken: false }]);
      expect(logged()).toEqual([
        expect.objectContaining({ level: 'INFO', message: 'user disconnected', userId: 'u', revoked: true }),
      ]);
      expectNoTokenInLogs();
    });

    it('says not-revocable, and still deletes, when the provider answers that it cannot revoke', async () => {
      store.seed(activeRecord('u'));
      provider.onRevoke = async () => false;

      await expect(disconnectUser('u', deps())).resolves.toBe('not-revocable');

      expect(store.items.has('u')).toBe(false);
      expect(logged()).toEqual([
        expect.objectContaining({ level: 'INFO', message: 'user disconnected', userId: 'u', revoked: false }),
      ]);
    });

    it('keeps the tokens exactly as they were, and releases the lease, when the revocation fails', async () => {
      store.seed(activeRecord('u'));
      const before = store.raw('u');
      const failure = new ProviderUnavailableError('the revocation endpoint answered with status 503');
      provider.onRevoke = async () => {
        throw failure;
      };

      const error = await disconnectUser('u', deps()).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(ProviderUnavailableError);
      expect(error).toMatchObject({
        code: 'PROVIDER_UNAVAILABLE',
        message:
          'revoking the grant at the provider failed (the revocation endpoint answered with status 503): the tokens ' +
          'are kept; try again later, or use --force to delete them without revoking (the grant then stays live at ' +
          'the provider)',
        cause: failure,
      });
      expect(store.raw('u')).toEqual(before);
      expect(store.calls).toEqual(['acquireLease:u', 'get:u', 'releaseLease:u']);
      expect(logged()).toEqual([
        expect.objectContaining({
          level: 'WARN',
          message: 'revocation failed; the tokens are kept',
          userId: 'u',
          error: expect.objectContaining({ code: 'PROVIDER_UNAVAILABLE' }),
        }),
      ]);
      expectNoTokenInLogs();
    });

    it('does not quote an unexpected failure in its message', async () => {
      store.seed(activeRecord('u'));
      provider.onRevoke = async () => {
        throw new TypeError('fetch failed: u-refresh-1');
      };

      const error = await disconnectUser('u', deps()).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(ProviderUnavailableError);
      expect((error as Error).message).toMatch(/^revoking the grant at the provider failed \(an unexpected error\): /);
      expect(store.raw('u')).toMatchObject({ refreshToken: 'u-refresh-1', status: 'active' });
      expect(store.raw('u')?.leaseOwner).toBeUndefined();
    });

    it('throws UnknownUserError for a user with no tokens, and never calls the provider', async () => {
      await expect(disconnectUser('nobody', deps())).rejects.toThrow(new UnknownUserError('nobody'));

      expect(provider.total()).toBe(0);
      expect(store.calls).toEqual(['acquireLease:nobody']);
    });

    it('throws UnknownUserError when someone else disconnected the user after the lease was taken', async () => {
      store.seed(activeRecord('u'));
      const acquire = store.acquireLease.bind(store);
      store.acquireLease = async (...args) => {
        const held = await acquire(...args);
        store.items.delete('u');
        return held;
      };

      await expect(disconnectUser('u', deps())).rejects.toBeInstanceOf(UnknownUserError);

      expect(provider.total()).toBe(0);
      expect(store.calls).toEqual(['acquireLease:u', 'get:u']);
    });

    it('lets a store failure other than a held lease through at once, touching nothing', async () => {
      store.seed(activeRecord('u'));
      store.acquireLease = async () => {
        throw new Error('DynamoDB is unavailable');
      };

      await expect(disconnectUser('u', deps())).rejects.toThrow('DynamoDB is unavailable');

      expect(provider.total()).toBe(0);
      expect(store.raw('u')).toEqual(activeRecord('u'));
    });

    it('fails with the configuration error before touching anything when the provider settings are missing', async () => {
      store.seed(activeRecord('u'));
      const missing = new ConfigError('missing required setting OAUTH2_BASE_URL');

      await expect(
        disconnectUser(
          'u',
          deps(() => {
            throw missing;
          }),
        ),
      ).rejects.toBe(missing);

      expect(store.calls).toEqual([]);
    });
  });

  describe('while a refresh holds the lease', () => {
    beforeEach(() => {
      jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    });
    afterEach(() => {
      jest.useRealTimers();
    });

    it('waits for the refresh to finish, then revokes the refresh token it stored', async () => {
      store.seed(activeRecord('u', { leaseOwner: 'refresher', leaseUntil: Date.now() + 60_000 }));
      const running = disconnectUser('u', deps());
      let settled = false;
      void running.finally(() => (settled = true));

      await jest.advanceTimersByTimeAsync(1000);
      expect(settled).toBe(false);
      expect(provider.total()).toBe(0);
      // The refresh stores a rotated refresh token and drops its lease.
      await store.saveRefresh({
        userId: 'u',
        owner: 'refresher',
        version: 1,
        tokens: {
          accessToken: 'u-access-2',
          refreshToken: 'u-refresh-2',
          tokenType: 'bearer',
          scope: 'product.compact',
          expiresAt: 1_001_900,
        },
        now: 1_000_100,
        nextRefreshAt: 1_000_200,
      });
      await jest.advanceTimersByTimeAsync(250);

      await expect(running).resolves.toBe('revoked');
      expect(provider.revoked).toEqual(['u-refresh-2']);
      expect(store.items.has('u')).toBe(false);
    });

    it(`gives up with RefreshInProgressError after ${MAX_LEASE_WAIT_MS} ms, having changed nothing`, async () => {
      store.seed(activeRecord('u', { leaseOwner: 'refresher', leaseUntil: Date.now() + 60_000 }));
      const before = store.raw('u');
      const running = disconnectUser('u', deps()).catch((e: unknown) => e);
      let settled = false;
      void running.finally(() => (settled = true));

      await jest.advanceTimersByTimeAsync(MAX_LEASE_WAIT_MS - 1);
      expect(settled).toBe(false);
      await jest.advanceTimersByTimeAsync(1);

      expect(settled).toBe(true);
      const error = await running;
      expect(error).toBeInstanceOf(RefreshInProgressError);
      expect(error).toMatchObject({
        code: 'REFRESH_IN_PROGRESS',
        message: 'a refresh for user "u" is in progress; try again',
      });
      expect(provider.total()).toBe(0);
      expect(store.raw('u')).toEqual(before);
    });
  });

  describe('without revoking', () => {
    it('deletes the tokens without a lease or a provider, says not-revocable and warns the grant is live', async () => {
      store.seed(activeRecord('u'));

      const outcome = await disconnectUser(
        'u',
        deps(() => undefined),
      );

      expect(outcome).toBe('not-revocable');
      expect(store.items.has('u')).toBe(false);
      expect(store.calls).toEqual(['delete:u']);
      expect(deletes).toEqual([{ withRefreshToken: false }]);
      expect(logged()).toEqual([
        expect.objectContaining({
          level: 'WARN',
          message: 'tokens deleted without revoking the grant; it is still live at the provider',
          userId: 'u',
        }),
      ]);
      expectNoTokenInLogs();
    });

    it('with force, deletes without even building the provider client, and says forced', async () => {
      store.seed(activeRecord('u'));

      const outcome = await disconnectUser('u', deps(), { force: true });

      expect(outcome).toBe('forced');
      expect(revokerBuilt).toBe(0);
      expect(provider.total()).toBe(0);
      expect(store.items.has('u')).toBe(false);
      expect(store.calls).toEqual(['delete:u']);
    });

    it.each<[string, { force?: boolean }, () => FakeProvider | undefined]>([
      ['with force', { force: true }, () => provider],
      ['with no way to revoke', {}, () => undefined],
    ])('throws UnknownUserError %s for a user with no tokens', async (_how, options, revoker) => {
      await expect(disconnectUser('nobody', deps(revoker), options)).rejects.toThrow(new UnknownUserError('nobody'));

      expect(provider.total()).toBe(0);
      expect(logs.lines).toEqual([]);
    });
  });
});
