/**
 * The scheduled refresher against DynamoDB Local and the sandbox provider: it finds due users
 * through the sparse index without reading anyone else, survives individual failures, and stops
 * trying users whose grant is gone.
 */
import { BatchWriteItemCommand, type WriteRequest } from '@aws-sdk/client-dynamodb';
import { readProviderConfig, type ProviderConfig } from '../../functions/core/config';
import { logEventPublisher } from '../../functions/adapters/events';
import { createProviderClient } from '../../functions/adapters/provider';
import { createTokenRefresher } from '../../functions/flows/single-flight-refresh';
import { runRefreshSweep, type RefreshSweepOptions } from '../../functions/flows/refresh-sweep';
import { startSandbox, type SandboxHandle } from '../../infra/local/sandbox/launch';
import { connectUser } from '../support/connect';
import { seededItem } from '../support/seed';
import { captureLogger } from '../support/logs';
import { createTestStores, type TestStores } from '../support/stores';

const REDIRECT = 'http://localhost:3997/callback';
const SECRET = 'scheduled-secret';

let sandbox: SandboxHandle;
let stores: TestStores;
let provider: ProviderConfig;
let logs: ReturnType<typeof captureLogger>;

const now = () => Math.floor(Date.now() / 1000);
/** A run's clock a few minutes ahead: tokens issued now then expire within the window. */
const later = (minutes: number) => () => Date.now() + minutes * 60_000;

const connect = (login: string) => connectUser(login, { provider, secret: SECRET, stores, logger: logs.logger });

/** Writes `count` users that are not due (tokens valid for hours), straight into the table. */
async function seedNotDue(count: number, prefix: string) {
  const t = now();
  const requests: WriteRequest[] = Array.from({ length: count }, (_, i) => {
    const userId = `${prefix}-${i}`;
    return {
      PutRequest: { Item: seededItem(userId, { issuedAt: t, expiresAt: t + 7200 }) },
    };
  });
  for (let i = 0; i < requests.length; i += 25) {
    await stores.client.send(
      new BatchWriteItemCommand({ RequestItems: { [stores.config.tokensTable]: requests.slice(i, i + 25) } }),
    );
  }
}

function run(options: { nowMs?: () => number } & RefreshSweepOptions = {}) {
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

/** Records the name of every DynamoDB command sent while `body` runs. */
async function commandsSentDuring<T>(body: () => Promise<T>): Promise<{ result: T; commands: string[] }> {
  const commands: string[] = [];
  const send = stores.client.send.bind(stores.client);
  const spy = jest.spyOn(stores.client, 'send').mockImplementation(((command: object) => {
    commands.push(command.constructor.name);
    return send(command as never);
  }) as never);
  try {
    return { result: await body(), commands };
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
  stores = await createTestStores('scheduled');
  provider = readProviderConfig({
    CLIENT_ID: sandbox.clientId,
    OAUTH2_BASE_URL: sandbox.oauth2BaseUrl,
    API_BASE_URL: sandbox.apiBaseUrl,
    REDIRECT_URL: REDIRECT,
    OAUTH2_ISSUER: sandbox.issuer,
    PROVIDER_TIMEOUT_MS: '2000',
  });
});

afterAll(async () => {
  await sandbox?.stop();
  stores?.client.destroy();
});

beforeEach(async () => {
  logs = captureLogger();
  await sandbox.failToken('none');
  await sandbox.resetStats();
});

describe('Scheduled refresher', () => {
  it('refreshes exactly the due users and reads no item that is not due', async () => {
    await seedNotDue(200, 'idle');
    for (const login of ['due-1', 'due-2', 'due-3']) await connect(login);
    await sandbox.resetStats();

    const { result: report, commands } = await commandsSentDuring(() => run({ nowMs: later(7) }));

    expect(report).toMatchObject({ due: 3, refreshed: 3, failed: 0, reauth: 0, complete: true });
    // Index queries and the due users' own items only: never a Scan, never a read of anyone else.
    expect(new Set(commands)).toEqual(new Set(['QueryCommand', 'UpdateItemCommand']));
    expect(commands.filter((c) => c === 'QueryCommand')).toHaveLength(16);
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 3 });
    // 16 index queries of a few keys plus 3 consistent item reads per refresh: far below 200 items.
    expect(report.readUnits).toBeGreaterThan(0);
    expect(report.readUnits).toBeLessThan(16 * 0.5 + 3 * 3 + 5);
    expect(logs.text()).toContain('"_aws"');

    const again = await run();
    expect(again).toMatchObject({ due: 0, refreshed: 0 });
    // Leave the table to the next tests as it was: without the 200 idle users.
    for (let i = 0; i < 200; i += 25) {
      await stores.client.send(
        new BatchWriteItemCommand({
          RequestItems: {
            [stores.config.tokensTable]: Array.from({ length: 25 }, (_, j) => ({
              DeleteRequest: { Key: { userId: { S: `idle-${i + j}` } } },
            })),
          },
        }),
      );
    }
  });

  it('refreshes an idle grant whose token outlives the window once a day has passed', async () => {
    await seedNotDue(3, 'long-lived');
    const before = (await stores.tokens.get('long-lived-0'))!;
    expect((await run()).due).toBe(0);

    // The seeded refresh tokens are not real: the refresher tries them and the sandbox refuses.
    const report = await run({ nowMs: () => Date.now() + 86_400_000 + 60_000 });

    expect(report.due).toBeGreaterThanOrEqual(3);
    const after = (await stores.tokens.get('long-lived-0'))!;
    expect(after.lastRefreshAt).toBeGreaterThan(before.tokensIssuedAt);
  });

  it('keeps going when one user fails, and retries that user on a later run', async () => {
    await connect('fail-a');
    await connect('fail-b');
    await sandbox.resetStats();
    await sandbox.failToken('503', 1);

    const first = await run({ nowMs: later(7) });

    expect(first.failed).toBe(1);
    expect(first.refreshed).toBeGreaterThanOrEqual(1);
    const failedUser = (await stores.tokens.get('fail-a'))!.consecutiveFailures ? 'fail-a' : 'fail-b';
    expect((await stores.tokens.get(failedUser))!).toMatchObject({ status: 'active', consecutiveFailures: 1 });

    const next = await run({ nowMs: later(12) });

    expect(next.failed).toBe(0);
    expect((await stores.tokens.get(failedUser))!.consecutiveFailures).toBe(0);
  });

  it('tries each due user once per run, even when a failure puts it back in the window', async () => {
    for (const login of ['once-1', 'once-2', 'once-3']) await connect(login);
    await sandbox.failToken('503');
    await sandbox.resetStats();

    // Pages of one key: a user pushed back by its failure would show up again in a later page.
    const report = await run({ nowMs: later(7), pageSize: 1 });

    await sandbox.failToken('none');
    expect(report.failed).toBe(report.due);
    expect((await sandbox.stats()).refreshToken).toBe(report.due);
    await run({ nowMs: later(20) }); // leave nobody failing for the next test
  });

  it('stops at the deadline, reading no further, and leaves the rest for the next run', async () => {
    await connect('deadline-1');
    await sandbox.resetStats();

    const report = await run({ nowMs: later(7), deadlineMs: Date.now() - 1 });

    expect(report).toMatchObject({ complete: false, refreshed: 0, due: 0 });
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 0 });
    expect((await run({ nowMs: later(7) })).refreshed).toBeGreaterThanOrEqual(1);
  });

  it('publishes one reauth_required event for a revoked grant and never tries that user again', async () => {
    await connect('revoked-1');
    await sandbox.revokeAccount('revoked-1');
    await sandbox.resetStats();

    const first = await run({ nowMs: later(7) });
    const second = await run({ nowMs: later(12) });

    expect(first.reauth).toBeGreaterThanOrEqual(1);
    expect(second.reauth).toBe(0);
    expect((await stores.tokens.get('revoked-1'))!.status).toBe('reauth_required');
    expect(logs.lines.filter((l) => l.includes('"token.reauth_required"') && l.includes('revoked-1'))).toHaveLength(1);
  });
});
