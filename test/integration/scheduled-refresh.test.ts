/**
 * The scheduled refresher against DynamoDB Local and the sandbox provider: it finds due users
 * through the sparse index without reading anyone else, survives individual failures, tries each
 * user once per run, and stops trying users whose grant is gone. Each test gets tables of its own,
 * so no test depends on what another left behind (or on running order).
 */
import { BatchWriteItemCommand, UpdateItemCommand, type WriteRequest } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import type { ProviderConfig } from '../../functions/core/config';
import { nextRefreshAt } from '../../functions/core/tokens';
import { logEventPublisher } from '../../functions/adapters/events';
import { createProviderClient } from '../../functions/adapters/provider';
import { DUE_INDEX, REFRESHER_STOP_BEFORE_TIMEOUT_MS } from '../../functions/core/schema';
import { createLogger } from '../../functions/adapters/logger';
import { createScheduledRefresherHandler } from '../../functions/handlers';
import { createServices, dynamoClient } from '../../functions/services';
import { createTokenRefresher } from '../../functions/flows/single-flight-refresh';
import {
  runRefreshSweep,
  type RefreshSweepOptions,
  type RefreshSweepReport,
} from '../../functions/flows/refresh-sweep';
import { startSandbox, type SandboxHandle } from '../../infra/local/sandbox/launch';
import { connectUser, sandboxProviderConfig, brokerEnv } from '../support/connect';
import { seededItem } from '../support/seed';
import { captureLogger } from '../support/logs';
import { createTestStores, type TestStores, START_REAL_PARTS_TIMEOUT_MS } from '../support/stores';

const REDIRECT = 'http://localhost:3997/callback';
const SECRET = 'scheduled-secret';

let sandbox: SandboxHandle;
let stores: TestStores;
let provider: ProviderConfig;
let logs: ReturnType<typeof captureLogger>;

const now = () => Math.floor(Date.now() / 1000);
/** A run's clock `minutes` ahead: tokens issued now (15 minutes) then expire within the window. */
const later = (minutes: number) => () => Date.now() + minutes * 60_000;

const connect = (login: string) => connectUser(login, { provider, secret: SECRET, stores, logger: logs.logger });

/** Writes `count` users that are not due (tokens valid for hours), straight into the table. */
async function seedNotDue(count: number, prefix: string) {
  const t = now();
  const requests: WriteRequest[] = Array.from({ length: count }, (_, i) => ({
    PutRequest: { Item: seededItem(`${prefix}-${i}`, { issuedAt: t, expiresAt: t + 7200 }) },
  }));
  for (let i = 0; i < requests.length; i += 25) {
    await stores.client.send(
      new BatchWriteItemCommand({ RequestItems: { [stores.config.tokensTable]: requests.slice(i, i + 25) } }),
    );
  }
}

function run(options: { nowMs?: () => number } & RefreshSweepOptions = {}): Promise<RefreshSweepReport> {
  const { nowMs, ...runOptions } = options;
  const refresher = createTokenRefresher({
    tokens: stores.tokens,
    client: createProviderClient(provider, async () => SECRET),
    events: logEventPublisher(logs.logger),
    logger: logs.logger,
    nowMs,
  });
  return runRefreshSweep({ tokens: stores.tokens, refresher, logger: logs.logger, nowMs }, runOptions);
}

/** What each DynamoDB request sent while `body` ran asked for: an item key, or a query of an index. */
async function requestsDuring<T>(body: () => Promise<T>) {
  const keys = new Set<string>();
  const unkeyed: Array<{ IndexName?: string; KeyConditionExpression?: string }> = [];
  const send = stores.client.send.bind(stores.client);
  const spy = jest.spyOn(stores.client, 'send').mockImplementation(((command: { input: Record<string, any> }) => {
    const key = command.input.Key?.userId?.S;
    if (key) keys.add(key);
    else unkeyed.push(command.input);
    return send(command as never);
  }) as never);
  try {
    return { result: await body(), keys, unkeyed };
  } finally {
    spy.mockRestore();
  }
}

beforeAll(async () => {
  sandbox = await startSandbox({
    clientId: 'scheduled-client',
    clientSecret: SECRET,
    redirectUris: [REDIRECT],
    // 15-minute access tokens: not due at first (the window is 10 minutes); due when the run's
    // clock is moved forward by a few minutes.
    accessTokenTtlSeconds: 900,
  });
  provider = sandboxProviderConfig(sandbox, REDIRECT);
}, START_REAL_PARTS_TIMEOUT_MS);

afterAll(async () => {
  await sandbox?.stop();
});

beforeEach(async () => {
  logs = captureLogger();
  stores = await createTestStores('scheduled');
  await sandbox.failToken('none');
  await sandbox.resetStats();
});

afterEach(() => {
  stores.client.destroy();
});

describe('Scheduled refresher', () => {
  it('refreshes exactly the due users and reads no item that is not due, never scanning', async () => {
    await seedNotDue(200, 'idle');
    for (const login of ['due-1', 'due-2', 'due-3']) await connect(login);
    await sandbox.resetStats();

    const { result: report, keys, unkeyed } = await requestsDuring(() => run({ nowMs: later(7) }));

    expect(report).toMatchObject({ due: 3, refreshed: 3, fresh: 0, failed: 0, reauth: 0, complete: true });
    // The only items read or written are the due users'; everything else is a query of the index.
    expect(keys).toEqual(new Set(['due-1', 'due-2', 'due-3']));
    for (const request of unkeyed) {
      expect(request).toMatchObject({ IndexName: DUE_INDEX, KeyConditionExpression: expect.any(String) });
    }
    expect(await sandbox.stats()).toEqual({ authorizationCode: 0, refreshToken: 3 });
    // Queries of a few index keys plus a few consistent item reads per refresh: far below 200 items.
    expect(report.readUnits).toBeGreaterThan(0);
    expect(report.readUnits).toBeLessThan(16 * 0.5 + 3 * 3 + 5);
    expect(logs.text()).toContain('"_aws"');

    expect(await run()).toMatchObject({ due: 0, refreshed: 0 });
  });

  it('refreshes a real idle grant, whose token outlives the window, once a day has passed', async () => {
    const connected = await connect('idle-1');
    expect(await run()).toMatchObject({ due: 0, refreshed: 0 });
    // A day later: tokens issued 24 h ago, the access token still valid for two more hours.
    const issuedAt = now() - 86_400 - 60;
    const expiresAt = now() + 7200;
    await stores.client.send(
      new UpdateItemCommand({
        TableName: stores.config.tokensTable,
        Key: { userId: { S: 'idle-1' } },
        UpdateExpression: 'SET tokensIssuedAt = :issued, expiresAt = :expires, nextRefreshAt = :next',
        ExpressionAttributeValues: {
          ':issued': { N: String(issuedAt) },
          ':expires': { N: String(expiresAt) },
          ':next': { N: String(nextRefreshAt({ expiresAt, tokensIssuedAt: issuedAt })) },
        },
      }),
    );
    await sandbox.resetStats();
    const started = now();

    const report = await run();

    expect(report).toMatchObject({ due: 1, refreshed: 1, failed: 0, reauth: 0 });
    expect(await sandbox.stats()).toEqual({ authorizationCode: 0, refreshToken: 1 });
    const after = (await stores.tokens.get('idle-1'))!;
    expect(after).toMatchObject({ status: 'active', version: connected.version + 1, consecutiveFailures: 0 });
    expect(after.refreshToken).not.toBe(connected.refreshToken);
    expect(after.accessToken).not.toBe(connected.accessToken);
    expect(after.tokensIssuedAt).toBeGreaterThanOrEqual(started);
    expect(after.nextRefreshAt).toBe(after.expiresAt);
    expect(await run()).toMatchObject({ due: 0, refreshed: 0 });
  });

  it('keeps going when one user fails, and retries that user on the next run', async () => {
    await connect('fail-a');
    await connect('fail-b');
    await sandbox.resetStats();
    await sandbox.failToken('503', 1);

    const first = await run({ nowMs: later(7) });

    expect(first).toMatchObject({ due: 2, refreshed: 1, failed: 1, reauth: 0 });
    const failures = await Promise.all(['fail-a', 'fail-b'].map(async (id) => (await stores.tokens.get(id))!));
    expect(failures.map((r) => r.consecutiveFailures).sort()).toEqual([0, 1]);
    const failedUser = failures.find((r) => r.consecutiveFailures === 1)!;
    expect(failedUser.status).toBe('active');

    const next = await run({ nowMs: later(7) });

    // Both are due again (15-minute tokens, a run 7 minutes ahead); the failed one now succeeds.
    expect(next).toMatchObject({ due: 2, refreshed: 2, failed: 0 });
    expect((await stores.tokens.get(failedUser.userId))!.consecutiveFailures).toBe(0);
    expect(await sandbox.stats()).toEqual({ authorizationCode: 0, refreshToken: 4 });
  });

  it('tries each due user once per run, even when its failure puts it back into the window', async () => {
    for (const login of ['once-1', 'once-2', 'once-3']) await connect(login);
    await sandbox.failToken('503');
    await sandbox.resetStats();

    // 20 minutes ahead, the window reaches 30 minutes out: each failure pushes its user to a minute
    // after the run's clock (21 minutes), still inside the window, so with pages of one key every
    // later page of the shard lists it again.
    const report = await run({ nowMs: later(20), pageSize: 1 });

    expect(report).toMatchObject({ due: 3, failed: 3, refreshed: 0, reauth: 0, complete: true });
    expect(await sandbox.stats()).toEqual({ authorizationCode: 0, refreshToken: 3 });
    for (const id of ['once-1', 'once-2', 'once-3']) {
      const record = (await stores.tokens.get(id))!;
      expect(record.consecutiveFailures).toBe(1);
      // Pushed back into the window: a later page of the same run did list it again.
      expect(record.nextRefreshAt).toBeGreaterThan(record.expiresAt);
      expect(record.nextRefreshAt).toBeLessThanOrEqual(Math.floor(later(20)() / 1000) + 600);
    }
  });

  it('stops at the deadline, reading no further, and leaves the rest for the next run', async () => {
    await connect('deadline-1');
    await sandbox.resetStats();

    const report = await run({ nowMs: later(7), deadlineMs: Date.now() - 1 });

    expect(report).toMatchObject({ complete: false, refreshed: 0, due: 0, deferred: 0 });
    expect(await sandbox.stats()).toEqual({ authorizationCode: 0, refreshToken: 0 });
    expect(await run({ nowMs: later(7) })).toMatchObject({ due: 1, refreshed: 1, complete: true });
  });

  it('publishes one reauth_required event for a revoked grant and never tries that user again', async () => {
    await connect('revoked-1');
    await sandbox.revokeAccount('revoked-1');
    await sandbox.resetStats();

    const first = await run({ nowMs: later(7) });
    const second = await run({ nowMs: later(12) });

    expect(first).toMatchObject({ due: 1, reauth: 1, refreshed: 0, failed: 0 });
    expect(second).toMatchObject({ due: 0, reauth: 0 });
    expect((await stores.tokens.get('revoked-1'))!.status).toBe('reauth_required');
    expect(await sandbox.stats()).toEqual({ authorizationCode: 0, refreshToken: 1 });
    expect(logs.lines.filter((l) => l.includes('"token.reauth_required"') && l.includes('revoked-1'))).toHaveLength(1);
  });
});

describe('Scheduled refresher: the handler (createScheduledRefresherHandler)', () => {
  /**
   * The handler as its Lambda entry builds it (createScheduledRefresherHandler over createServices),
   * configured for this test's tables and the sandbox. Its log (the metric line) is collected.
   */
  async function invokeEntry(remainingMs: number): Promise<{ report: RefreshSweepReport; stdout: string[] }> {
    const stdout: string[] = [];
    const services = createServices(
      brokerEnv(sandbox, stores, REDIRECT, {
        PROVIDER_TIMEOUT_MS: '2000',
      }),
      { logger: createLogger({ level: 'error', write: (line) => stdout.push(line) }) },
    );
    const handler = createScheduledRefresherHandler(services);
    try {
      const context = { getRemainingTimeInMillis: () => remainingMs } as Context;
      return { report: await handler({}, context), stdout };
    } finally {
      dynamoClient(services).destroy();
    }
  }

  /** Makes a connected user due now, whatever the clock of the run. */
  async function makeDue(userId: string) {
    await stores.client.send(
      new UpdateItemCommand({
        TableName: stores.config.tokensTable,
        Key: { userId: { S: userId } },
        UpdateExpression: 'SET nextRefreshAt = :past',
        ExpressionAttributeValues: { ':past': { N: String(now() - 10) } },
      }),
    );
  }

  it('starts no user when less than one whole refresh (REFRESHER_STOP_BEFORE_TIMEOUT_MS) is left', async () => {
    await connect('entry-late');
    await makeDue('entry-late');
    await sandbox.resetStats();

    const { report } = await invokeEntry(REFRESHER_STOP_BEFORE_TIMEOUT_MS - 5000);

    expect(report).toMatchObject({ complete: false, due: 0, refreshed: 0 });
    expect(await sandbox.stats()).toEqual({ authorizationCode: 0, refreshToken: 0 });
  });

  it('refreshes due users when there is time, and writes the metric line to stdout', async () => {
    await connect('entry-ok');
    await makeDue('entry-ok');
    await sandbox.resetStats();

    const { report, stdout } = await invokeEntry(REFRESHER_STOP_BEFORE_TIMEOUT_MS + 60_000);

    expect(report).toMatchObject({ complete: true, due: 1, refreshed: 1 });
    expect(await sandbox.stats()).toEqual({ authorizationCode: 0, refreshToken: 1 });
    const metric = stdout.map((line) => JSON.parse(line)).find((e) => e.message === 'scheduled refresh finished');
    expect(metric).toMatchObject({
      due: 1,
      refreshed: 1,
      _aws: { CloudWatchMetrics: [{ Namespace: 'KrogerTokenBroker' }] },
    });
  });
});
