/**
 * One sweep of the scheduled refresher, fast: the real run and the real refresher over the in-memory token store (the
 * same sparse index semantics as DynamoDB, see test/integration/token-store-contract.test.ts) and a
 * scripted provider. test/integration/scheduled-refresh.test.ts runs the same promises against
 * DynamoDB Local and the sandbox provider.
 */
import {
  ClientCredentialsRejectedError,
  InvalidGrantError,
  ProviderUnavailableError,
} from '../../functions/core/errors';
import { REFRESH_SHARDS } from '../../functions/core/schema';
import { refreshShard } from '../../functions/core/tokens';
import { createTokenRefresher } from '../../functions/flows/single-flight-refresh';
import { runRefreshSweep, type RefreshSweepOptions } from '../../functions/flows/refresh-sweep';
import { FakeProvider, RecordingEvents } from '../support/fakes';
import { captureLogger } from '../support/logs';
import { activeRecord, MemoryTokenStore } from '../support/memory-token-store';

const T0 = 1_000_000;

let clockMs: number;
let store: MemoryTokenStore;
let provider: FakeProvider;
let logs: ReturnType<typeof captureLogger>;

function run(options: RefreshSweepOptions = {}, nowMs = () => clockMs) {
  const refresher = createTokenRefresher({
    tokens: store,
    client: provider,
    events: new RecordingEvents(),
    logger: logs.logger,
    nowMs,
    maxWaitMs: 0,
  });
  return runRefreshSweep({ tokens: store, refresher, logger: logs.logger, nowMs }, options);
}

/** `count` user ids that share one shard of the due index (so they page together). */
function sameShard(count: number, prefix = 'u'): string[] {
  const byShard = new Map<number, string[]>();
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    const ids = byShard.get(refreshShard(id)) ?? [];
    ids.push(id);
    byShard.set(refreshShard(id), ids);
    if (ids.length === count) return ids;
  }
}

/** A user whose access token expires at `expiresAt` (so it is due then). */
const due = (userId: string, expiresAt: number) => activeRecord(userId, { tokensIssuedAt: T0 - 1800, expiresAt });

const outage = async (): Promise<never> => {
  throw new ProviderUnavailableError('the token endpoint answered with status 503');
};

const metricLine = () => logs.lines.map((l) => JSON.parse(l)).find((l) => l.message === 'scheduled refresh finished');

beforeEach(() => {
  clockMs = T0 * 1000;
  store = new MemoryTokenStore();
  provider = new FakeProvider();
  provider.now = T0;
  logs = captureLogger();
});

describe('Function: runRefreshSweep', () => {
  it('refreshes exactly the users due within the window, through the index, touching no one else', async () => {
    store.seed(
      due('due-a', T0 + 600),
      due('due-b', T0 - 5),
      activeRecord('later', { tokensIssuedAt: T0, expiresAt: T0 + 601 }),
    );

    const report = await run();

    expect(report).toEqual({
      due: 2,
      refreshed: 2,
      fresh: 0,
      failed: 0,
      reauth: 0,
      deferred: 0,
      skipped: 0,
      complete: true,
      readUnits: REFRESH_SHARDS * 0.5,
      durationMs: 0,
    });
    expect(provider.refreshed.map((r) => r.refreshToken).sort()).toEqual(['due-a-refresh-1', 'due-b-refresh-1']);
    const touched = store.calls.filter((c) => !c.startsWith('queryDue:')).map((c) => c.split(':')[1]);
    expect(new Set(touched)).toEqual(new Set(['due-a', 'due-b']));
    expect(store.calls.filter((c) => c.startsWith('queryDue:')).sort()).toEqual(
      Array.from({ length: REFRESH_SHARDS }, (_, shard) => `queryDue:${shard}`).sort(),
    );
  });

  it('tries each due user once per run, even when its failure puts it back into the window', async () => {
    // Expired tokens: a failure pushes each user 1, 2, 4, 8 minutes on, still inside the 10-minute
    // window, so every later page of its shard lists it again.
    const users = sameShard(3);
    store.seed(...users.map((id) => due(id, T0 - 10)));
    provider.onRefresh = outage;

    const report = await run({ pageSize: 1 });

    expect(report).toMatchObject({ due: 3, failed: 3, refreshed: 0, complete: true });
    expect(provider.calls.refresh).toBe(3);
    for (const id of users) expect(store.raw(id)).toMatchObject({ consecutiveFailures: 1, nextRefreshAt: T0 + 60 });
  });

  it('reads every page of a shard', async () => {
    const users = sameShard(5);
    store.seed(...users.map((id) => due(id, T0 + 100)));

    const report = await run({ pageSize: 2 });

    expect(report).toMatchObject({ due: 5, refreshed: 5 });
  });

  it('asks the index for pages of 100 by default', async () => {
    const query = store.queryDue.bind(store);
    const limits: Array<number | undefined> = [];
    store.queryDue = (shard, before, options) => {
      limits.push(options?.limit);
      return query(shard, before, options);
    };

    await run();

    expect(new Set(limits)).toEqual(new Set([100]));
  });

  it('looks 10 minutes ahead by default, and as far as it is told', async () => {
    store.seed(due('in', T0 + 600), due('out', T0 + 601), due('far', T0 + 1200));

    expect((await run()).due).toBe(1);
    expect((await run({ windowSeconds: 1200 })).due).toBe(2);
  });

  it('counts each outcome, and keeps going after any one user fails', async () => {
    store.seed(
      due('ok', T0),
      due('dead', T0),
      due('down', T0),
      due('busy', T0),
      due('gone', T0),
      due('broken', T0),
      due('done', T0),
    );
    provider.onRefresh = async ({ refreshToken }) => {
      if (refreshToken === 'dead-refresh-1') throw new InvalidGrantError('refused');
      if (refreshToken === 'down-refresh-1') throw new ProviderUnavailableError('down');
      return provider.issue();
    };
    const acquire = store.acquireLease.bind(store);
    store.acquireLease = async (userId, owner, nowMs, leaseMs) => {
      if (userId === 'busy') await acquire(userId, 'someone-else', nowMs, 60_000);
      if (userId === 'gone') store.items.delete(userId);
      if (userId === 'broken') throw new Error('DynamoDB is unavailable');
      // Another process refreshed this one after the index was read.
      if (userId === 'done') {
        await acquire(userId, 'other', nowMs, leaseMs);
        const tokens = provider.issue();
        await store.saveRefresh({ userId, owner: 'other', version: 1, tokens, now: T0, nextRefreshAt: T0 + 1800 });
      }
      return acquire(userId, owner, nowMs, leaseMs);
    };

    const report = await run();

    // A user disconnected since the index was read counts as fresh: there is nothing left to refresh.
    expect(report).toMatchObject({
      due: 7,
      refreshed: 1,
      fresh: 2,
      reauth: 1,
      failed: 3,
      deferred: 0,
      skipped: 0,
      complete: true,
    });
    const unexpected = logs.lines
      .map((l) => JSON.parse(l))
      .filter((l) => l.message === 'scheduled refresh failed unexpectedly');
    // Outages and busy leases are expected; only the unknown failure is an error worth a look.
    expect(unexpected).toEqual([
      expect.objectContaining({ level: 'ERROR', userId: 'broken', error: expect.objectContaining({ name: 'Error' }) }),
    ]);
  });

  it.each([
    ['8 by default', {}, 8],
    ['as many as it is told', { concurrency: 3 }, 3],
  ])('refreshes users at once: %s', async (_name, options: RefreshSweepOptions, expected) => {
    store.seed(...sameShard(10).map((id) => due(id, T0)));
    let inFlight = 0;
    let most = 0;
    provider.onRefresh = async () => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      inFlight--;
      return provider.issue();
    };

    const report = await run(options);

    expect(most).toBe(expected);
    expect(report.refreshed).toBe(10);
  });

  it('starts nothing and reads nothing once the deadline has passed', async () => {
    store.seed(due('a', T0));

    const report = await run({ deadlineMs: T0 * 1000 });

    expect(report).toMatchObject({ due: 0, refreshed: 0, deferred: 0, complete: false });
    expect(store.calls).toEqual([]);
    expect(provider.total()).toBe(0);
  });

  it('defers the rest of a page when the deadline comes mid-run, and reads no further page', async () => {
    const users = sameShard(3);
    store.seed(...users.map((id) => due(id, T0)));
    provider.onRefresh = async () => {
      clockMs += 60_000; // a slow user: the deadline passes while it is refreshed
      return provider.issue();
    };

    const report = await run({ deadlineMs: T0 * 1000 + 1000, concurrency: 1 });

    expect(report).toMatchObject({ due: 3, refreshed: 1, deferred: 2, complete: false });
    // Shards are read in order; none after the one where the deadline came.
    const shard = refreshShard(users[0]);
    expect(store.calls.filter((c) => c.startsWith('queryDue:'))).toEqual(
      Array.from({ length: shard + 1 }, (_, i) => `queryDue:${i}`),
    );
  });

  it('stops trying users once the provider refuses the client credentials, keeping every grant', async () => {
    const users = sameShard(4);
    store.seed(...users.map((id) => due(id, T0)));
    provider.onRefresh = async () => {
      throw new ClientCredentialsRejectedError('the token endpoint refused the client ("invalid_client")');
    };

    const report = await run({ concurrency: 1 });

    expect(report).toMatchObject({ due: 4, failed: 1, skipped: 3, refreshed: 0, reauth: 0, complete: true });
    expect(provider.calls.refresh).toBe(1);
    for (const id of users) expect(store.raw(id)).toMatchObject({ status: 'active', consecutiveFailures: 0 });
  });

  it('reports what the run read and how long it took, and writes one metric line', async () => {
    store.seed(due('a', T0));
    provider.onRefresh = async () => {
      clockMs += 1500;
      return provider.issue();
    };

    const report = await run();

    expect(report).toMatchObject({ readUnits: 8, durationMs: 1500 });
    expect(metricLine()).toEqual({
      level: 'INFO',
      timestamp: expect.any(String),
      message: 'scheduled refresh finished',
      due: 1,
      refreshed: 1,
      fresh: 0,
      failed: 0,
      reauth: 0,
      deferred: 0,
      skipped: 0,
      complete: true,
      readUnits: 8,
      durationMs: 1500,
      _aws: {
        Timestamp: T0 * 1000 + 1500,
        CloudWatchMetrics: [
          {
            Namespace: 'KrogerTokenBroker',
            Dimensions: [['function']],
            Metrics: ['due', 'refreshed', 'failed', 'reauth', 'deferred'].map((Name) => ({ Name, Unit: 'Count' })),
          },
        ],
      },
    });
  });
});
