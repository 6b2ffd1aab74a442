/**
 * Refresh on read against real parts: DynamoDB Local and the sandbox provider with rotating,
 * single-use refresh tokens (a reused one gets invalid_grant and revokes the grant, as the
 * strictest provider would).
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { join } from 'node:path';
import { GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { readProviderConfig, type ProviderConfig } from '../../functions/core/config';
import {
  ConcurrentUpdateError,
  ProviderUnavailableError,
  ReauthRequiredError,
  RefreshFunctionError,
  RefreshInProgressError,
  UnknownUserError,
} from '../../functions/core/errors';
import type { TokenRecord } from '../../functions/core/tokens';
import { logEventPublisher } from '../../functions/adapters/events';
import { createProviderClient, type ProviderClient } from '../../functions/adapters/provider';
import { createTokenRefresher, type TokenRefresher } from '../../functions/flows/single-flight-refresh';
import { createTokenReader, type RefreshFunctionResult, type RefreshInvoker } from '../../functions/reader/index';
import type { TokenStore } from '../../functions/adapters/token-store';
import { READER_ATTRIBUTES } from '../../functions/core/schema';
import { createLogger } from '../../functions/adapters/logger';
import { createRefreshFunctionHandler } from '../../functions/handlers';
import { createServices, dynamoClient } from '../../functions/services';
import type { SandboxHandle } from '../../infra/local/sandbox/launch';
import { connectUser, brokerEnv } from '../support/connect';
import { captureLogger } from '../support/logs';
import type { TestStores } from '../support/stores';
import { within } from '../support/async';
import { useFileStack } from '../support/file-stack';

const REDIRECT = 'http://localhost:3998/callback';
const SECRET = 'refresh-secret';

let sandbox: SandboxHandle;
let stores: TestStores;
let provider: ProviderConfig;
let env: Record<string, string>;
let logs: ReturnType<typeof captureLogger>;

function refresher(overrides: Partial<Parameters<typeof createTokenRefresher>[0]> = {}): TokenRefresher {
  return createTokenRefresher({
    tokens: stores.tokens,
    client: createProviderClient(provider, async () => SECRET),
    events: logEventPublisher(logs.logger),
    logger: logs.logger,
    // These tests force refreshes back to back; the interval has its own tests (reader-limits.test.ts).
    forceRefreshMinIntervalSeconds: 0,
    ...overrides,
  });
}

/** Signs a user in through the real flow and returns the stored record. */
const connect = (login: string) => connectUser(login, { provider, secret: SECRET, stores, logger: logs.logger });

/** A child process with stdin and stdout piped. */
type ReaderProcess = ChildProcessByStdio<Writable, Readable, null>;

/** Starts test/support/reader-process.ts in its own Node process with this file's configuration. */
function spawnReader(...args: string[]): ReaderProcess {
  return spawn(process.execPath, ['--import', 'tsx', join(__dirname, '../support/reader-process.ts'), ...args], {
    cwd: join(__dirname, '../..'),
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
}

/** Resolves once the child has printed `text` on stdout. */
function untilOutput(child: ReaderProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      if (buffer.includes(text)) {
        child.stdout.off('data', onData);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before printing ${JSON.stringify(text)}`)));
  });
}

/** Makes the stored access token look expired, as it will be 30 minutes later. */
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

const stack = useFileStack('refresh', { clientId: 'refresh-client', clientSecret: SECRET, redirectUris: [REDIRECT] });

beforeAll(() => {
  ({ sandbox, stores } = stack);
  env = brokerEnv(sandbox, stores, REDIRECT, {
    OAUTH2_ISSUER: sandbox.issuer,
    PROVIDER_TIMEOUT_MS: '2000',
    REFRESH_TIMEOUT_MS: '3000',
  });
  provider = readProviderConfig(env);
});

beforeEach(async () => {
  logs = captureLogger();
  await sandbox.failToken('none');
  await sandbox.setRotation({ omitRefreshToken: false });
  await sandbox.resetStats();
});

describe('Refresh on read', () => {
  it('returns the stored token without a provider call while it is fresh', async () => {
    const stored = await connect('r-fresh');
    await sandbox.resetStats();

    const token = await refresher().getAccessToken('r-fresh');

    expect(token.accessToken).toBe(stored.accessToken);
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 0 });
  });

  it('refreshes an expired token, storing the rotated refresh token with it under a new version', async () => {
    const before = await connect('r-expired');
    await expire('r-expired');
    await sandbox.resetStats();

    const token = await refresher().getAccessToken('r-expired');

    const after = (await stores.tokens.get('r-expired'))!;
    expect(token.accessToken).not.toBe(before.accessToken);
    expect(token.expiresAt).toBeGreaterThan(Date.now() / 1000 + 1700);
    expect(after.accessToken).toBe(token.accessToken);
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(after.version).toBe(before.version + 1);
    expect(after.leaseOwner).toBeUndefined();
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 1 });
    expect(logs.text()).not.toContain(after.refreshToken);
    expect(logs.text()).not.toContain(before.refreshToken);
  });

  it('refreshes again with the rotated token (the stored pair is usable, not a reused one)', async () => {
    await connect('r-twice');
    const r = refresher();
    const first = await r.getAccessToken('r-twice', { forceRefresh: true });
    const second = await r.getAccessToken('r-twice', { forceRefresh: true });

    expect(second.accessToken).not.toBe(first.accessToken);
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 2 });
  });

  it('keeps the stored refresh token when the response carries none', async () => {
    const before = await connect('r-norotate');
    await sandbox.setRotation({ omitRefreshToken: true });

    const token = await refresher().getAccessToken('r-norotate', { forceRefresh: true });

    const after = (await stores.tokens.get('r-norotate'))!;
    expect(token.accessToken).not.toBe(before.accessToken);
    expect(after.refreshToken).toBe(before.refreshToken);
  });

  it('throws UnknownUserError for a user with no tokens, without calling the provider', async () => {
    await expect(refresher().getAccessToken('nobody')).rejects.toBeInstanceOf(UnknownUserError);
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 0 });
  });
});

describe('Refresh failures', () => {
  it('marks a revoked grant reauth_required after one attempt and makes no further requests', async () => {
    await connect('r-revoked');
    await sandbox.revokeAccount('r-revoked');
    await expire('r-revoked');
    await sandbox.resetStats();
    const r = refresher();

    await expect(r.getAccessToken('r-revoked')).rejects.toBeInstanceOf(ReauthRequiredError);
    await expect(r.getAccessToken('r-revoked')).rejects.toThrow(/must sign in again/);

    const record = (await stores.tokens.get('r-revoked'))!;
    expect(record).toMatchObject({
      status: 'reauth_required',
      statusReason: expect.stringMatching(/^invalid_grant\b/),
    });
    const raw = await stores.client.send(
      new GetItemCommand({ TableName: stores.config.tokensTable, Key: { userId: { S: 'r-revoked' } } }),
    );
    // Out of the refresher's index, and deleted by TTL after 90 days unless the user signs in again.
    expect(raw.Item?.nextRefreshAt).toBeUndefined();
    expect(Number(raw.Item?.ttl?.N)).toBeGreaterThan(Date.now() / 1000 + 89 * 86_400);
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 1 });
    const events = logs.lines.filter((l) => l.includes('"token.reauth_required"'));
    expect(events).toHaveLength(1);
  });

  it('makes the user active again after a new login, and says it recovered', async () => {
    await connect('r-back');
    await sandbox.revokeAccount('r-back');
    await expire('r-back');
    await expect(refresher().getAccessToken('r-back')).rejects.toBeInstanceOf(ReauthRequiredError);

    const record = await connect('r-back');

    expect(record.status).toBe('active');
    expect(record.statusReason).toBeUndefined();
    const raw = await stores.client.send(
      new GetItemCommand({ TableName: stores.config.tokensTable, Key: { userId: { S: 'r-back' } } }),
    );
    expect(raw.Item?.ttl).toBeUndefined();
    // Back in the refresher's index, due when the new token expires.
    expect(raw.Item?.nextRefreshAt).toEqual({ N: String(record.expiresAt) });
    expect(logs.text()).toContain('"token.recovered"');
    await expect(refresher().getAccessToken('r-back')).resolves.toMatchObject({ accessToken: record.accessToken });
  });

  it('keeps the grant through a provider outage and succeeds on the next read', async () => {
    const before = await connect('r-outage');
    await expire('r-outage');
    await sandbox.failToken('503');
    const r = refresher();

    await expect(r.getAccessToken('r-outage')).rejects.toBeInstanceOf(ProviderUnavailableError);
    const during = (await stores.tokens.get('r-outage'))!;
    expect(during).toMatchObject({ status: 'active', refreshToken: before.refreshToken, consecutiveFailures: 1 });
    expect(during.leaseOwner).toBeUndefined();

    await sandbox.failToken('none');
    const token = await r.getAccessToken('r-outage');
    expect(token.accessToken).not.toBe(before.accessToken);
    expect((await stores.tokens.get('r-outage'))!.consecutiveFailures).toBe(0);
  });

  it('publishes one refresh_failed event at the third failure in a row, and one recovered event after', async () => {
    await connect('r-flaky');
    await expire('r-flaky');
    await sandbox.failToken('503');
    const r = refresher();

    for (let i = 0; i < 4; i++) {
      await expect(r.getAccessToken('r-flaky')).rejects.toBeInstanceOf(ProviderUnavailableError);
    }
    await sandbox.failToken('none');
    await r.getAccessToken('r-flaky');

    const events = logs.lines.filter((l) => l.includes('"broker event"')).map((l) => JSON.parse(l));
    expect(events.map((e) => e.event)).toEqual(['token.connected', 'token.refresh_failed', 'token.recovered']);
    expect(events[1].detail).toMatchObject({ userId: 'r-flaky', consecutiveFailures: 3 });
    expect(JSON.stringify(events)).not.toContain((await stores.tokens.get('r-flaky'))!.accessToken);
  });

  it('treats a timeout like an outage: typed "try again", nothing lost', async () => {
    const before = await connect('r-timeout');
    await expire('r-timeout');
    await sandbox.failToken('hang', 1);

    await expect(refresher().getAccessToken('r-timeout')).rejects.toBeInstanceOf(ProviderUnavailableError);
    expect((await stores.tokens.get('r-timeout'))!.refreshToken).toBe(before.refreshToken);
  });
});

describe('Storing a rotated token', () => {
  /** The real store, with its first `failures` saves failing as a DynamoDB outage would. */
  function failingSaves(failures: number): TokenStore {
    let left = failures;
    return Object.assign(Object.create(stores.tokens) as TokenStore, {
      saveRefresh: (...args: Parameters<TokenStore['saveRefresh']>) =>
        left-- > 0 ? Promise.reject(new Error('service unavailable')) : stores.tokens.saveRefresh(...args),
    });
  }

  it('tries the write again, so a brief DynamoDB failure does not lose the only valid refresh token', async () => {
    await connect('r-save-retry');
    await expire('r-save-retry');
    await sandbox.resetStats();

    const token = await refresher({ tokens: failingSaves(2) }).getAccessToken('r-save-retry');

    const stored = (await stores.tokens.get('r-save-retry'))!;
    expect(stored.accessToken).toBe(token.accessToken);
    // The stored refresh token is the rotated one: the next refresh with it works.
    const next = await refresher().getAccessToken('r-save-retry', { forceRefresh: true });
    expect(next.accessToken).not.toBe(token.accessToken);
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 2 });
  });

  it('says so, with a stable code, when the write keeps failing', async () => {
    await connect('r-save-lost');
    await expire('r-save-lost');

    await expect(refresher({ tokens: failingSaves(10) }).getAccessToken('r-save-lost')).rejects.toThrow(
      'service unavailable',
    );
    expect(logs.text()).toContain('"errorCode":"ROTATED_TOKEN_NOT_SAVED"');
  });
});

describe('Single flight', () => {
  it('lets 10 concurrent reads through one reader in one process cause exactly one token request', async () => {
    await connect('r-burst');
    await expire('r-burst');
    await sandbox.resetStats();

    // One refresher shared by all ten calls, as a service's reader is: each call must still take
    // the lease as its own owner, or two calls would present the same single-use refresh token.
    const shared = refresher();
    const tokens = await Promise.all(Array.from({ length: 10 }, () => shared.getAccessToken('r-burst')));

    expect(new Set(tokens.map((t) => t.accessToken)).size).toBe(1);
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 1 });
  });

  it('lets 10 concurrent readers in separate processes cause exactly one token request', async () => {
    await connect('r-procs');
    await expire('r-procs');
    await sandbox.resetStats();
    const children = Array.from({ length: 10 }, () => spawnReader('r-procs'));
    const outputs = children.map(
      (child) =>
        new Promise<string[]>((resolve) => {
          let buffer = '';
          child.stdout.on('data', (chunk: Buffer) => (buffer += chunk.toString()));
          child.once('exit', () => resolve(buffer.trim().split('\n')));
        }),
    );
    // Wait until every process has loaded, then release them together.
    await Promise.all(children.map((child) => untilOutput(child, 'ready\n')));
    for (const child of children) child.stdin.end('go\n');

    const results = (await Promise.all(outputs)).map((lines) => JSON.parse(lines[lines.length - 1]));

    expect(results.every((r) => r.ok)).toBe(true);
    expect(new Set(results.map((r) => r.accessToken)).size).toBe(1);
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 1 });
  }, 60_000);

  it('takes over a lease left by a process that died mid-refresh, once the lease expires', async () => {
    await connect('r-dead');
    await expire('r-dead');
    await sandbox.resetStats();
    const dying = spawnReader('r-dead', 'hold-lease', '2000');
    await untilOutput(dying, 'ready\n');
    dying.stdin.end('go\n');
    await untilOutput(dying, 'held\n');
    dying.kill('SIGKILL');
    const started = Date.now();

    const token = await refresher({ maxWaitMs: 10_000 }).getAccessToken('r-dead');

    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(token.expiresAt).toBeGreaterThan(Date.now() / 1000 + 1700);
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 1 });
  }, 60_000);

  it('gives up with RefreshInProgressError when another process holds the lease past the wait', async () => {
    await connect('r-busy');
    await expire('r-busy');
    await sandbox.resetStats();
    await stores.tokens.acquireLease('r-busy', 'another-process', Date.now(), 60_000);
    const started = Date.now();

    const error = await within(
      refresher({ maxWaitMs: 500 })
        .getAccessToken('r-busy')
        .catch((e: unknown) => e),
      5000,
    );

    expect(error).toBeInstanceOf(RefreshInProgressError);
    expect(error).toMatchObject({
      code: 'REFRESH_IN_PROGRESS',
      message: 'a refresh for user "r-busy" is in progress; try again',
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 0 });
    expect((await stores.tokens.get('r-busy'))!.leaseOwner).toBe('another-process');
  });

  it("returns the new login's tokens when a login lands while it refreshes", async () => {
    await connect('r-relogin');
    await expire('r-relogin');
    const real = createProviderClient(provider, async () => SECRET);
    let login: TokenRecord | undefined;
    // The person signs in again while the refresh is at the provider.
    const client: Pick<ProviderClient, 'refresh'> = {
      refresh: async (input) => {
        const refreshed = await real.refresh(input);
        login = await connect('r-relogin');
        return refreshed;
      },
    };

    const token = await refresher({ client }).getAccessToken('r-relogin');

    expect(token.accessToken).toBe(login!.accessToken);
    expect((await stores.tokens.get('r-relogin'))!).toMatchObject({
      accessToken: login!.accessToken,
      refreshToken: login!.refreshToken,
      version: login!.version,
    });
    expect(login!.leaseOwner).toBeUndefined();
    // The lost race is a warning that says why (the login's tokens are newer), never an error.
    const lines = logs.lines.map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.errorCode === 'ROTATED_TOKEN_NOT_SAVED')).toEqual([
      expect.objectContaining({ level: 'WARN', why: 'item_changed' }),
    ]);
    expect(lines.filter((l) => l.level === 'ERROR')).toEqual([]);
  });

  it('never lets an older pair overwrite a newer one (version condition)', async () => {
    const record = await connect('r-version');
    await refresher().getAccessToken('r-version', { forceRefresh: true });
    // Under a lease of its own, so only the version condition can refuse the write.
    await stores.tokens.acquireLease('r-version', 'stale-holder', Date.now(), 60_000);

    await expect(
      stores.tokens.saveRefresh({
        userId: 'r-version',
        owner: 'stale-holder',
        version: record.version,
        tokens: { ...record, accessToken: 'stale' },
        now: 0,
        nextRefreshAt: 0,
      }),
    ).rejects.toBeInstanceOf(ConcurrentUpdateError);
    expect((await stores.tokens.get('r-version'))!.accessToken).not.toBe('stale');
  });

  it('releases only its own lease', async () => {
    await connect('r-lease');
    await stores.tokens.acquireLease('r-lease', 'owner-a', Date.now(), 60_000);

    await stores.tokens.releaseLease('r-lease', 'owner-b');
    expect((await stores.tokens.get('r-lease'))!.leaseOwner).toBe('owner-a');
    await stores.tokens.releaseLease('r-lease', 'owner-a');
    expect((await stores.tokens.get('r-lease'))!.leaseOwner).toBeUndefined();
  });
});

describe('Reader without the client secret (remote mode)', () => {
  const remoteEnv = () => ({
    DYNAMODB_ENDPOINT: env.DYNAMODB_ENDPOINT,
    TOKENS_TABLE: env.TOKENS_TABLE,
    REFRESH_FUNCTION_NAME: 'broker-refresh',
  });

  interface RefreshFunction {
    /** Calls the handler as Lambda's Invoke would. */
    readonly invokeRefresh: RefreshInvoker;
    /** The payloads it received. */
    readonly requests: unknown[];
    /** Its log lines (JSON). */
    readonly log: string[];
    dispose(): void;
  }

  let refreshFunction: RefreshFunction | undefined;
  afterEach(() => refreshFunction?.dispose());

  /**
   * The broker's refresh function as its Lambda entry builds it (createRefreshFunctionHandler over
   * createServices), configured from this file's tables and sandbox, each request and answer passed
   * through JSON as Lambda's Invoke does. Its log lines are kept, not printed.
   */
  function loadRefreshFunction(overrides: Record<string, string> = {}): RefreshFunction {
    const log: string[] = [];
    const logger = createLogger({ level: 'info', write: (line) => log.push(line) });
    const services = createServices({ ...env, LOG_LEVEL: 'info', ...overrides }, { logger });
    const handler = createRefreshFunctionHandler(services);
    const requests: unknown[] = [];
    const invokeRefresh: RefreshInvoker = async (request) => {
      const payload: unknown = JSON.parse(JSON.stringify(request));
      requests.push(payload);
      return JSON.parse(JSON.stringify(await handler(payload))) as RefreshFunctionResult;
    };
    refreshFunction = { invokeRefresh, requests, log, dispose: () => dynamoClient(services).destroy() };
    return refreshFunction;
  }

  const remoteReader = (invokeRefresh: RefreshInvoker) => createTokenReader({ env: remoteEnv(), invokeRefresh });

  it('returns a fresh stored token without invoking the refresh function', async () => {
    const stored = await connect('r-remote-fresh');
    const broker = loadRefreshFunction();

    const token = await remoteReader(broker.invokeRefresh).getAccessToken('r-remote-fresh');

    expect(token.accessToken).toBe(stored.accessToken);
    expect(broker.requests).toEqual([]);
  });

  it('reads only the reader attributes, never the refresh token', async () => {
    const stored = await connect('r-remote-projection');
    const sent: unknown[] = [];
    const dynamo = Object.create(stores.client) as typeof stores.client;
    dynamo.send = ((command: { input: unknown }) => {
      sent.push(command.input);
      return stores.client.send(command as never);
    }) as typeof stores.client.send;

    const token = await createTokenReader({
      env: remoteEnv(),
      dynamo,
      invokeRefresh: loadRefreshFunction().invokeRefresh,
    }).getAccessToken('r-remote-projection');

    expect(token.accessToken).toBe(stored.accessToken);
    expect(sent).toHaveLength(1);
    const names = Object.values(
      (sent[0] as { ExpressionAttributeNames: Record<string, string> }).ExpressionAttributeNames,
    );
    expect(names.sort()).toEqual([...READER_ATTRIBUTES].sort());
    expect(names).not.toContain('refreshToken');
  });

  it('has the refresh function refresh an expired token, then reads what it wrote', async () => {
    const before = await connect('r-remote');
    await expire('r-remote');
    await sandbox.resetStats();
    const broker = loadRefreshFunction();

    const token = await remoteReader(broker.invokeRefresh).getAccessToken('r-remote');

    expect(broker.requests).toEqual([{ userId: 'r-remote', marginSeconds: 300 }]);
    const stored = (await stores.tokens.get('r-remote'))!;
    expect(token).toEqual({
      userId: 'r-remote',
      accessToken: stored.accessToken,
      expiresAt: stored.expiresAt,
      scope: stored.scope,
      tokenType: 'bearer',
    });
    expect(stored.accessToken).not.toBe(before.accessToken);
    expect(stored.version).toBe(before.version + 1);
    expect(token.expiresAt).toBeGreaterThan(Date.now() / 1000 + 1700);
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 1 });
    expect(broker.log.join('')).not.toContain(stored.refreshToken);
  });

  it('forces a refresh through the refresh function when asked', async () => {
    const before = await connect('r-remote-force');
    // Honoured every time here; the minimum interval has its own tests (reader-limits.test.ts).
    const broker = loadRefreshFunction({ FORCE_REFRESH_MIN_INTERVAL_SECONDS: '0' });

    const token = await remoteReader(broker.invokeRefresh).getAccessToken('r-remote-force', { forceRefresh: true });

    expect(broker.requests).toEqual([{ userId: 'r-remote-force', forceRefresh: true, marginSeconds: 300 }]);
    expect(token.accessToken).not.toBe(before.accessToken);
    expect(token.accessToken).toBe((await stores.tokens.get('r-remote-force'))!.accessToken);
  });

  it('gets ReauthRequiredError when the refresh function finds the grant revoked', async () => {
    await connect('r-remote-revoked');
    await sandbox.revokeAccount('r-remote-revoked');
    await expire('r-remote-revoked');
    const broker = loadRefreshFunction();

    const error = await remoteReader(broker.invokeRefresh)
      .getAccessToken('r-remote-revoked')
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ReauthRequiredError);
    expect(error).toMatchObject({ code: 'REAUTH_REQUIRED', userId: 'r-remote-revoked' });
    expect((await stores.tokens.get('r-remote-revoked'))!.status).toBe('reauth_required');
  });

  it('gets ProviderUnavailableError, with the reason, when the provider is down', async () => {
    await connect('r-remote-outage');
    await expire('r-remote-outage');
    await sandbox.failToken('503');
    const broker = loadRefreshFunction();

    const error = await remoteReader(broker.invokeRefresh)
      .getAccessToken('r-remote-outage')
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect(error).toMatchObject({
      code: 'PROVIDER_UNAVAILABLE',
      message: 'the token endpoint answered with status 503',
    });
    expect((await stores.tokens.get('r-remote-outage'))!).toMatchObject({ status: 'active', consecutiveFailures: 1 });
  });

  it('gets UnknownUserError when the user was disconnected between its read and the refresh', async () => {
    await connect('r-remote-gone');
    await expire('r-remote-gone');
    const broker = loadRefreshFunction();
    const disconnectFirst: RefreshInvoker = async (request) => {
      await stores.tokens.delete(request.userId);
      return broker.invokeRefresh(request);
    };

    const error = await remoteReader(disconnectFirst)
      .getAccessToken('r-remote-gone')
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(UnknownUserError);
    expect(error).toMatchObject({ code: 'UNKNOWN_USER', userId: 'r-remote-gone' });
  });

  it('gets a typed RefreshFunctionError (never a raw error) when the refresh function fails unexpectedly', async () => {
    await connect('r-remote-broken');
    await expire('r-remote-broken');
    // A broker whose table is missing: DynamoDB's ResourceNotFoundException is no broker error.
    const broker = loadRefreshFunction({ TOKENS_TABLE: 'no-such-table' });

    const error = await remoteReader(broker.invokeRefresh)
      .getAccessToken('r-remote-broken')
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RefreshFunctionError);
    expect(error).toMatchObject({
      code: 'REFRESH_FUNCTION_FAILED',
      remoteCode: 'INTERNAL',
      message: 'the refresh function failed ("INTERNAL"): the refresh failed unexpectedly',
    });
    const logged = broker.log.map((line) => JSON.parse(line));
    expect(logged.filter((l) => l.level === 'ERROR')).toEqual([
      expect.objectContaining({
        level: 'ERROR',
        message: 'refresh failed unexpectedly',
        userId: 'r-remote-broken',
        error: expect.objectContaining({ name: 'ResourceNotFoundException' }),
      }),
    ]);
  });
});
