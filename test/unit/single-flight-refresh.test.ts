/**
 * The refresher's rules, fast: the real flow over the in-memory token store (same conditions as
 * DynamoDB, see test/integration/token-store-contract.test.ts), a scripted provider and a clock the
 * test moves. The same behaviours run against DynamoDB Local and the sandbox in
 * test/integration/refresh.test.ts; these cover the timing and interleavings real parts cannot be
 * made to produce on demand.
 */
import {
  ConfigError,
  InvalidGrantError,
  LeaseLostError,
  ProviderResponseError,
  ProviderUnavailableError,
  ReauthRequiredError,
  RefreshInProgressError,
  UnknownUserError,
} from '../../functions/core/errors';
import { DEFAULT_REFRESH_TIMEOUT_MS, MAX_LEASE_WAIT_MS, refreshLeaseMs } from '../../functions/core/budget';
import { reauthDeleteAfter, scheduleAfterTokens, type TokenSet } from '../../functions/core/tokens';
import { createTokenRefresher, type RefreshDeps } from '../../functions/flows/single-flight-refresh';
import { FakeProvider, RecordingEvents } from '../support/fakes';
import { captureLogger } from '../support/logs';
import { activeRecord, MemoryTokenStore } from '../support/memory-token-store';
import { settle, within } from '../support/async';

const T0 = 1_000_000;
const SCOPE = 'product.compact profile.compact';

let clockMs: number;
let store: MemoryTokenStore;
let provider: FakeProvider;
let events: RecordingEvents;
let logs: ReturnType<typeof captureLogger>;

function refresher(overrides: Partial<RefreshDeps> = {}) {
  return createTokenRefresher({
    tokens: store,
    client: provider,
    events,
    logger: logs.logger,
    nowMs: () => clockMs,
    owner: 'proc',
    ...overrides,
  });
}

/** A promise the test resolves later, to hold a provider call open. */
function gate<T = void>(): { promise: Promise<T>; open(value: T): void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
/** The default lease: one refresh's whole budget (core/budget.ts), about 50 s. */
const LEASE_MS = refreshLeaseMs(DEFAULT_REFRESH_TIMEOUT_MS);

/** Another process's refresh, landing while this one waits: it holds the lease and writes `tokens`. */
const theirRefresh = (userId: string, version: number, tokens: TokenSet, owner = 'other') =>
  store.saveRefresh({ userId, owner, version, tokens, now: T0, nextRefreshAt: tokens.expiresAt });
const logged = (message: string) => logs.lines.map((l) => JSON.parse(l)).filter((l) => l.message === message);

beforeEach(() => {
  clockMs = T0 * 1000;
  store = new MemoryTokenStore();
  provider = new FakeProvider();
  provider.now = T0;
  events = new RecordingEvents();
  logs = captureLogger();
});

describe('Function: createTokenRefresher', () => {
  describe('Method: getAccessToken (fresh tokens)', () => {
    it('returns the stored token without a lease or a provider call while it outlives the margin', async () => {
      store.seed(activeRecord('u', { tokensIssuedAt: T0, expiresAt: T0 + 301 }));

      const token = await refresher().getAccessToken('u');

      expect(token).toEqual({
        userId: 'u',
        accessToken: 'u-access-1',
        expiresAt: T0 + 301,
        scope: SCOPE,
        tokenType: 'bearer',
      });
      expect(store.calls).toEqual(['get:u']);
      expect(provider.total()).toBe(0);
    });

    it('refreshes a token with exactly the default margin (300 s) left', async () => {
      store.seed(activeRecord('u', { tokensIssuedAt: T0 - 1500, expiresAt: T0 + 300 }));

      const token = await refresher().getAccessToken('u');

      expect(token.accessToken).toBe('access-1');
      expect(provider.calls.refresh).toBe(1);
    });

    it('uses the margin it is given', async () => {
      store.seed(
        activeRecord('a', { tokensIssuedAt: T0 - 1199, expiresAt: T0 + 601 }),
        activeRecord('b', { tokensIssuedAt: T0 - 1200, expiresAt: T0 + 600 }),
      );
      const r = refresher();

      expect((await r.getAccessToken('a', { marginSeconds: 600 })).accessToken).toBe('a-access-1');
      expect((await r.getAccessToken('b', { marginSeconds: 600 })).accessToken).toBe('access-1');
      expect(provider.refreshed).toEqual([{ refreshToken: 'b-refresh-1', scope: SCOPE }]);
    });

    it('throws UnknownUserError for a user with no tokens, without calling the provider', async () => {
      await expect(refresher().getAccessToken('nobody')).rejects.toThrow(new UnknownUserError('nobody'));
      expect(provider.total()).toBe(0);
    });

    it('throws ReauthRequiredError with the stored reason for a dead grant, without calling the provider', async () => {
      store.seed(activeRecord('u', { status: 'reauth_required', statusReason: 'invalid_grant', expiresAt: T0 - 1 }));

      const error = await refresher()
        .getAccessToken('u')
        .catch((e: unknown) => e);

      expect(error).toBeInstanceOf(ReauthRequiredError);
      expect(error).toMatchObject({ code: 'REAUTH_REQUIRED', userId: 'u', reason: 'invalid_grant' });
      expect(provider.total()).toBe(0);
    });
  });

  describe('Method: getAccessToken (refresh)', () => {
    it('stores the rotated pair under the next version, clears the lease and says so without the tokens', async () => {
      store.seed(activeRecord('u', { tokensIssuedAt: T0 - 1700, expiresAt: T0 + 100, consecutiveFailures: 2 }));

      const token = await refresher().getAccessToken('u');

      expect(token).toEqual({
        userId: 'u',
        accessToken: 'access-1',
        expiresAt: T0 + 1800,
        scope: SCOPE,
        tokenType: 'bearer',
      });
      expect(provider.refreshed).toEqual([{ refreshToken: 'u-refresh-1', scope: SCOPE }]);
      expect(store.raw('u')).toMatchObject({
        accessToken: 'access-1',
        refreshToken: 'refresh-1',
        version: 2,
        consecutiveFailures: 0,
        lastRefreshAt: T0,
        tokensIssuedAt: T0,
        nextRefreshAt: T0 + 1800,
      });
      expect(store.raw('u')?.leaseOwner).toBeUndefined();
      // The save drops the lease with it: no separate release write.
      expect(store.calls).toEqual(['get:u', 'acquireLease:u', 'saveRefresh:u']);
      expect(logged('tokens refreshed')).toEqual([expect.objectContaining({ userId: 'u', rotated: true })]);
      expect(logs.text()).not.toMatch(/access-1|refresh-1/);
      // Below the failure threshold before, so nothing to announce.
      expect(events.published).toEqual([]);
    });

    it('keeps the stored refresh token when the response carries none', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      provider.onRefresh = async () => provider.issue({ refreshToken: undefined });

      await refresher().getAccessToken('u');

      expect(store.raw('u')).toMatchObject({ accessToken: 'access-1', refreshToken: 'u-refresh-1', version: 2 });
      expect(logged('tokens refreshed')).toEqual([expect.objectContaining({ rotated: false })]);
    });

    it('refreshes a fresh token when forced, once the tokens are older than the minimum interval', async () => {
      store.seed(activeRecord('u', { tokensIssuedAt: T0 - 60, expiresAt: T0 + 1740 }));

      const token = await refresher().getAccessToken('u', { forceRefresh: true });

      expect(token.accessToken).toBe('access-1');
      expect(provider.calls.refresh).toBe(1);
    });

    it('lets ten concurrent calls through one refresher make exactly one provider call', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      const held = gate();
      provider.onRefresh = async () => {
        await held.promise;
        return provider.issue();
      };
      const shared = refresher({ maxWaitMs: 10_000 });

      const calls = Array.from({ length: 10 }, () => shared.getAccessToken('u'));
      await settle();
      held.open();
      const tokens = await within(Promise.all(calls), 10_000);

      expect(new Set(tokens.map((t) => t.accessToken))).toEqual(new Set(['access-1']));
      expect(provider.calls.refresh).toBe(1);
    });
  });

  describe('Method: getAccessToken (waiting for another process)', () => {
    it('holds its lease for a whole refresh budget by default, so a slow provider call is never doubled', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      const held = gate();
      provider.onRefresh = async () => {
        await held.promise;
        return provider.issue();
      };
      const first = refresher().getAccessToken('u');
      await settle();
      // The provider call's timeout, every write attempt and a safety margin: about 52 s.
      expect(LEASE_MS).toBeGreaterThan(DEFAULT_REFRESH_TIMEOUT_MS + 18_000);
      expect(store.raw('u')?.leaseUntil).toBe(T0 * 1000 + LEASE_MS);
      // Its own owner id per call, under the process's prefix.
      expect(store.raw('u')?.leaseOwner).toMatch(/^proc:[0-9a-f-]{36}$/);

      clockMs += LEASE_MS - 1; // the first call is still at work, past its provider timeout and retries
      const second = refresher({ maxWaitMs: 0 }).getAccessToken('u');

      await expect(within(second, 2000)).rejects.toBeInstanceOf(RefreshInProgressError);
      expect(provider.calls.refresh).toBe(1);
      held.open();
      await expect(first).resolves.toMatchObject({ accessToken: 'access-1' });
    });

    it('refuses a lease shorter than one refresh budget', () => {
      expect(() => refresher({ leaseMs: LEASE_MS - 1 })).toThrow(ConfigError);
      expect(() => refresher({ refreshTimeoutMs: 25_000, leaseMs: LEASE_MS })).toThrow(
        /the refresh lease \(\d+ ms\) must outlast one refresh's whole budget/,
      );
    });

    it('waits 12 s for another process by default', () => {
      expect(MAX_LEASE_WAIT_MS).toBe(12_000);
    });

    it('takes over a lease that has expired (its holder died)', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1, leaseOwner: 'dead', leaseUntil: T0 * 1000 - 1 }));

      const token = await refresher({ maxWaitMs: 0 }).getAccessToken('u');

      expect(token.accessToken).toBe('access-1');
    });

    it('gives up with RefreshInProgressError once it has waited maxWaitMs, without calling the provider', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1, leaseOwner: 'other', leaseUntil: T0 * 1000 + 60_000 }));
      // Every look at the clock moves it 250 ms on: the 1 s wait is over after a retry or two.
      const moving = () => (clockMs += 250);

      const error = await within(
        refresher({ nowMs: moving, maxWaitMs: 1000 })
          .getAccessToken('u')
          .catch((e: unknown) => e),
        5000,
      );

      expect(error).toBeInstanceOf(RefreshInProgressError);
      expect(error).toMatchObject({
        code: 'REFRESH_IN_PROGRESS',
        message: 'a refresh for user "u" is in progress; try again',
      });
      expect(provider.total()).toBe(0);
      expect(store.raw('u')).toMatchObject({ leaseOwner: 'other', leaseUntil: T0 * 1000 + 60_000 });
    });

    it('waits for the other process and returns what it stored', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1, leaseOwner: 'other', leaseUntil: T0 * 1000 + 60_000 }));
      const reading = refresher({ maxWaitMs: 10_000 }).getAccessToken('u');
      await settle();

      await theirRefresh('u', 1, provider.issue({ accessToken: 'theirs' }));

      await expect(within(reading, 5000)).resolves.toMatchObject({ accessToken: 'theirs' });
      expect(provider.calls.refresh).toBe(0);
    });

    it("counts another process's refresh as the forced refresh it asked for", async () => {
      store.seed(
        activeRecord('u', {
          tokensIssuedAt: T0 - 3600,
          expiresAt: T0 + 1800,
          leaseOwner: 'other',
          leaseUntil: T0 * 1000 + 60_000,
        }),
      );
      const reading = refresher({ maxWaitMs: 10_000 }).getAccessToken('u', { forceRefresh: true });
      await settle();

      await theirRefresh('u', 1, provider.issue({ accessToken: 'theirs' }));

      await expect(within(reading, 5000)).resolves.toMatchObject({ accessToken: 'theirs' });
      expect(provider.calls.refresh).toBe(0);
    });

    it('lets a store failure other than a lost race through at once', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      store.acquireLease = async () => {
        throw new Error('DynamoDB is unavailable');
      };

      await expect(refresher().getAccessToken('u')).rejects.toThrow('DynamoDB is unavailable');
      expect(provider.total()).toBe(0);
    });
  });

  describe('Method: getAccessToken (a login during the refresh)', () => {
    it("returns the login's tokens instead of failing when a login replaced them mid-refresh", async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      provider.onRefresh = async () => {
        const tokens = {
          accessToken: 'from-login',
          refreshToken: 'login-refresh',
          tokenType: 'bearer',
          scope: SCOPE,
          expiresAt: T0 + 1800,
        };
        const schedule = scheduleAfterTokens('u', tokens, T0);
        await store.saveLogin({ userId: 'u', profileId: 'u', tokens, now: T0, schedule, boundBy: 'public' });
        return provider.issue();
      };

      const token = await refresher().getAccessToken('u');

      expect(token.accessToken).toBe('from-login');
      expect(store.raw('u')).toMatchObject({ accessToken: 'from-login', refreshToken: 'login-refresh', version: 2 });
      expect(provider.calls.refresh).toBe(1);
      // The lost race is not retried (the newer tokens win): a warning that says why, no error.
      expect(store.calls.filter((c) => c === 'saveRefresh:u')).toHaveLength(1);
      expect(logs.lines.map((l) => JSON.parse(l)).filter((l) => l.errorCode === 'ROTATED_TOKEN_NOT_SAVED')).toEqual([
        expect.objectContaining({ level: 'WARN', why: 'item_changed', rotated: true }),
      ]);
    });

    it("returns the new holder's tokens when another process took the lease over mid-refresh", async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      provider.onRefresh = async () => {
        // This call overran its lease: another process took it over, and stores its refresh a
        // little later (while this one, refused, waits for it).
        await store.acquireLease('u', 'other', clockMs + LEASE_MS + 1, LEASE_MS);
        const theirs = provider.issue({ accessToken: 'theirs' });
        setTimeout(() => void theirRefresh('u', 1, theirs), 20);
        return provider.issue();
      };

      const token = await within(refresher().getAccessToken('u'), 5000);

      expect(token.accessToken).toBe('theirs');
      expect(store.raw('u')).toMatchObject({ accessToken: 'theirs', version: 2 });
      expect(store.raw('u')?.leaseOwner).toBeUndefined();
      expect(logs.lines.map((l) => JSON.parse(l)).filter((l) => l.errorCode === 'ROTATED_TOKEN_NOT_SAVED')).toEqual([
        expect.objectContaining({ level: 'ERROR', why: 'lease_lost' }),
      ]);
    });

    it('is refused with LeaseLostError by the store when the lease was taken over (the fence it relies on)', async () => {
      store.seed(activeRecord('u', { leaseOwner: 'new', leaseUntil: T0 * 1000 + 1 }));

      await expect(theirRefresh('u', 1, provider.issue(), 'old')).rejects.toBeInstanceOf(LeaseLostError);
    });
  });

  describe('Method: getAccessToken (refusals and outages)', () => {
    it('marks a refused grant reauth_required after one attempt, says so once, and never asks again', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      provider.onRefresh = async () => {
        throw new InvalidGrantError('the token endpoint refused the grant ("invalid_grant")');
      };
      const r = refresher();

      const error = await r.getAccessToken('u').catch((e: unknown) => e);
      await expect(r.getAccessToken('u')).rejects.toBeInstanceOf(ReauthRequiredError);

      expect(error).toBeInstanceOf(ReauthRequiredError);
      expect(error).toMatchObject({ userId: 'u', reason: 'invalid_grant' });
      const item = store.raw('u')!;
      expect(item).toMatchObject({
        status: 'reauth_required',
        statusReason: 'invalid_grant',
        version: 2,
        ttl: reauthDeleteAfter(T0),
      });
      expect(item.nextRefreshAt).toBeUndefined();
      expect(item.leaseOwner).toBeUndefined();
      expect(provider.calls.refresh).toBe(1);
      expect(events.published).toEqual([
        {
          type: 'token.reauth_required',
          detail: { userId: 'u', profileId: 'u', at: iso(T0), reason: 'invalid_grant' },
        },
      ]);
      expect(logged('grant refused by the provider; user must sign in again')).toHaveLength(1);
    });

    it('still reports the dead grant when the event cannot be published', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      provider.onRefresh = async () => {
        throw new InvalidGrantError('refused');
      };
      events.failing = true;

      await expect(refresher().getAccessToken('u')).rejects.toBeInstanceOf(ReauthRequiredError);

      expect(store.raw('u')?.status).toBe('reauth_required');
      expect(logged('could not publish event')).toEqual([
        expect.objectContaining({ level: 'ERROR', event: 'token.reauth_required', userId: 'u' }),
      ]);
    });

    it('keeps the grant through an outage: the same error, the failure recorded, the next try pushed back', async () => {
      store.seed(activeRecord('u', { tokensIssuedAt: T0 - 1800, expiresAt: T0 - 1 }));
      const outage = new ProviderUnavailableError('the token endpoint answered with status 503');
      provider.onRefresh = async () => {
        throw outage;
      };

      await expect(refresher().getAccessToken('u')).rejects.toBe(outage);

      expect(store.raw('u')).toMatchObject({
        status: 'active',
        refreshToken: 'u-refresh-1',
        version: 1,
        consecutiveFailures: 1,
        lastRefreshError: 'unavailable',
        lastRefreshAt: T0,
        nextRefreshAt: T0 + 60,
      });
      expect(store.raw('u')?.leaseOwner).toBeUndefined();
      expect(logged('refresh failed; the grant is kept and retried later')).toEqual([
        expect.objectContaining({ level: 'WARN', userId: 'u', failures: 1 }),
      ]);
    });

    it.each([
      ['an OAuth error', new ProviderResponseError('bad', { oauthError: 'server_error' }), 'server_error'],
      ['an unreadable answer', new ProviderResponseError('bad'), 'bad_response'],
    ])('turns %s into a typed "try again later", recording why', async (_name, failure, reason) => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      provider.onRefresh = async () => {
        throw failure;
      };

      const error = await refresher()
        .getAccessToken('u')
        .catch((e: unknown) => e);

      expect(error).toBeInstanceOf(ProviderUnavailableError);
      expect(error).toMatchObject({
        message: 'the provider could not refresh the token; try again later',
        cause: failure,
      });
      expect(store.raw('u')?.lastRefreshError).toBe(reason);
    });

    it('records an unexpected failure as such and lets it through as it is', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      const failure = new TypeError('boom');
      provider.onRefresh = async () => {
        throw failure;
      };

      await expect(refresher().getAccessToken('u')).rejects.toBe(failure);
      expect(store.raw('u')).toMatchObject({ lastRefreshError: 'unexpected', consecutiveFailures: 1 });
      expect(store.raw('u')?.leaseOwner).toBeUndefined();
    });

    it('publishes refresh_failed once, at the third failure in a row, and recovered after the next success', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      provider.onRefresh = async () => {
        throw new ProviderUnavailableError('down');
      };
      const r = refresher();

      for (let i = 1; i <= 4; i++) {
        await expect(r.getAccessToken('u')).rejects.toBeInstanceOf(ProviderUnavailableError);
        expect(store.raw('u')?.consecutiveFailures).toBe(i);
      }
      provider.onRefresh = async () => provider.issue();
      await r.getAccessToken('u');

      expect(events.published).toEqual([
        {
          type: 'token.refresh_failed',
          detail: { userId: 'u', profileId: 'u', at: iso(T0), reason: 'unavailable', consecutiveFailures: 3 },
        },
        { type: 'token.recovered', detail: { userId: 'u', profileId: 'u', at: iso(T0) } },
      ]);
    });

    it('publishes recovered after a success that ends exactly three failures in a row', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1, consecutiveFailures: 3 }));

      await refresher().getAccessToken('u');

      expect(events.published.map((e) => e.type)).toEqual(['token.recovered']);
    });

    it('uses the failure threshold it is given', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1, consecutiveFailures: 1 }));
      provider.onRefresh = async () => {
        throw new ProviderUnavailableError('down');
      };

      await expect(refresher({ failureEventThreshold: 2 }).getAccessToken('u')).rejects.toThrow('down');

      expect(events.published.map((e) => e.type)).toEqual(['token.refresh_failed']);
    });
  });

  describe('Method: getAccessToken (storing the rotated token)', () => {
    /** Runs `body` with its waits between attempts (250 ms, 500 ms) skipped by jest's fake timers. */
    async function withFakeTimers<T>(body: () => Promise<T>): Promise<T> {
      jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
      try {
        const settled = body().then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        );
        await jest.runAllTimersAsync();
        const outcome = await settled;
        if ('error' in outcome) throw outcome.error;
        return outcome.value;
      } finally {
        jest.useRealTimers();
      }
    }

    /** Makes the first `count` saves fail as a DynamoDB outage would; counts every save. */
    function failSaves(count: number, error: Error = new Error('service unavailable')) {
      const save = store.saveRefresh.bind(store);
      const attempts = { n: 0, at: [] as number[] };
      let first: number | undefined;
      store.saveRefresh = async (...args) => {
        attempts.n++;
        first ??= Date.now();
        attempts.at.push(Date.now() - first);
        if (attempts.n <= count) throw error;
        return save(...args);
      };
      return attempts;
    }

    it('tries the write again, so a brief outage does not lose the only valid refresh token', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      const attempts = failSaves(2);

      const token = await withFakeTimers(() => refresher().getAccessToken('u'));

      expect(attempts.n).toBe(3);
      // 250 ms, then 500 ms between attempts: all inside the lease's write budget.
      expect(attempts.at).toEqual([0, 250, 750]);
      expect(token.accessToken).toBe('access-1');
      expect(store.raw('u')?.refreshToken).toBe('refresh-1');
      expect(logs.text()).not.toContain('ROTATED_TOKEN_NOT_SAVED');
    });

    it('gives up after the fifth failed write of an unknown failure, saying so with a stable code', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1 }));
      const attempts = failSaves(5);

      await expect(withFakeTimers(() => refresher().getAccessToken('u'))).rejects.toThrow('service unavailable');

      expect(attempts.n).toBe(5);
      expect(logged('refreshed tokens could not be stored; the user may have to sign in again')).toEqual([
        expect.objectContaining({ level: 'ERROR', errorCode: 'ROTATED_TOKEN_NOT_SAVED', userId: 'u' }),
      ]);
    });
  });

  describe('Method: refreshIfDue (the scheduled refresher)', () => {
    it('goes straight to the lease, and says "refreshed" for a user due by the given time', async () => {
      // An idle grant: the token outlives the margin, but its daily refresh is due.
      store.seed(activeRecord('u', { tokensIssuedAt: T0 - 86_400, expiresAt: T0 + 7200, nextRefreshAt: T0 }));

      const outcome = await refresher().refreshIfDue('u', { marginSeconds: 600, dueBy: T0 + 600 });

      expect(outcome).toBe('refreshed');
      expect(store.calls[0]).toBe('acquireLease:u');
      expect(store.calls).not.toContain('get:u');
      expect(store.raw('u')?.tokensIssuedAt).toBe(T0);
    });

    it('says "fresh" and releases the lease when another process already refreshed the user', async () => {
      store.seed(activeRecord('u', { tokensIssuedAt: T0, expiresAt: T0 + 1800, nextRefreshAt: T0 + 1800, version: 3 }));

      const outcome = await refresher().refreshIfDue('u', { marginSeconds: 600, dueBy: T0 + 600 });

      expect(outcome).toBe('fresh');
      expect(provider.total()).toBe(0);
      expect(store.raw('u')?.leaseOwner).toBeUndefined();
      expect(store.calls).toEqual(['acquireLease:u', 'releaseLease:u']);
    });

    it('releases the lease of a user whose grant is gone', async () => {
      store.seed(activeRecord('u', { status: 'reauth_required', statusReason: 'invalid_grant', nextRefreshAt: T0 }));

      await expect(refresher().refreshIfDue('u', { marginSeconds: 600, dueBy: T0 + 600 })).rejects.toBeInstanceOf(
        ReauthRequiredError,
      );

      expect(store.raw('u')?.leaseOwner).toBeUndefined();
      expect(provider.total()).toBe(0);
    });

    it("refreshes a user due exactly at the run's horizon", async () => {
      store.seed(activeRecord('u', { tokensIssuedAt: T0, expiresAt: T0 + 7200, nextRefreshAt: T0 + 600 }));

      await expect(refresher().refreshIfDue('u', { marginSeconds: 600, dueBy: T0 + 600 })).resolves.toBe('refreshed');
    });

    it('after waiting for another process, re-reads what it wrote instead of taking the lease again', async () => {
      store.seed(
        activeRecord('u', {
          expiresAt: T0 - 1,
          nextRefreshAt: T0,
          leaseOwner: 'other',
          leaseUntil: T0 * 1000 + 60_000,
        }),
      );
      const running = refresher({ maxWaitMs: 10_000 }).refreshIfDue('u', { marginSeconds: 600, dueBy: T0 + 600 });
      await settle();
      await theirRefresh('u', 1, provider.issue());
      store.calls.length = 0;

      await expect(within(running, 5000)).resolves.toBe('fresh');

      expect(store.calls).toEqual(['get:u']);
    });

    it('throws UnknownUserError for a user deleted since the index was read', async () => {
      await expect(refresher().refreshIfDue('gone', { marginSeconds: 600, dueBy: T0 })).rejects.toBeInstanceOf(
        UnknownUserError,
      );
    });
  });
});
