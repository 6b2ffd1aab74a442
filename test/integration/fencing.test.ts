/**
 * The refresh lease as a fence, against DynamoDB Local and the sandbox. The issue: a lease shorter
 * than one refresh let a second process take over while the holder's write was still on its way,
 * and both presented the same single-use refresh token. Now:
 * - the lease outlasts the holder's whole budget (a shorter one is refused), so a holder whose
 *   write is slow keeps the second process waiting, and one token request serves both;
 * - every write made under the lease is conditioned on its owner, so a holder that overruns its
 *   lease anyway (a paused process) cannot overwrite what the next holder stored;
 * - DynamoDB calls time out, a write that landed though its answer was lost is recognised, and a
 *   refresh whose outcome is unknown is logged as such.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { readProviderConfig, type ProviderConfig } from '../../functions/core/config';
import { ConfigError, LeaseLostError } from '../../functions/core/errors';
import { DYNAMODB_CALL_BUDGET_MS, DYNAMODB_REQUEST_TIMEOUT_MS, refreshLeaseMs } from '../../functions/core/budget';
import { createDynamoClient } from '../../functions/adapters/dynamo';
import { logEventPublisher } from '../../functions/adapters/events';
import { createProviderClient, type ProviderClient } from '../../functions/adapters/provider';
import { DynamoTokenStore, type TokenStore } from '../../functions/adapters/token-store';
import { createTokenRefresher, type RefreshDeps } from '../../functions/flows/single-flight-refresh';
import type { SandboxHandle } from '../../infra/local/sandbox/launch';
import { connectUser, brokerEnv } from '../support/connect';
import { captureLogger } from '../support/logs';
import type { TestStores } from '../support/stores';
import { useFileStack } from '../support/file-stack';

const REDIRECT = 'http://localhost:3993/callback';
const SECRET = 'fencing-secret';

let sandbox: SandboxHandle;
let stores: TestStores;
let provider: ProviderConfig;
let env: Record<string, string>;
let logs: ReturnType<typeof captureLogger>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function refresher(overrides: Partial<RefreshDeps> = {}) {
  return createTokenRefresher({
    tokens: stores.tokens,
    client: createProviderClient(provider, async () => SECRET),
    events: logEventPublisher(logs.logger),
    logger: logs.logger,
    ...overrides,
  });
}

const connect = (login: string) => connectUser(login, { provider, secret: SECRET, stores, logger: logs.logger });

/** The real store, with `saveRefresh` run through `around`. */
function storeWithSave(
  around: (
    save: TokenStore['saveRefresh'],
    input: Parameters<TokenStore['saveRefresh']>[0],
  ) => ReturnType<TokenStore['saveRefresh']>,
): TokenStore {
  const real = stores.tokens;
  return Object.assign(Object.create(real) as TokenStore, {
    saveRefresh: (input: Parameters<TokenStore['saveRefresh']>[0]) => around(real.saveRefresh.bind(real), input),
  });
}

/** Makes the stored access token look expired, so every reader must refresh it. */
async function expire(userId: string) {
  await stores.client.send(
    new UpdateItemCommand({
      TableName: stores.config.tokensTable,
      Key: { userId: { S: userId } },
      UpdateExpression: 'SET expiresAt = :past',
      ExpressionAttributeValues: { ':past': { N: String(Math.floor(Date.now() / 1000) - 10) } },
    }),
  );
}

/** Resolves once `check` holds, polling DynamoDB every 20 ms. */
async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await sleep(20);
  }
}

/** A settable promise. */
function gate<T = void>() {
  let open!: (value: T) => void;
  const opened = new Promise<T>((resolve) => (open = resolve));
  return { open, opened };
}

const stack = useFileStack('fencing', { clientId: 'fencing-client', clientSecret: SECRET, redirectUris: [REDIRECT] });

beforeAll(() => {
  ({ sandbox, stores } = stack);
  env = brokerEnv(sandbox, stores, REDIRECT, {
    PROVIDER_TIMEOUT_MS: '1000',
    REFRESH_TIMEOUT_MS: '2000',
  });
  provider = readProviderConfig(env);
});

beforeEach(async () => {
  logs = captureLogger();
  await sandbox.failToken('none');
  await sandbox.setRotation({ omitRefreshToken: false });
  await sandbox.resetStats();
});

describe('The lease outlasts the holder', () => {
  it('refuses a lease shorter than one refresh: provider call plus every write attempt', () => {
    expect(() => refresher({ leaseMs: 30_000 })).toThrow(ConfigError);
    expect(() => refresher({ leaseMs: 30_000 })).toThrow(/must outlast one refresh's whole budget/);
    expect(() => refresher({ refreshTimeoutMs: 2000, leaseMs: refreshLeaseMs(2000) })).not.toThrow();
  });

  it('keeps a second process waiting while the holder writes slowly: one token request, the user stays active', async () => {
    const before = await connect('f-slow');
    await expire('f-slow');
    await sandbox.resetStats();
    const presented = gate();
    // The holder's write takes 4 s: longer than the short lease that reproduced the issue.
    const holder = refresher({
      refreshTimeoutMs: 2000,
      tokens: storeWithSave(async (save, input) => {
        presented.open();
        await sleep(4000);
        return save(input);
      }),
    });

    const held = holder.getAccessToken('f-slow');
    await presented.opened;
    // A second process (its own Node, the reader library in-process mode) reads meanwhile.
    const second = spawn(
      process.execPath,
      ['--import', 'tsx', join(__dirname, '../support/reader-process.ts'), 'f-slow'],
      {
        cwd: join(__dirname, '../..'),
        env: { ...process.env, ...env },
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    let output = '';
    second.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ready\n')) second.stdin.end('go\n');
    });
    const exited = new Promise<void>((resolve) => second.once('exit', () => resolve()));

    const token = await held;
    await exited;
    const result = JSON.parse(output.trim().split('\n').pop()!);

    expect(result).toMatchObject({ ok: true, accessToken: token.accessToken });
    expect(token.accessToken).not.toBe(before.accessToken);
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 1 });
    expect(await stores.tokens.get('f-slow')).toMatchObject({ status: 'active', version: before.version + 1 });
  }, 60_000);
});

describe('Writes under the lease are fenced on its owner', () => {
  it('refuses every write of a holder whose lease was taken over, and leaves the item as the new holder has it', async () => {
    const record = await connect('f-store');
    await stores.tokens.acquireLease('f-store', 'holder-a', Date.now() - 120_000, 1000); // long expired
    await stores.tokens.acquireLease('f-store', 'holder-b', Date.now(), 60_000);
    const tokens = { ...record, accessToken: 'from-a' };
    const now = Math.floor(Date.now() / 1000);

    const attempts = [
      stores.tokens.saveRefresh({
        userId: 'f-store',
        owner: 'holder-a',
        version: record.version,
        tokens,
        now,
        nextRefreshAt: now,
      }),
      stores.tokens.recordFailure({
        userId: 'f-store',
        owner: 'holder-a',
        version: record.version,
        reason: 'unavailable',
        now,
        failures: 1,
        nextRefreshAt: now,
      }),
      stores.tokens.markReauthRequired({
        userId: 'f-store',
        owner: 'holder-a',
        version: record.version,
        reason: 'invalid_grant',
        now,
        deleteAfter: now + 60,
      }),
    ];

    for (const attempt of attempts) await expect(attempt).rejects.toBeInstanceOf(LeaseLostError);
    const after = (await stores.tokens.get('f-store'))!;
    expect(after).toMatchObject({
      status: 'active',
      version: record.version,
      accessToken: record.accessToken,
      leaseOwner: 'holder-b',
      consecutiveFailures: 0,
    });
    await expect(
      stores.tokens.saveRefresh({
        userId: 'f-store',
        owner: 'holder-b',
        version: record.version,
        tokens,
        now,
        nextRefreshAt: now,
      }),
    ).resolves.toMatchObject({ accessToken: 'from-a', version: record.version + 1 });
  });

  it('lets a holder paused past its lease store nothing over the next holder, who presented last', async () => {
    // Both presentations succeed here (no rotation), so what is stored shows whose write won.
    await sandbox.setRotation({ omitRefreshToken: true });
    const before = await connect('f-paused');
    await expire('f-paused');
    await sandbox.resetStats();
    const aWriteDone = gate();

    // Holder A: its clock is two minutes behind, so the lease it takes has already run out for
    // everyone else (a process frozen past its lease); its write waits until B holds the lease.
    const a = refresher({
      owner: 'holder-a',
      nowMs: () => Date.now() - 120_000,
      maxWaitMs: 20_000,
      tokens: storeWithSave(async (save, input) => {
        await until(async () => (await stores.tokens.get('f-paused'))?.leaseOwner?.startsWith('holder-b') === true);
        try {
          return await save(input);
        } finally {
          aWriteDone.open();
        }
      }),
    });
    // Holder B: takes the lease over and presents only after A's write was tried.
    const realClient = createProviderClient(provider, async () => SECRET);
    const b = refresher({
      owner: 'holder-b',
      client: {
        refresh: async (input: Parameters<ProviderClient['refresh']>[0]) => {
          await aWriteDone.opened;
          return realClient.refresh(input);
        },
      },
    });

    const fromA = a.getAccessToken('f-paused');
    await until(async () => (await stores.tokens.get('f-paused'))?.leaseOwner?.startsWith('holder-a') === true);
    const fromB = await b.getAccessToken('f-paused');
    const aResult = await fromA;

    const stored = (await stores.tokens.get('f-paused'))!;
    expect(stored).toMatchObject({ status: 'active', accessToken: fromB.accessToken, version: before.version + 1 });
    expect(stored.leaseOwner).toBeUndefined();
    // A re-read what B stored instead of returning its own unsaved pair.
    expect(aResult.accessToken).toBe(fromB.accessToken);
    const lost = logs.lines.map((line) => JSON.parse(line)).find((e) => e.errorCode === 'ROTATED_TOKEN_NOT_SAVED');
    expect(lost).toMatchObject({ why: 'lease_lost', level: 'ERROR' });
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 2 });
  }, 60_000);
});

describe('Bounded writes and unknown outcomes', () => {
  it('recognises a write that landed though its answer was lost, instead of losing the rotated pair', async () => {
    await connect('f-landed');
    let calls = 0;
    const r = refresher({
      forceRefreshMinIntervalSeconds: 0,
      tokens: storeWithSave(async (save, input) => {
        calls++;
        const saved = await save(input);
        if (calls === 1) throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
        return saved;
      }),
    });

    const token = await r.getAccessToken('f-landed', { forceRefresh: true });

    expect(calls).toBe(2);
    expect((await stores.tokens.get('f-landed'))!.accessToken).toBe(token.accessToken);
    expect(logs.text()).not.toContain('ROTATED_TOKEN_NOT_SAVED');
  });

  it('logs a refresh that timed out after it was sent as an unknown outcome, and keeps the grant', async () => {
    const before = await connect('f-unknown');
    await sandbox.failToken('hang', 1);

    await expect(
      refresher({ forceRefreshMinIntervalSeconds: 0 }).getAccessToken('f-unknown', { forceRefresh: true }),
    ).rejects.toMatchObject({ code: 'PROVIDER_UNAVAILABLE', outcomeUnknown: true });

    expect(logs.text()).toContain('"errorCode":"REFRESH_OUTCOME_UNKNOWN"');
    expect(await stores.tokens.get('f-unknown')).toMatchObject({
      status: 'active',
      refreshToken: before.refreshToken,
      lastRefreshError: 'unavailable',
    });
  });

  it('gives up on a DynamoDB that accepts connections but never answers, within the call budget', async () => {
    // A TCP server that accepts and then says nothing: what a stalled connection looks like.
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const client = createDynamoClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      tokensTable: 'any-table',
      sessionsTable: 'any-sessions',
    });
    const started = Date.now();
    try {
      // Typed, retryable, and honest that a write could have landed (here a read: harmless).
      await expect(new DynamoTokenStore(client, 'any-table', stores.cipher).get('u')).rejects.toMatchObject({
        name: 'StoreUnavailableError',
        code: 'STORE_UNAVAILABLE',
        operation: 'GetItem',
        retryable: true,
        outcomeUnknown: true,
        cause: expect.objectContaining({ name: 'TimeoutError' }),
      });
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(DYNAMODB_REQUEST_TIMEOUT_MS - 100);
      expect(elapsed).toBeLessThanOrEqual(DYNAMODB_CALL_BUDGET_MS + 1000);
    } finally {
      client.destroy();
      silent.close();
    }
  }, 30_000);
});
