/**
 * Faults survived, and said clearly: DynamoDB Local behind a seeded fault proxy
 * (test/support/fault-proxy.ts) that answers a share of the broker's requests with DynamoDB's own
 * `ProvisionedThroughputExceededException` before forwarding (so nothing throttled lands), the
 * sandbox provider counting every refresh it is asked for, and the real tokens CLI.
 *
 * What must hold, whatever the share: `tokens get` exits 0 or 5 (typed, retryable, "nothing lost"),
 * never 1 with a raw SDK error; no refresh token is presented twice (the sandbox counts exactly one
 * refresh per user); nobody is marked `reauth_required`; everyone reads once the faults stop.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { KeyUnavailableError } from '../../functions/core/errors';
import { readProviderConfig, readStoreConfig } from '../../functions/core/config';
import { RETRY_AFTER_SECONDS } from '../../functions/core/result-page';
import { createDynamoClient } from '../../functions/adapters/dynamo';
import { logEventPublisher } from '../../functions/adapters/events';
import { createProviderClient } from '../../functions/adapters/provider';
import { DynamoTokenStore } from '../../functions/adapters/token-store';
import { handleLogin } from '../../functions/flows/login-flow';
import { completeAuthorization } from '../../infra/local/sandbox/headless';
import { DynamoSessionStore } from '../../functions/adapters/session-store';
import type { FieldCipher } from '../../functions/adapters/field-cipher';
import { runCli } from '../../functions/reader/cli';
import { createTokenReader } from '../../functions/reader/index';
import { brokerEnv, connectUser, expireAccessToken } from '../support/connect';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy';
import { useFileStack } from '../support/file-stack';
import { getEvent, cookiePair } from '../support/events';
import { visitCallback } from '../support/callback';
import { captureLogger } from '../support/logs';
import { START_REAL_PARTS_TIMEOUT_MS } from '../support/stores';

const REDIRECT = 'http://localhost:3997/callback';
const ROOT = join(__dirname, '..', '..');
const USERS = 5;
const READERS_PER_USER = 4;

const stack = useFileStack('faults', {
  clientId: 'faults-client',
  clientSecret: 'faults-secret',
  redirectUris: [REDIRECT],
});
let proxy: FaultProxy;
/** The broker's settings with DynamoDB behind the proxy. */
let env: Record<string, string>;
let round = 0;

async function cli(...argv: string[]) {
  const err: string[] = [];
  const out: string[] = [];
  const code = await runCli(argv, env, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err: err.join('\n') };
}

/** Connects `count` new users (straight to DynamoDB Local) and expires their access tokens. */
async function expiredUsers(count: number): Promise<string[]> {
  round++;
  const { sandbox, stores } = stack;
  const direct = brokerEnv(sandbox, stores, REDIRECT);
  const users = Array.from({ length: count }, (_, i) => `faults-${round}-${i}`);
  for (const login of users) {
    await connectUser(login, {
      provider: readProviderConfig(direct),
      secret: sandbox.clientSecret,
      stores,
      logger: captureLogger().logger,
    });
    await expireAccessToken(stores, login);
  }
  return users;
}

/**
 * Runs READERS_PER_USER concurrent `tokens get` per user under `share` throttling of every request,
 * then stops the faults and checks that nothing was lost.
 */
async function readersUnder(share: number) {
  const users = await expiredUsers(USERS);
  await stack.sandbox.resetStats();
  proxy.resetStats();
  proxy.setRules([{ share, fault: 'throttle' }]);
  const runs = await Promise.all(
    users.flatMap((user) => Array.from({ length: READERS_PER_USER }, () => cli('get', user))),
  );
  const throttled = Object.values(proxy.stats()).reduce((sum, op) => sum + (op.faults.throttle ?? 0), 0);
  proxy.setRules([]);

  const after = await Promise.all(users.map((user) => cli('get', user)));
  const records = await Promise.all(users.map((user) => stack.stores.tokens.get(user)));
  return { users, runs, after, records, throttled, refreshes: (await stack.sandbox.stats()).refreshToken };
}

beforeAll(async () => {
  proxy = await startFaultProxy({ target: process.env.DYNAMODB_ENDPOINT!, seed: 20261127 });
  env = brokerEnv(stack.sandbox, stack.stores, REDIRECT, {
    DYNAMODB_ENDPOINT: proxy.url,
    // `refresh` right after a refresh (the dangerous window's proof): the interval has its own tests.
    FORCE_REFRESH_MIN_INTERVAL_SECONDS: '0',
  });
}, START_REAL_PARTS_TIMEOUT_MS);

afterAll(async () => {
  await proxy?.stop();
});

describe('Faults: DynamoDB throttled under concurrent readers', () => {
  it.each([0.3, 0.6])(
    'at %p throttling: every tokens get exits 0 or 5 (typed, retryable), nothing is presented twice, nobody must sign in again, everyone reads afterwards',
    async (share) => {
      const { runs, after, records, throttled, refreshes } = await readersUnder(share);

      expect(throttled).toBeGreaterThan(0);
      for (const run of runs) {
        expect([0, 5]).toContain(run.code);
        if (run.code === 5) {
          // Which dependency, that nothing was lost, and the stable code: never a raw SDK error.
          expect(run.err).toMatch(
            /^error: .+ Nothing was lost: try again .+ \((STORE_UNAVAILABLE|REFRESH_IN_PROGRESS)\)$/,
          );
          expect(run.err).not.toMatch(/ProvisionedThroughputExceededException: /);
        } else {
          expect(JSON.parse(run.out[0]).accessToken).toEqual(expect.any(String));
        }
      }
      // Exactly one refresh per user at the provider: no refresh token was ever presented twice.
      expect(refreshes).toBe(USERS);
      for (const record of records) {
        expect(record).toMatchObject({ status: 'active' });
        expect(record?.expiresAt).toBeGreaterThan(Date.now() / 1000);
      }
      expect(after.map((run) => run.code)).toEqual(Array(USERS).fill(0));
    },
    180_000,
  );

  it('keeps the rotated pair when exactly its write is throttled, again and again (the dangerous window)', async () => {
    const [user] = await expiredUsers(1);
    await stack.sandbox.resetStats();
    proxy.resetStats();
    // Only the write that stores the refreshed pair (it alone sets tokensIssuedAt under the lease).
    proxy.setRules([
      {
        operations: ['UpdateItem'],
        match: (body) => JSON.stringify(body).includes('tokensIssuedAt'),
        share: 1,
        fault: 'throttle',
        limit: 4,
      },
    ]);
    const logs = captureLogger();

    const token = await createTokenReader({ env, logger: logs.logger }).getAccessToken(user);

    proxy.setRules([]);
    expect(proxy.stats().UpdateItem.faults.throttle).toBe(4);
    expect((await stack.sandbox.stats()).refreshToken).toBe(1);
    const stored = await stack.stores.tokens.get(user);
    expect(stored).toMatchObject({ status: 'active', accessToken: token.accessToken });
    // The next refresh presents the rotated token the sandbox issued, and the sandbox takes it.
    const { code } = await cli('refresh', user);
    expect(code).toBe(0);
    expect((await stack.sandbox.stats()).refreshToken).toBe(2);
    expect(logs.text()).not.toContain(stored!.refreshToken);
  }, 120_000);

  it('tokens get as a real process exits 0 or 5 at 60% throttling', async () => {
    const [user] = await expiredUsers(1);
    proxy.resetStats();
    proxy.setRules([{ share: 0.6, fault: 'throttle' }]);
    const run = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'functions/reader/cli.ts', 'get', user], {
        cwd: ROOT,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.on('close', (code) => resolve({ code, out, err }));
    });
    proxy.setRules([]);
    // The process went through the proxy.
    expect(proxy.stats().GetItem.requests).toBeGreaterThan(0);
    expect([0, 5]).toContain(run.code);
    if (run.code === 0) expect(JSON.parse(run.out).userId).toBe(user);
    else expect(run.err).toMatch(/^error: .+ Nothing was lost: try again .+\)\n$/);
  }, 120_000);
});

describe('Faults: sign-ins under throttling', () => {
  it('each sign-in at 40% throttling either completes, or shows the 503 page with Retry-After and stores nothing', async () => {
    const { sandbox, stores } = stack;
    const client = createDynamoClient(readStoreConfig(env));
    const logger = captureLogger().logger;
    const provider = readProviderConfig(env);
    const deps = {
      provider,
      client: createProviderClient(provider, async () => sandbox.clientSecret),
      sessions: new DynamoSessionStore(client, stores.config.sessionsTable, stores.cipher),
      tokens: new DynamoTokenStore(client, stores.config.tokensTable, stores.cipher),
      events: logEventPublisher(logger),
      logger,
    };
    proxy.resetStats();
    proxy.setRules([{ share: 0.4, fault: 'throttle' }]);
    const outcomes: string[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const login = `signin-${round}-${i}`;
        const started = await handleLogin(getEvent('/login'), { ...deps, flow: { returnToAllowlist: [] } });
        if (started.statusCode === 503) {
          expect(started.headers['retry-after']).toBe(String(RETRY_AFTER_SECONDS));
          outcomes.push('login-503');
          continue;
        }
        const back = await completeAuthorization(started.headers.location, { login });
        const { page } = await visitCallback(back.search.slice(1), [cookiePair(started.cookies?.[0])], deps);
        // Read straight from DynamoDB Local, not through the proxy.
        const stored = await stores.tokens.get(login);
        if (page.statusCode === 200) {
          expect(stored).toMatchObject({ userId: login, status: 'active' });
          outcomes.push('connected');
        } else {
          expect(page.statusCode).toBe(503);
          expect(page.headers['retry-after']).toBe(String(RETRY_AFTER_SECONDS));
          expect(page.body).toContain('Nothing was saved.');
          // Nothing, or (when the call's limit cut a write already on its way, which then landed) the
          // whole grant: never part of one.
          if (stored) expect(stored).toMatchObject({ userId: login, status: 'active', version: 1 });
          outcomes.push('callback-503');
        }
      }
    } finally {
      proxy.setRules([]);
      client.destroy();
    }
    expect(Object.values(proxy.stats()).reduce((sum, op) => sum + (op.faults.throttle ?? 0), 0)).toBeGreaterThan(0);
    expect(outcomes).toHaveLength(4);
  }, 180_000);
});

/** The file's field key, whose decryption fails like a throttled KMS while `down` is true. */
function flakyKey(down: boolean): { cipher: FieldCipher; down: boolean } {
  const { cipher } = stack.stores;
  const key = {
    down,
    cipher: {
      encrypt: (context, plaintext) => cipher.encrypt(context, plaintext),
      ready: (purpose) => cipher.ready(purpose),
      decrypt: async (context, stored) => {
        if (key.down) throw new KeyUnavailableError('kms:Decrypt failed (ThrottlingException)', { retryable: true });
        return cipher.decrypt(context, stored);
      },
    } satisfies FieldCipher,
  };
  return key;
}

describe('Faults: the callback’s attempt when the field key cannot open it', () => {
  it('puts a consumed attempt back as it was, so the same callback works once KMS is back', async () => {
    const { stores } = stack;
    const key = flakyKey(true);
    const sessions = new DynamoSessionStore(stores.client, stores.config.sessionsTable, key.cipher);
    const now = Math.floor(Date.now() / 1000);
    await sessions.putAttempt({
      state: 'state-kms',
      codeVerifier: 'v'.repeat(43),
      bindingHash: 'h',
      expiresAt: now + 600,
    });

    await expect(sessions.consumeAttempt('state-kms', 'h', now)).rejects.toBeInstanceOf(KeyUnavailableError);

    key.down = false;
    const again = await sessions.consumeAttempt('state-kms', 'h', now);
    expect(again).toMatchObject({ outcome: 'consumed', attempt: { codeVerifier: 'v'.repeat(43) } });
    await expect(sessions.consumeAttempt('state-kms', 'h', now)).resolves.toEqual({ outcome: 'invalid' });
  });

  it('reopens a pending connection closed while KMS could not open its tokens, and one whose grant was not stored', async () => {
    const { stores } = stack;
    const key = flakyKey(false);
    const sessions = new DynamoSessionStore(stores.client, stores.config.sessionsTable, key.cipher);
    const now = Math.floor(Date.now() / 1000);
    const pending = {
      codeHash: `hash-${round}-reopen`,
      appUserId: 'app-1',
      profileId: 'kroger-1',
      tokens: { accessToken: 'a-1', refreshToken: 'r-1', tokenType: 'bearer', scope: 's', expiresAt: now + 1800 },
      expiresAt: now + 600,
      closedRetention: now + 600 + 86_400,
    };
    await sessions.putPending(pending);

    key.down = true;
    await expect(sessions.consumePending(pending.codeHash, 'app-1', now)).rejects.toBeInstanceOf(KeyUnavailableError);
    key.down = false;
    const consumed = await sessions.consumePending(pending.codeHash, 'app-1', now);
    expect(consumed).toMatchObject({ outcome: 'consumed', pending: { tokens: { refreshToken: 'r-1' } } });

    // The grant write then failed for sure: the flow reopens it, and the same code completes again.
    await sessions.reopenPending(pending, 'app-1', now);
    await expect(sessions.consumePending(pending.codeHash, 'app-1', now)).resolves.toMatchObject({
      outcome: 'consumed',
      pending: { tokens: { accessToken: 'a-1', refreshToken: 'r-1' } },
    });
    // Never reopened for someone else's close.
    await sessions.reopenPending(pending, 'app-2', now);
    await expect(sessions.consumePending(pending.codeHash, 'app-1', now)).resolves.toEqual({ outcome: 'used' });
  });
});
