/**
 * The refresher when DynamoDB is throttled or unavailable (issue: faults survived, and said clearly),
 * fast, on the in-memory store with faults scripted per method and a clock that moves with the fake
 * timers. The same behaviours run against DynamoDB Local behind the fault proxy in
 * test/integration/faults.test.ts; these pin the timing rules those cannot reach on demand: how long
 * a rotated pair is retried, what a reader hears when the store stays down, and that the lease is
 * always dropped.
 */
import {
  DEFAULT_REFRESH_TIMEOUT_MS,
  DYNAMODB_CALL_BUDGET_MS,
  LEASE_SAFETY_MS,
  MAX_LEASE_WAIT_MS,
  refreshLeaseMs,
  SAVE_BACKOFF_MS,
} from '../../functions/core/budget';
import { InvalidGrantError, ProviderUnavailableError, StoreUnavailableError } from '../../functions/core/errors';
import type { TokenStore } from '../../functions/adapters/token-store';
import { createTokenRefresher } from '../../functions/flows/single-flight-refresh';
import { FakeProvider, RecordingEvents } from '../support/fakes';
import { captureLogger } from '../support/logs';
import { activeRecord, MemoryTokenStore } from '../support/memory-token-store';

const T0 = 1_000_000;
const LEASE_MS = refreshLeaseMs(DEFAULT_REFRESH_TIMEOUT_MS);

let store: MemoryTokenStore;
let provider: FakeProvider;
let logs: ReturnType<typeof captureLogger>;

const throttled = (operation: string) =>
  new StoreUnavailableError(`DynamoDB ${operation} failed: throttled (ProvisionedThroughputExceededException)`, {
    operation,
    retryAfterSeconds: 1,
  });

/**
 * Makes `method` of the store fail with a throttled DynamoDB `times` times (Infinity: always), then
 * behave; records when (ms after the first call) each call came.
 */
function throttle<K extends keyof TokenStore>(method: K, times: number) {
  const real = (store[method] as (...args: unknown[]) => Promise<unknown>).bind(store);
  const calls = { n: 0, at: [] as number[] };
  (store as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
    calls.n++;
    calls.at.push(Date.now() - T0 * 1000);
    if (calls.n <= times) throw throttled(method);
    return real(...args);
  };
  return calls;
}

const refresher = () =>
  createTokenRefresher({
    tokens: store,
    client: provider,
    events: new RecordingEvents(),
    logger: logs.logger,
    nowMs: () => Date.now(),
    owner: 'proc',
  });

/** Runs `body` with fake timers (the clock moves with them) and settles it. */
async function run<T>(body: () => Promise<T>): Promise<{ value?: T; error?: unknown }> {
  jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'], now: T0 * 1000 });
  try {
    const settled = body().then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    await jest.runAllTimersAsync();
    return await settled;
  } finally {
    jest.useRealTimers();
  }
}

const logged = (errorCode: string) =>
  logs.lines.map((line) => JSON.parse(line)).filter((line) => line.errorCode === errorCode);

beforeEach(() => {
  store = new MemoryTokenStore();
  provider = new FakeProvider();
  provider.now = T0;
  logs = captureLogger();
});

describe('Function: createTokenRefresher, with DynamoDB throttled', () => {
  describe('the rotated pair (the dangerous window)', () => {
    it('keeps trying to store it past the five reserved tries, and stores it: nothing presented twice, nobody signed out', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      const saves = throttle('saveRefresh', 8);

      const { value, error } = await run(() => refresher().getAccessToken('u'));

      expect(error).toBeUndefined();
      expect(value?.accessToken).toBe('access-1');
      expect(saves.n).toBe(9);
      expect(provider.calls.refresh).toBe(1);
      expect(store.raw('u')).toMatchObject({ refreshToken: 'refresh-1', status: 'active' });
      expect(store.raw('u')?.leaseOwner).toBeUndefined();
      expect(logged('ROTATED_TOKEN_SAVE_RETRY')).toHaveLength(8);
      expect(logged('ROTATED_TOKEN_SAVE_RETRY')[0]).toMatchObject({
        level: 'WARN',
        message: 'refreshed tokens not stored yet; trying again while the lease holds',
        attempt: 1,
      });
      expect(logged('ROTATED_TOKEN_NOT_SAVED')).toEqual([]);
    });

    it('gives up only when the lease has no room left for one more whole write, and says so once', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      const saves = throttle('saveRefresh', Infinity);

      const { error } = await run(() => refresher().getAccessToken('u'));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error).toMatchObject({ code: 'STORE_UNAVAILABLE', retryable: true });
      // Far more than the five reserved tries: the whole lease was used...
      expect(saves.n).toBeGreaterThan(10);
      // ...but no write started that could outlast the lease (less its safety margin).
      expect(Math.max(...saves.at)).toBeLessThanOrEqual(LEASE_MS - LEASE_SAFETY_MS - DYNAMODB_CALL_BUDGET_MS);
      expect(provider.calls.refresh).toBe(1);
      expect(logged('ROTATED_TOKEN_NOT_SAVED')).toEqual([
        expect.objectContaining({ level: 'ERROR', why: 'write_failed', rotated: true, attempts: saves.n }),
      ]);
      // Left to run out, not dropped: the last try may still land, and must not be refused for it.
      expect(store.raw('u')?.leaseOwner).toMatch(/^proc:/);
    });

    it('starts no try, not even a reserved one, that could outlast the lease after a slow provider call', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      const saves = throttle('saveRefresh', Infinity);
      // Room left for the first write only.
      const slow = LEASE_MS - LEASE_SAFETY_MS - DYNAMODB_CALL_BUDGET_MS - 100;
      provider.onRefresh = async () => {
        await new Promise((resolve) => setTimeout(resolve, slow));
        return provider.issue();
      };

      const { error } = await run(() => refresher().getAccessToken('u'));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(saves.n).toBe(1);
      expect(Math.max(...saves.at)).toBeLessThanOrEqual(LEASE_MS - LEASE_SAFETY_MS - DYNAMODB_CALL_BUDGET_MS);
    });

    it('stops at one try per back-off slot of the lease even when the clock does not move', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      const saves = throttle('saveRefresh', Infinity);
      const stuck = createTokenRefresher({
        tokens: store,
        client: provider,
        events: new RecordingEvents(),
        logger: logs.logger,
        nowMs: () => T0 * 1000,
        owner: 'proc',
      });

      const { error } = await run(() => stuck.getAccessToken('u'));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(saves.n).toBe(Math.ceil(LEASE_MS / SAVE_BACKOFF_MS));
    });

    it('stops after the five reserved tries for a failure that is not a dependency that may recover', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      const real = store.saveRefresh.bind(store);
      let n = 0;
      store.saveRefresh = async (...args) => {
        n++;
        if (n < 10) throw new Error('a bug');
        return real(...args);
      };

      const { error } = await run(() => refresher().getAccessToken('u'));

      expect(error).toMatchObject({ message: 'a bug' });
      expect(n).toBe(5);
    });
  });

  describe('reads and the lease', () => {
    it('reads again within the wait when a read is throttled, and answers from the store', async () => {
      store.seed(activeRecord('u', { tokensIssuedAt: T0, expiresAt: T0 + 1800 }));
      const reads = throttle('get', 3);

      const { value } = await run(() => refresher().getAccessToken('u'));

      expect(value?.accessToken).toBe('u-access-1');
      expect(reads.n).toBe(4);
      expect(provider.calls.refresh).toBe(0);
    });

    it('ends in the retryable StoreUnavailableError, not REFRESH_IN_PROGRESS, when reads stay throttled past the wait', async () => {
      store.seed(activeRecord('u', { tokensIssuedAt: T0, expiresAt: T0 + 1800 }));
      const reads = throttle('get', Infinity);

      const { error } = await run(() => refresher().getAccessToken('u'));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error).toMatchObject({ retryable: true, retryAfterSeconds: 1, dependency: 'dynamodb' });
      expect(reads.n).toBeGreaterThan(3);
      expect(Math.max(...reads.at)).toBeLessThanOrEqual(MAX_LEASE_WAIT_MS + 1000);
      expect(provider.calls.refresh).toBe(0);
    });

    it('tries a throttled lease again and refreshes once', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      const leases = throttle('acquireLease', 2);

      const { value } = await run(() => refresher().getAccessToken('u'));

      expect(value?.accessToken).toBe('access-1');
      expect(leases.n).toBe(3);
      expect(provider.calls.refresh).toBe(1);
    });

    it('answers with what it found when even dropping the lease is throttled (the lease then runs out by itself)', async () => {
      // Refreshed by another process meanwhile: this call takes the lease, finds the token fresh, drops it.
      store.seed(activeRecord('u', { tokensIssuedAt: T0, expiresAt: T0 + 1800, nextRefreshAt: T0 }));
      throttle('releaseLease', Infinity);

      const { value, error } = await run(() => refresher().refreshIfDue('u', { marginSeconds: 60, dueBy: T0 - 1 }));

      expect(error).toBeUndefined();
      expect(value).toBe('fresh');
      expect(logged('LEASE_NOT_RELEASED')).toEqual([
        expect.objectContaining({ level: 'WARN', message: 'could not drop the refresh lease; it runs out by itself' }),
      ]);
    });

    it('drops the lease with the recorded failure itself: one write, no separate release', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      provider.onRefresh = async () => {
        throw new ProviderUnavailableError('Kroger answered 503');
      };

      await run(() => refresher().getAccessToken('u'));

      expect(store.calls).toEqual(['get:u', 'acquireLease:u', 'recordFailure:u']);
      expect(store.raw('u')?.leaseOwner).toBeUndefined();
    });

    it('drops the lease with the re-auth mark itself: one write, no separate release', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      provider.onRefresh = async () => {
        throw new InvalidGrantError('refused', { confirmed: true });
      };

      await run(() => refresher().getAccessToken('u'));

      expect(store.calls).toEqual(['get:u', 'acquireLease:u', 'markReauthRequired:u']);
    });

    it('drops the lease after a failed save when the provider kept the refresh token (nothing lost by dropping it)', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      provider.onRefresh = async () => ({ ...provider.issue(), refreshToken: undefined });
      throttle('saveRefresh', Infinity);

      const { error } = await run(() => refresher().getAccessToken('u'));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(store.raw('u')?.leaseOwner).toBeUndefined();
      expect(store.raw('u')?.refreshToken).toBe('u-refresh-1');
    });

    it('does not read again after a failure that is not the store being unavailable', async () => {
      store.seed(activeRecord('u', { tokensIssuedAt: T0, expiresAt: T0 + 1800 }));
      let reads = 0;
      store.get = async () => {
        reads++;
        throw new Error('a bug');
      };

      const { error } = await run(() => refresher().getAccessToken('u'));

      expect(error).toMatchObject({ message: 'a bug' });
      expect(reads).toBe(1);
    });

    it('drops the lease when the failure it should record cannot be written, and says the store failed', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      provider.onRefresh = async () => {
        throw new ProviderUnavailableError('Kroger answered 503');
      };
      throttle('recordFailure', Infinity);

      const { error } = await run(() => refresher().getAccessToken('u'));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(store.raw('u')?.leaseOwner).toBeUndefined();
      expect(store.raw('u')).toMatchObject({ refreshToken: 'u-refresh-1', status: 'active', consecutiveFailures: 0 });
    });
  });
});
