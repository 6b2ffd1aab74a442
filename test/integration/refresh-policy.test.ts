/**
 * The refresh policy end to end, against DynamoDB Local and the sandbox provider, with the scheduled
 * sweep run on a clock moved forward: under `on-read` a user nobody reads costs no token call until
 * its keep-alive is due, then exactly one; under `eager` the sweep refreshes before the access token
 * expires, as it always did. Token calls are the sandbox's own count.
 */
import type { ProviderConfig } from '../../functions/core/config';
import type { RefreshPolicy } from '../../functions/core/tokens';
import { logEventPublisher } from '../../functions/adapters/events';
import { createProviderClient } from '../../functions/adapters/provider';
import { createTokenRefresher } from '../../functions/flows/single-flight-refresh';
import { runRefreshSweep } from '../../functions/flows/refresh-sweep';
import { createRefreshFunctionHandler, createScheduledRefresherHandler } from '../../functions/handlers';
import { tokenStore } from '../../functions/services';
import { completeAuthorization } from '../../infra/local/sandbox/headless';
import type { SandboxHandle } from '../../infra/local/sandbox/launch';
import { type LocalStack, startLocalStack } from '../../infra/local/stack';
import { connectUser, sandboxProviderConfig } from '../support/connect';
import { captureLogger } from '../support/logs';
import type { TestStores } from '../support/stores';
import { useFileStack } from '../support/file-stack';

const REDIRECT = 'http://localhost:3996/callback';
const SECRET = 'policy-secret';
const MINUTE = 60;
const DAY = 86_400;
const WEEK = 7 * DAY;
const WINDOW = 600;

const eager: RefreshPolicy = { name: 'eager', keepAliveSeconds: WEEK };
const onRead: RefreshPolicy = { name: 'on-read', keepAliveSeconds: WEEK };

let sandbox: SandboxHandle;
let stores: TestStores;
let provider: ProviderConfig;
let logs: ReturnType<typeof captureLogger>;

/** A clock `seconds` after `from` (epoch seconds), in epoch milliseconds. */
const at = (from: number, seconds: number) => () => (from + seconds) * 1000;

function refresher(policy: RefreshPolicy, nowMs: () => number) {
  return createTokenRefresher({
    tokens: stores.tokens,
    client: createProviderClient(provider, async () => SECRET),
    events: logEventPublisher(logs.logger),
    logger: logs.logger,
    nowMs,
    policy,
  });
}

/** One scheduled run under `policy` at `nowMs`, as the refresher Lambda runs it. */
function sweep(policy: RefreshPolicy, nowMs: () => number) {
  return runRefreshSweep(
    { tokens: stores.tokens, refresher: refresher(policy, nowMs), logger: logs.logger, nowMs },
    { windowSeconds: WINDOW },
  );
}

const tokenCalls = async () => (await sandbox.stats()).refreshToken;

const stack = useFileStack('policy', {
  clientId: 'policy-client',
  clientSecret: SECRET,
  redirectUris: [REDIRECT],
  accessTokenTtlSeconds: 900,
});

beforeAll(() => {
  ({ sandbox, stores } = stack);
  provider = sandboxProviderConfig(sandbox, REDIRECT);
});

beforeEach(async () => {
  logs = captureLogger();
  await sandbox.resetStats();
});

// Each test counts the token calls of its own users: the others leave the table.
const connected: string[] = [];
afterEach(async () => {
  for (const userId of connected.splice(0)) await stores.tokens.delete(userId);
});

/** Connects `login` through the real login and callback under `policy`; the user's tokens were issued at the result. */
async function connect(login: string, policy: RefreshPolicy) {
  const record = await connectUser(login, { provider, secret: SECRET, stores, logger: logs.logger, policy });
  connected.push(login);
  await sandbox.resetStats();
  return record;
}

describe('Refresh policy: on-read', () => {
  it('never refreshes an unread user before its keep-alive, then exactly once', async () => {
    const user = await connect('on-read-idle', onRead);
    const issued = user.tokensIssuedAt;
    expect(user.nextRefreshAt).toBe(issued + WEEK);

    // Token expired (15 minutes), a day idle (eager's daily refresh), nearly a week idle: nothing.
    for (const offset of [0, 16 * MINUTE, 31 * MINUTE, DAY + MINUTE, 6 * DAY, WEEK - WINDOW - MINUTE]) {
      const report = await sweep(onRead, at(issued, offset));
      expect({ offset, refreshed: report.refreshed, calls: await tokenCalls() }).toEqual({
        offset,
        refreshed: 0,
        calls: 0,
      });
    }
    expect((await stores.tokens.get('on-read-idle'))!.version).toBe(user.version);

    // The keep-alive comes within the window: one refresh, and the next keep-alive a week on.
    const dueAt = WEEK - WINDOW + MINUTE;
    const report = await sweep(onRead, at(issued, dueAt));
    expect(report).toMatchObject({ refreshed: 1, failed: 0 });
    expect(await tokenCalls()).toBe(1);
    const after = (await stores.tokens.get('on-read-idle'))!;
    expect(after.version).toBe(user.version + 1);
    expect(after.nextRefreshAt).toBe(issued + dueAt + WEEK);

    // Runs right after find nobody due: still exactly one call.
    await sweep(onRead, at(issued, dueAt + 5 * MINUTE));
    await sweep(onRead, at(issued, dueAt + DAY));
    expect(await tokenCalls()).toBe(1);
  });

  it('refreshes on read, and a read moves the keep-alive on', async () => {
    const user = await connect('on-read-reader', onRead);
    const readAt = user.tokensIssuedAt + 3 * DAY;

    const token = await refresher(onRead, at(readAt, 0)).getAccessToken('on-read-reader');

    expect(token.accessToken).not.toBe(user.accessToken);
    expect(await tokenCalls()).toBe(1);
    expect((await stores.tokens.get('on-read-reader'))!.nextRefreshAt).toBe(readAt + WEEK);
    // Past the login's keep-alive, but not the read's: the sweep leaves it alone.
    await sweep(onRead, at(user.tokensIssuedAt, WEEK + MINUTE));
    expect(await tokenCalls()).toBe(1);
  });

  it('does not refresh an expired token the sweep reaches when the user is not due by its schedule', async () => {
    // As when the index lags behind the item: the sweep asks for a user whose schedule moved on.
    const user = await connect('on-read-not-due', onRead);
    const now = user.tokensIssuedAt + DAY;

    const outcome = await refresher(onRead, at(now, 0)).refreshIfDue('on-read-not-due', {
      marginSeconds: WINDOW,
      dueBy: now + WINDOW,
    });

    expect(outcome).toBe('fresh');
    expect(await tokenCalls()).toBe(0);
    // Under eager the same expired token is refreshed: it is what the table promises direct readers.
    expect(
      await refresher(eager, at(now, 0)).refreshIfDue('on-read-not-due', {
        marginSeconds: WINDOW,
        dueBy: now + WINDOW,
      }),
    ).toBe('refreshed');
    expect(await tokenCalls()).toBe(1);
  });

  it('takes over a user scheduled under eager after one more refresh (switching policies)', async () => {
    const user = await connect('switched', eager);
    expect(user.nextRefreshAt).toBe(user.expiresAt);

    await sweep(onRead, at(user.tokensIssuedAt, 7 * MINUTE));
    expect(await tokenCalls()).toBe(1);
    const rescheduled = (await stores.tokens.get('switched'))!;
    expect(rescheduled.nextRefreshAt).toBe(user.tokensIssuedAt + 7 * MINUTE + WEEK);

    await sweep(onRead, at(user.tokensIssuedAt, DAY));
    expect(await tokenCalls()).toBe(1);
  });
});

describe('Refresh policy: eager', () => {
  it('refreshes an unread user before its access token expires, as it always did', async () => {
    const user = await connect('eager-idle', eager);
    const issued = user.tokensIssuedAt;

    expect((await sweep(eager, at(issued, 0))).refreshed).toBe(0);
    expect(await tokenCalls()).toBe(0);

    // 15-minute tokens, a 10-minute window: due from minute 5.
    expect((await sweep(eager, at(issued, 6 * MINUTE))).refreshed).toBe(1);
    expect(await tokenCalls()).toBe(1);
    const after = (await stores.tokens.get('eager-idle'))!;
    expect(after.nextRefreshAt).toBe(after.expiresAt);
  });
});

describe('Refresh policy: the handlers, as the local stack builds them from its environment', () => {
  /** A stack with 2-minute sandbox tokens: due at once under eager (10-minute window). */
  async function stackWith(env: Record<string, string>) {
    return startLocalStack({
      PORT: '0',
      DYNAMODB_ENDPOINT: process.env.DYNAMODB_ENDPOINT,
      TOKENS_TABLE: `policy-stack-tokens-${env.REFRESH_POLICY ?? 'default'}`,
      SESSIONS_TABLE: `policy-stack-sessions-${env.REFRESH_POLICY ?? 'default'}`,
      REFRESH_SCHEDULE_SECONDS: '0',
      SANDBOX_ACCESS_TOKEN_TTL: '120',
      FORCE_REFRESH_MIN_INTERVAL_SECONDS: '0',
      LOG_LEVEL: 'error',
      ...env,
    });
  }

  /** Runs the scheduled refresher's handler; its metric line (written at any level) is kept off the test output. */
  async function scheduledRun(stack: LocalStack) {
    const write = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      return await createScheduledRefresherHandler(stack.services)(undefined);
    } finally {
      write.mockRestore();
    }
  }

  /** A real login over HTTP: /login, the sandbox's pages, /callback. */
  async function login(stack: LocalStack, user: string) {
    const started = await fetch(stack.loginUrl, { redirect: 'manual' });
    const cookie = started.headers.getSetCookie()[0].split(';')[0];
    const back = await completeAuthorization(started.headers.get('location')!, { login: user });
    const done = await fetch(`${stack.baseUrl}/callback${back.search}`, { headers: { cookie }, redirect: 'manual' });
    // Stored: a 303 to the callback's own clean URL, which shows the result.
    expect({ status: done.status, location: done.headers.get('location') }).toEqual({
      status: 303,
      location: `${stack.baseUrl}/callback`,
    });
    return (await tokenStore(stack.services).get(user))!;
  }

  it('on-read: the callback schedules the keep-alive, the scheduled refresher leaves the user alone, the refresh function reschedules', async () => {
    const stack = await stackWith({ REFRESH_POLICY: 'on-read', KEEP_ALIVE_SECONDS: '86400' });
    try {
      const user = await login(stack, 'stack-on-read');
      expect(user.nextRefreshAt).toBe(user.tokensIssuedAt + 86_400);
      await stack.sandbox!.resetStats();

      const report = await scheduledRun(stack);
      expect(report).toMatchObject({ due: 0, refreshed: 0 });
      expect((await stack.sandbox!.stats()).refreshToken).toBe(0);

      expect(
        await createRefreshFunctionHandler(stack.services)({ userId: 'stack-on-read', forceRefresh: true }),
      ).toMatchObject({
        ok: true,
      });
      const after = (await tokenStore(stack.services).get('stack-on-read'))!;
      expect(after.nextRefreshAt).toBe(after.tokensIssuedAt + 86_400);
      expect((await stack.sandbox!.stats()).refreshToken).toBe(1);
    } finally {
      await stack.stop();
    }
  });

  it('eager (no setting): the scheduled refresher refreshes the same user before its token expires', async () => {
    const stack = await stackWith({});
    try {
      const user = await login(stack, 'stack-eager');
      expect(user.nextRefreshAt).toBe(user.expiresAt);
      await stack.sandbox!.resetStats();

      expect(await scheduledRun(stack)).toMatchObject({ refreshed: 1 });
      expect((await stack.sandbox!.stats()).refreshToken).toBe(1);
    } finally {
      await stack.stop();
    }
  });

  it('refuses to start with an unknown policy, naming the variable', async () => {
    await expect(stackWith({ REFRESH_POLICY: 'lazy' })).rejects.toThrow(/REFRESH_POLICY must be one of eager, on-read/);
  });
});
