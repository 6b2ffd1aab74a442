/**
 * The refresher's refusal, mass-refusal and fencing paths, and the limits on what a reader can make
 * it do, fast: the real flow over the in-memory token store and refusal counter (the same conditions
 * as DynamoDB: test/integration/token-store-contract.test.ts, refusal-counter-contract.test.ts), a
 * scripted provider and a clock the test moves. test/integration/refusals.test.ts and fencing.test.ts
 * run the same rules against DynamoDB Local and the sandbox taught to refuse as Kroger does; these
 * pin the exact outcome of each: the error, the stored item, the provider calls, the events, the
 * metric lines and the logs (never a token).
 */
import {
  ClientCredentialsRejectedError,
  ConfigError,
  InvalidGrantError,
  ProviderResponseError,
  ProviderUnavailableError,
  ReauthRequiredError,
  SecretUnavailableError,
} from '../../functions/core/errors';
import { DEFAULT_REFRESH_TIMEOUT_MS, refreshLeaseMs } from '../../functions/core/budget';
import {
  afterTransientFailure,
  reauthDeleteAfter,
  type RefreshPolicy,
  type TokenSet,
} from '../../functions/core/tokens';
import {
  createTokenRefresher,
  HELD_REFUSAL,
  type RefreshDeps,
  UNCONFIRMED_REFUSAL,
} from '../../functions/flows/single-flight-refresh';
import { FakeProvider, RecordingEvents } from '../support/fakes';
import { captureLogger } from '../support/logs';
import { MemoryRefusalCounter } from '../support/memory-refusal-counter';
import { activeRecord, MemoryTokenStore } from '../support/memory-token-store';
import { settle, within } from '../support/async';

const T0 = 1_000_000;
const SCOPE = 'product.compact profile.compact';
const LEASE_MS = refreshLeaseMs(DEFAULT_REFRESH_TIMEOUT_MS);
const ON_READ: RefreshPolicy = { name: 'on-read', keepAliveSeconds: 7 * 86_400 };

let clockMs: number;
let store: MemoryTokenStore;
let provider: FakeProvider;
let events: RecordingEvents;
let counter: MemoryRefusalCounter;
let logs: ReturnType<typeof captureLogger>;

function refresher(overrides: Partial<RefreshDeps> = {}) {
  return createTokenRefresher({
    tokens: store,
    client: provider,
    events,
    logger: logs.logger,
    refusals: counter,
    nowMs: () => clockMs,
    owner: 'proc',
    ...overrides,
  });
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
const entries = () => logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
const logged = (message: string) => entries().filter((l) => l.message === message);
/** The metric lines (CloudWatch EMF) that count `name`. */
const metricLines = (name: string) => entries().filter((l) => l._aws !== undefined && l[name] === 1);
const emf = (name: string) => ({
  Timestamp: clockMs,
  CloudWatchMetrics: [
    { Namespace: 'KrogerTokenBroker', Dimensions: [['function']], Metrics: [{ Name: name, Unit: 'Count' }] },
  ],
});

/** Every refresh is refused with `error`. */
function refuse(error: Error) {
  provider.onRefresh = async () => {
    throw error;
  };
}

/** An expired user, as a login stored it: every read must refresh. */
const expired = (userId = 'u') => activeRecord(userId, { tokensIssuedAt: T0 - 1800, expiresAt: T0 - 1 });

/** A refusal that does not say why: a bare 400. */
const bare400 = () =>
  new InvalidGrantError('the token endpoint refused the refresh (400, no body)', {
    confirmed: false,
    reason: 'http_400 (no body)',
    shape: 'no_body',
  });

/** Kroger's "Missing/Invalid Refresh Token", unmistakably a dead grant. */
const krogerRefusal = () =>
  new InvalidGrantError('the token endpoint refused the grant', {
    reason: 'invalid_request: Missing/Invalid Refresh Token',
    shape: 'invalid_request',
  });

/** No token of the seeded users, and none the provider issued, in any log line. */
function expectNoTokenInLogs() {
  expect(logs.text()).not.toMatch(/-access-1|-refresh-1|"access-\d|"refresh-\d/);
}

beforeEach(() => {
  clockMs = T0 * 1000;
  store = new MemoryTokenStore();
  provider = new FakeProvider();
  provider.now = T0;
  events = new RecordingEvents();
  counter = new MemoryRefusalCounter();
  logs = captureLogger();
});

describe('Function: createTokenRefresher', () => {
  it('refuses a lease shorter than one refresh budget, saying what it would allow', () => {
    expect(() => refresher({ leaseMs: LEASE_MS - 1 })).toThrow(
      new ConfigError(
        `the refresh lease (${LEASE_MS - 1} ms) must outlast one refresh's whole budget (${LEASE_MS} ms), ` +
          'or two processes can present the same single-use refresh token',
      ),
    );
  });

  describe('a refused client (invalid_client)', () => {
    it('keeps the grant exactly as it was, drops the lease, alarms, and tells the reader the operator must act', async () => {
      store.seed(expired());
      const before = store.raw('u');
      const refusal = new ClientCredentialsRejectedError('the provider refused the client credentials', {
        oauthError: 'invalid_client',
        status: 401,
      });
      refuse(refusal);

      await expect(refresher().getAccessToken('u')).rejects.toBe(refusal);

      expect(store.raw('u')).toEqual(before);
      expect(store.calls).toEqual(['get:u', 'acquireLease:u', 'releaseLease:u']);
      expect(provider.calls.refresh).toBe(1);
      expect(events.published).toEqual([]);
      expect(counter.calls).toEqual([]);
      expect(logged("the provider refused the broker's client credentials; every grant is kept")).toEqual([
        expect.objectContaining({ level: 'ERROR', userId: 'u', errorCode: 'PROVIDER_CLIENT_REJECTED' }),
      ]);
      // What ClientRejectedAlarm watches: one EMF count, in the refresher's namespace and dimension.
      expect(metricLines('clientRejected')).toEqual([
        expect.objectContaining({
          level: 'INFO',
          message: 'client credentials refused',
          userId: 'u',
          oauthError: 'invalid_client',
          _aws: emf('clientRejected'),
        }),
      ]);
      expectNoTokenInLogs();
    });

    it('refreshes as before once the client is accepted again', async () => {
      store.seed(expired());
      refuse(new ClientCredentialsRejectedError('refused'));
      const r = refresher();
      await expect(r.getAccessToken('u')).rejects.toBeInstanceOf(ClientCredentialsRejectedError);

      provider.onRefresh = async () => provider.issue();
      const token = await r.getAccessToken('u');

      expect(token.accessToken).toBe('access-1');
      expect(store.raw('u')).toMatchObject({ status: 'active', version: 2, consecutiveFailures: 0 });
      expect(provider.refreshed.map((c) => c.refreshToken)).toEqual(['u-refresh-1', 'u-refresh-1']);
    });
  });

  describe('a refusal that does not say why (a bare 400)', () => {
    it('keeps the grant after the first: a typed "try again", the refusal recorded as unconfirmed', async () => {
      store.seed(expired());
      const refusal = bare400();
      refuse(refusal);

      const error = await refresher()
        .getAccessToken('u')
        .catch((e: unknown) => e);

      expect(error).toBeInstanceOf(ProviderUnavailableError);
      expect(error).toMatchObject({
        message:
          'the provider refused the refresh token without saying why; the next attempt decides whether the user must sign in again',
        cause: refusal,
      });
      const { failures, nextRefreshAt } = afterTransientFailure(expired(), T0);
      expect(store.raw('u')).toEqual({
        ...expired(),
        consecutiveFailures: failures,
        lastRefreshAt: T0,
        lastRefreshError: `${UNCONFIRMED_REFUSAL}: http_400 (no body)`,
        updatedAt: T0,
        nextRefreshAt,
      });
      expect(events.published).toEqual([]);
      // Not yet a verdict: nothing counted towards the mass-refusal guard.
      expect(counter.calls).toEqual([]);
    });

    it('takes the second refusal in a row of the same refresh token as the verdict', async () => {
      store.seed(expired());
      refuse(bare400());
      const r = refresher();

      const first = await r.getAccessToken('u').catch((e: unknown) => e);
      const second = await r.getAccessToken('u').catch((e: unknown) => e);
      const third = await r.getAccessToken('u').catch((e: unknown) => e);

      expect(first).toBeInstanceOf(ProviderUnavailableError);
      expect(second).toBeInstanceOf(ReauthRequiredError);
      expect(second).toMatchObject({ userId: 'u', reason: 'http_400 (no body)' });
      expect(third).toBeInstanceOf(ReauthRequiredError);
      expect(provider.refreshed).toEqual([
        { refreshToken: 'u-refresh-1', scope: SCOPE },
        { refreshToken: 'u-refresh-1', scope: SCOPE },
      ]);
      expect(store.raw('u')).toMatchObject({
        status: 'reauth_required',
        statusReason: 'http_400 (no body)',
        version: 2,
        ttl: reauthDeleteAfter(T0),
      });
      expect(counter.calls).toEqual([{ shape: 'no_body', nowMs: T0 * 1000, windowSeconds: 600 }]);
      expect(logged('grant refused by the provider; user must sign in again')).toEqual([
        expect.objectContaining({ level: 'WARN', userId: 'u', reason: 'http_400 (no body)', confirmed: false }),
      ]);
      expect(events.published).toEqual([
        {
          type: 'token.reauth_required',
          detail: { userId: 'u', profileId: 'u', at: iso(T0), reason: 'http_400 (no body)' },
        },
      ]);
    });

    it('is not confirmed by an earlier failure of another kind', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1, lastRefreshError: 'unavailable', consecutiveFailures: 1 }));
      refuse(bare400());

      await expect(refresher().getAccessToken('u')).rejects.toBeInstanceOf(ProviderUnavailableError);

      expect(store.raw('u')).toMatchObject({
        status: 'active',
        consecutiveFailures: 2,
        lastRefreshError: 'refused_unconfirmed: http_400 (no body)',
      });
    });

    it('takes a bare 400 that the next attempt does not repeat for a fault on the way: the grant is kept', async () => {
      store.seed(expired());
      refuse(bare400());
      const r = refresher();
      await expect(r.getAccessToken('u')).rejects.toBeInstanceOf(ProviderUnavailableError);

      provider.onRefresh = async () => provider.issue();
      const token = await r.getAccessToken('u');

      expect(token.accessToken).toBe('access-1');
      expect(store.raw('u')).toMatchObject({ status: 'active', consecutiveFailures: 0, refreshToken: 'refresh-1' });
      expect(store.raw('u')?.lastRefreshError).toBeUndefined();
    });
  });

  describe('many grants refused the same way (mass-refusal guard)', () => {
    it('marks at most the threshold per window and shape, holds the rest (kept active) and alarms, across processes', async () => {
      store.seed(expired('m-1'), expired('m-2'), expired('m-3'), expired('other'));
      refuse(krogerRefusal());
      const guard = { massRefusal: { threshold: 2, windowSeconds: 600 } };
      // Two processes: only the store and the counter are shared between them.
      const a = refresher({ owner: 'process-a', ...guard });
      const b = refresher({ owner: 'process-b', ...guard });

      const outcomes = [
        await a.getAccessToken('m-1').catch((e: unknown) => e),
        await b.getAccessToken('m-2').catch((e: unknown) => e),
        await b.getAccessToken('m-3').catch((e: unknown) => e),
      ];
      refuse(new InvalidGrantError('refused', { reason: 'invalid_grant', shape: 'invalid_grant' }));
      const otherShape = await a.getAccessToken('other').catch((e: unknown) => e);

      expect(outcomes[0]).toBeInstanceOf(ReauthRequiredError);
      expect(outcomes[1]).toBeInstanceOf(ReauthRequiredError);
      expect(outcomes[2]).toBeInstanceOf(ProviderUnavailableError);
      expect(outcomes[2]).toMatchObject({
        message:
          'the provider refused this grant, but so many grants were refused in a short time that the broker keeps it for now (an operator is alerted)',
        cause: expect.any(InvalidGrantError),
      });
      // Counted on its own: the first of its shape.
      expect(otherShape).toBeInstanceOf(ReauthRequiredError);
      const { failures, nextRefreshAt } = afterTransientFailure(expired('m-3'), T0);
      expect(store.raw('m-3')).toEqual({
        ...expired('m-3'),
        consecutiveFailures: failures,
        lastRefreshAt: T0,
        lastRefreshError: `${HELD_REFUSAL}: invalid_request: Missing/Invalid Refresh Token`,
        updatedAt: T0,
        nextRefreshAt,
      });
      expect(events.published.map((e) => [e.type, e.detail.userId])).toEqual([
        ['token.reauth_required', 'm-1'],
        ['token.reauth_required', 'm-2'],
        ['token.reauth_required', 'other'],
      ]);
      expect(logged('grant refused, but too many grants were refused the same way: the grant is kept')).toEqual([
        expect.objectContaining({
          level: 'ERROR',
          userId: 'm-3',
          errorCode: 'MASS_REFUSAL_HELD',
          shape: 'invalid_request',
          reason: 'invalid_request: Missing/Invalid Refresh Token',
        }),
      ]);
      expect(metricLines('refusalsHeld')).toEqual([
        expect.objectContaining({
          message: 'refusal held',
          userId: 'm-3',
          shape: 'invalid_request',
          _aws: emf('refusalsHeld'),
        }),
      ]);
      expectNoTokenInLogs();
    });

    it('lets a held grant go once the surge is over', async () => {
      store.seed(expired('s-1'), expired('s-2'));
      refuse(krogerRefusal());
      const guard = { massRefusal: { threshold: 1, windowSeconds: 600 } };
      await expect(refresher(guard).getAccessToken('s-1')).rejects.toBeInstanceOf(ReauthRequiredError);
      await expect(refresher(guard).getAccessToken('s-2')).rejects.toBeInstanceOf(ProviderUnavailableError);

      // Two windows on, the earlier refusals no longer count.
      clockMs += 1300 * 1000;
      await expect(refresher(guard).getAccessToken('s-2')).rejects.toBeInstanceOf(ReauthRequiredError);

      expect(store.raw('s-2')?.status).toBe('reauth_required');
    });

    it('guards with 20 per 600 s by default', async () => {
      const users = Array.from({ length: 21 }, (_, i) => `d-${i}`);
      store.seed(...users.map((u) => expired(u)));
      refuse(krogerRefusal());
      const r = refresher();

      const outcomes = [];
      for (const user of users) outcomes.push(await r.getAccessToken(user).catch((e: Error) => e.name));

      expect(outcomes).toEqual([...Array(20).fill('ReauthRequiredError'), 'ProviderUnavailableError']);
      expect(counter.calls[0]).toEqual({ shape: 'invalid_request', nowMs: T0 * 1000, windowSeconds: 600 });
    });

    it('is off with a threshold of 0: every dead grant is marked, nothing is counted', async () => {
      store.seed(expired('o-1'), expired('o-2'));
      refuse(krogerRefusal());
      const r = refresher({ massRefusal: { threshold: 0, windowSeconds: 600 } });

      await expect(r.getAccessToken('o-1')).rejects.toBeInstanceOf(ReauthRequiredError);
      await expect(r.getAccessToken('o-2')).rejects.toBeInstanceOf(ReauthRequiredError);

      expect(counter.calls).toEqual([]);
    });

    it('keeps the grant when the refusal cannot be counted: a grant is never given up on a guess', async () => {
      store.seed(expired());
      refuse(krogerRefusal());
      counter.failing = true;

      await expect(refresher().getAccessToken('u')).rejects.toBeInstanceOf(ProviderUnavailableError);

      expect(store.raw('u')).toMatchObject({
        status: 'active',
        refreshToken: 'u-refresh-1',
        lastRefreshError: `${HELD_REFUSAL}: invalid_request: Missing/Invalid Refresh Token`,
      });
      expect(events.published).toEqual([]);
      expect(logged('could not count the refusal; the grant is kept for now')).toEqual([
        expect.objectContaining({
          level: 'ERROR',
          userId: 'u',
          error: expect.objectContaining({ message: 'the sessions table is unavailable' }),
        }),
      ]);
    });
  });

  describe('transient failures', () => {
    it.each([
      ['a timeout after the request was sent', new ProviderUnavailableError('timed out', { outcomeUnknown: true })],
      ['a 2xx that could not be read', new ProviderResponseError('not JSON', { outcomeUnknown: true })],
    ])('logs %s as an unknown outcome and keeps the stored refresh token', async (_what, failure) => {
      store.seed(expired());
      refuse(failure);

      await expect(refresher().getAccessToken('u')).rejects.toBeInstanceOf(ProviderUnavailableError);

      expect(logs.lines.map((l) => JSON.parse(l)).filter((l) => l.errorCode === 'REFRESH_OUTCOME_UNKNOWN')).toEqual([
        expect.objectContaining({
          level: 'WARN',
          userId: 'u',
          message: 'refresh outcome unknown: the provider may have used the refresh token',
        }),
      ]);
      expect(store.raw('u')).toMatchObject({ status: 'active', refreshToken: 'u-refresh-1', consecutiveFailures: 1 });
    });

    it('does not call an answer that never left an unknown outcome', async () => {
      store.seed(expired());
      refuse(new ProviderUnavailableError('connection refused', { outcomeUnknown: false }));

      await expect(refresher().getAccessToken('u')).rejects.toBeInstanceOf(ProviderUnavailableError);

      expect(logs.text()).not.toContain('REFRESH_OUTCOME_UNKNOWN');
    });

    it("records another broker error by its code and turns it into a typed 'try again later'", async () => {
      store.seed(expired());
      const failure = new SecretUnavailableError('the client secret could not be read');
      refuse(failure);

      const error = await refresher()
        .getAccessToken('u')
        .catch((e: unknown) => e);

      expect(error).toBeInstanceOf(ProviderUnavailableError);
      expect(error).toMatchObject({ cause: failure });
      expect(store.raw('u')).toMatchObject({ lastRefreshError: 'secret_unavailable', consecutiveFailures: 1 });
    });

    it.each([
      ['rotated the refresh token', undefined, true],
      ['kept the refresh token', { refreshToken: undefined }, false],
    ])(
      'says why the tokens were not stored when the write kept failing, and whether the provider %s',
      async (_what, answer, rotated) => {
        store.seed(expired());
        provider.onRefresh = async () => provider.issue(answer);
        store.saveRefresh = async () => {
          throw new Error('service unavailable');
        };
        jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
        try {
          const running = refresher()
            .getAccessToken('u')
            .catch((e: unknown) => e);
          await jest.runAllTimersAsync();
          await expect(running).resolves.toMatchObject({ message: 'service unavailable' });
        } finally {
          jest.useRealTimers();
        }

        // rotated: the only valid refresh token was lost with the write; not rotated: the stored one still works.
        expect(logs.lines.map((l) => JSON.parse(l)).filter((l) => l.errorCode === 'ROTATED_TOKEN_NOT_SAVED')).toEqual([
          expect.objectContaining({ level: 'ERROR', why: 'write_failed', rotated }),
        ]);
        expectNoTokenInLogs();
      },
    );
  });

  describe('fencing: a holder whose lease was taken over', () => {
    /** While the provider answers, another process takes the lease over and stores its own refresh. */
    function takenOverDuring(answer: () => Promise<TokenSet>) {
      provider.onRefresh = async () => {
        await store.acquireLease('u', 'other', clockMs + LEASE_MS + 1, LEASE_MS);
        const theirs = provider.issue({ accessToken: 'theirs' });
        setTimeout(
          () =>
            void store.saveRefresh({
              userId: 'u',
              owner: 'other',
              version: 1,
              tokens: theirs,
              now: T0,
              nextRefreshAt: T0 + 1800,
            }),
          20,
        );
        return answer();
      };
    }

    it("marks nothing on a refusal: the new holder's tokens stand and are returned", async () => {
      store.seed(expired());
      takenOverDuring(async () => {
        throw krogerRefusal();
      });

      const token = await within(refresher().getAccessToken('u'), 5000);

      expect(token.accessToken).toBe('theirs');
      expect(store.raw('u')).toMatchObject({ status: 'active', accessToken: 'theirs', version: 2 });
      expect(store.raw('u')?.leaseOwner).toBeUndefined();
      expect(events.published).toEqual([]);
    });

    it("records no failure on an outage: the new holder's tokens stand and are returned", async () => {
      store.seed(expired());
      takenOverDuring(async () => {
        throw new ProviderUnavailableError('503');
      });

      const token = await within(refresher().getAccessToken('u'), 5000);

      expect(token.accessToken).toBe('theirs');
      expect(store.raw('u')).toMatchObject({ status: 'active', consecutiveFailures: 0, version: 2 });
      expect(store.raw('u')?.lastRefreshError).toBeUndefined();
    });
  });

  describe('what a reader can make it do', () => {
    it('caps the margin at half the token lifetime, so short-lived tokens are not refreshed on every read', async () => {
      // A 2-minute token with 100 s left: the default 300 s margin would refresh it at once.
      store.seed(activeRecord('u', { tokensIssuedAt: T0 - 20, expiresAt: T0 + 100 }));

      const token = await refresher().getAccessToken('u');

      expect(token.accessToken).toBe('u-access-1');
      expect(provider.total()).toBe(0);
    });

    it('honours a forced refresh at most once per interval, and says so once when it does not', async () => {
      // Issued 30 s ago and already expired: the read must refresh, but not because it was forced.
      store.seed(
        activeRecord('u', {
          tokensIssuedAt: T0 - 30,
          expiresAt: T0 - 1,
          leaseOwner: 'other',
          leaseUntil: T0 * 1000 + 60_000,
        }),
      );
      const reading = refresher({ maxWaitMs: 10_000 }).getAccessToken('u', { forceRefresh: true });
      await settle();
      await store.releaseLease('u', 'other');

      await expect(within(reading, 5000)).resolves.toMatchObject({ accessToken: 'access-1' });

      expect(logged('forced refresh not honoured: the tokens are newer than the minimum interval')).toEqual([
        expect.objectContaining({ level: 'INFO', userId: 'u', issuedSecondsAgo: 30, minIntervalSeconds: 60 }),
      ]);
    });

    it('says nothing about forcing for a read that did not ask, or whose forced refresh was honoured', async () => {
      store.seed(expired('plain'), activeRecord('forced', { tokensIssuedAt: T0 - 60, expiresAt: T0 + 1740 }));
      const r = refresher();

      await r.getAccessToken('plain');
      await r.getAccessToken('forced', { forceRefresh: true });

      expect(provider.calls.refresh).toBe(2);
      expect(logs.text()).not.toContain('forced refresh not honoured');
    });

    it('answers a forced read within the interval with the stored token, without a provider call', async () => {
      store.seed(activeRecord('u', { tokensIssuedAt: T0 - 59, expiresAt: T0 + 1741 }));

      const token = await refresher().getAccessToken('u', { forceRefresh: true });

      expect(token.accessToken).toBe('u-access-1');
      expect(provider.total()).toBe(0);
      expect(store.calls).toEqual(['get:u']);
    });

    it('does not take a token written after the read began that has already expired', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1, leaseOwner: 'other', leaseUntil: T0 * 1000 + 60_000 }));
      const reading = refresher({ maxWaitMs: 10_000 }).getAccessToken('u');
      await settle();
      // Another process stores a token that expires this very second, and drops its lease.
      await store.saveRefresh({
        userId: 'u',
        owner: 'other',
        version: 1,
        tokens: provider.issue({ accessToken: 'theirs', expiresAt: T0 }),
        now: T0,
        nextRefreshAt: T0,
      });

      await expect(within(reading, 5000)).resolves.toMatchObject({ accessToken: 'access-2' });
      expect(provider.calls.refresh).toBe(1);
    });
  });

  describe('the refresh policy', () => {
    it('on-read: a reader still refreshes an expired token', async () => {
      store.seed(expired());

      const token = await refresher({ policy: ON_READ }).getAccessToken('u');

      expect(token.accessToken).toBe('access-1');
      expect(provider.calls.refresh).toBe(1);
    });

    it('on-read: the sweep leaves an expired token that is not due for its keep-alive', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 - 1, nextRefreshAt: T0 + 86_400 }));

      const outcome = await refresher({ policy: ON_READ }).refreshIfDue('u', { marginSeconds: 600, dueBy: T0 + 600 });

      expect(outcome).toBe('fresh');
      expect(provider.total()).toBe(0);
      expect(store.raw('u')?.leaseOwner).toBeUndefined();
    });

    it('eager: the sweep refreshes a token inside its window even when its next refresh is later', async () => {
      store.seed(activeRecord('u', { tokensIssuedAt: T0 - 1500, expiresAt: T0 + 300, nextRefreshAt: T0 + 86_400 }));

      const outcome = await refresher().refreshIfDue('u', { marginSeconds: 600, dueBy: T0 + 600 });

      expect(outcome).toBe('refreshed');
      expect(provider.calls.refresh).toBe(1);
    });
  });

  describe('Method: refreshForReader (the refresh function)', () => {
    it('goes straight to the lease for a stale token and refreshes it: no read first', async () => {
      store.seed(activeRecord('u', { tokensIssuedAt: T0 - 1600, expiresAt: T0 + 200 }));

      const token = await refresher().refreshForReader('u');

      expect(token).toEqual({
        userId: 'u',
        accessToken: 'access-1',
        expiresAt: T0 + 1800,
        scope: SCOPE,
        tokenType: 'bearer',
      });
      expect(store.calls).toEqual(['acquireLeaseIfStale:u', 'saveRefresh:u']);
    });

    it('returns the token another process refreshed first, from the same request, without a lease', async () => {
      store.seed(activeRecord('u', { tokensIssuedAt: T0, expiresAt: T0 + 1800, version: 2 }));

      const token = await refresher().refreshForReader('u');

      expect(token).toEqual({
        userId: 'u',
        accessToken: 'u-access-1',
        expiresAt: T0 + 1800,
        scope: SCOPE,
        tokenType: 'bearer',
      });
      expect(store.calls).toEqual(['acquireLeaseIfStale:u']);
      expect(store.raw('u')?.leaseOwner).toBeUndefined();
      expect(provider.total()).toBe(0);
    });

    it('throws ReauthRequiredError for a dead grant whose last token has not expired, without calling the provider', async () => {
      store.seed(activeRecord('u', { expiresAt: T0 + 1800, status: 'reauth_required', statusReason: 'invalid_grant' }));

      const error = await refresher()
        .refreshForReader('u')
        .catch((e: unknown) => e);

      expect(error).toBeInstanceOf(ReauthRequiredError);
      expect(error).toMatchObject({ userId: 'u', reason: 'invalid_grant' });
      expect(provider.total()).toBe(0);
      expect(store.raw('u')?.leaseOwner).toBeUndefined();
    });

    it('reads first for a forced refresh, which a read decides without the lease', async () => {
      store.seed(activeRecord('u', { tokensIssuedAt: T0 - 10, expiresAt: T0 + 1790 }));

      const token = await refresher().refreshForReader('u', { forceRefresh: true });

      expect(token.accessToken).toBe('u-access-1');
      expect(store.calls).toEqual(['get:u']);
    });
  });
});
