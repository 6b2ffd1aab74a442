/**
 * No readable refresh token at rest (issue 12, point 1), against DynamoDB Local and the sandbox
 * provider, with a local key file through the same envelope code as KMS: a raw Scan of either table
 * (what an operator with Scan, a table export or a restored backup sees) holds no refresh token and
 * no code verifier in readable form, while logins, reads and refreshes work; a ciphertext moved to
 * another item does not decrypt; items stored in plaintext before encryption keep working and are
 * sealed by their next write, so nobody is logged out by the upgrade.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { type AttributeValue, ScanCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import type { ProviderConfig } from '../../functions/core/config';
import { DecryptionFailedError } from '../../functions/core/errors';
import { s256 } from '../../functions/core/login';
import { logEventPublisher } from '../../functions/adapters/events';
import { isSealed } from '../../functions/adapters/field-cipher';
import { createProviderClient } from '../../functions/adapters/provider';
import { DynamoTokenStore, type TokenStore } from '../../functions/adapters/token-store';
import { handleLogin } from '../../functions/flows/login-flow';
import { createTokenRefresher, type TokenRefresher } from '../../functions/flows/single-flight-refresh';
import { runCli } from '../../functions/reader/cli';
import { createTokenReader } from '../../functions/reader/index';
import { createServices, tokenStore } from '../../functions/services';
import type { SandboxHandle } from '../../infra/local/sandbox/launch';
import { brokerEnv, connectUser, sandboxProviderConfig } from '../support/connect';
import { getEvent } from '../support/events';
import { captureLogger } from '../support/logs';
import { createTestFieldKey, type TestStores } from '../support/stores';
import { useFileStack } from '../support/file-stack';

const REDIRECT = 'http://localhost:3994/callback';
const SECRET = 'at-rest-secret';
/** What an envelope looks like; a refresh token of the sandbox (or Kroger) never does. */
const ENVELOPE = /^v1\.local\.[\w-]+\.[\w-]{16}\.[\w-]+\.[\w-]{22}$/;

let sandbox: SandboxHandle;
let stores: TestStores;
let provider: ProviderConfig;
let logs: ReturnType<typeof captureLogger>;

type Item = Record<string, AttributeValue>;

/** Every item of a table as a raw Scan returns it: what anyone with `dynamodb:Scan` reads. */
async function scan(table: string): Promise<Item[]> {
  const items: Item[] = [];
  let start: Item | undefined;
  do {
    const out = await stores.client.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

const rawItem = async (userId: string) =>
  (await scan(stores.config.tokensTable)).find((item) => item.userId.S === userId)!;

/** Overwrites one attribute of a token item, bypassing the store (an attacker with write access, or an old item). */
async function setRaw(userId: string, attribute: string, value: string) {
  await stores.client.send(
    new UpdateItemCommand({
      TableName: stores.config.tokensTable,
      Key: { userId: { S: userId } },
      UpdateExpression: 'SET #a = :v',
      ExpressionAttributeNames: { '#a': attribute },
      ExpressionAttributeValues: { ':v': { S: value } },
    }),
  );
}

function refresher(tokens: TokenStore = stores.tokens): TokenRefresher {
  return createTokenRefresher({
    tokens,
    client: createProviderClient(provider, async () => SECRET),
    events: logEventPublisher(logs.logger),
    logger: logs.logger,
    // These tests force refreshes back to back; the per-user limit is tested in reader-limits.test.ts.
    forceRefreshMinIntervalSeconds: 0,
  });
}

const connect = (login: string) => connectUser(login, { provider, secret: SECRET, stores, logger: logs.logger });

const stack = useFileStack('atrest', { clientId: 'at-rest-client', clientSecret: SECRET, redirectUris: [REDIRECT] });

beforeAll(() => {
  ({ sandbox, stores } = stack);
  provider = sandboxProviderConfig(sandbox, REDIRECT);
});

beforeEach(async () => {
  logs = captureLogger();
  await sandbox.setRotation({ omitRefreshToken: false });
  await sandbox.resetStats();
});

describe('At rest: the tokens table', () => {
  it('holds no refresh token in readable form after logins and refreshes, while reads and refreshes work', async () => {
    const users = ['rest-a', 'rest-b', 'rest-c'];
    const plaintexts: string[] = [];
    for (const user of users) plaintexts.push((await connect(user)).refreshToken);
    // A forced refresh rotates the token; the new one is stored sealed too.
    const before = (await stores.tokens.get('rest-a'))!;
    const token = await refresher().getAccessToken('rest-a', { forceRefresh: true });
    const after = (await stores.tokens.get('rest-a'))!;
    plaintexts.push(before.refreshToken, after.refreshToken);

    const items = await scan(stores.config.tokensTable);
    const dump = JSON.stringify(items);

    expect(items.map((item) => item.userId.S).sort()).toEqual(users);
    for (const item of items) expect(item.refreshToken.S).toMatch(ENVELOPE);
    for (const plaintext of plaintexts) {
      expect(plaintext.length).toBeGreaterThan(20);
      expect(dump).not.toContain(plaintext);
    }
    // The store reads them back; the provider took the decrypted token (it rotated).
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(token.accessToken).toBe(after.accessToken);
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 1 });
  });

  it('lets a reader without any key read the access token (readers never touch the refresh token)', async () => {
    const stored = await connect('rest-reader');
    const reader = createTokenReader({
      env: {
        DYNAMODB_ENDPOINT: stores.config.endpoint!,
        TOKENS_TABLE: stores.config.tokensTable,
        REFRESH_FUNCTION_NAME: 'broker-refresh',
      },
      invokeRefresh: async () => {
        throw new Error('not expected: the token is fresh');
      },
    });

    await expect(reader.getAccessToken('rest-reader')).resolves.toMatchObject({ accessToken: stored.accessToken });
  });

  it("refuses a refresh token copied into another user's item, frees the lease, and never sends it", async () => {
    await connect('rest-victim');
    await connect('rest-thief');
    await setRaw('rest-thief', 'refreshToken', (await rawItem('rest-victim')).refreshToken.S!);
    await sandbox.resetStats();

    await expect(stores.tokens.get('rest-thief')).rejects.toThrow(DecryptionFailedError);
    await expect(refresher().getAccessToken('rest-thief', { forceRefresh: true })).rejects.toThrow(
      /"refreshToken" of tokens item "rest-thief" does not decrypt/,
    );

    expect(await sandbox.stats()).toMatchObject({ refreshToken: 0 });
    // The lease taken for the refresh was given back at once, not left to expire.
    expect((await rawItem('rest-thief')).leaseOwner).toBeUndefined();
    // The victim's own item is untouched and still works.
    await expect(refresher().getAccessToken('rest-victim', { forceRefresh: true })).resolves.toMatchObject({
      userId: 'rest-victim',
    });
  });

  it('cannot be read with another key file (another stack, a copied table)', async () => {
    await connect('rest-other-key');
    const elsewhere = new DynamoTokenStore(
      stores.client,
      stores.config.tokensTable,
      createTestFieldKey('other').cipher,
    );

    await expect(elsewhere.get('rest-other-key')).rejects.toThrow(/was not wrapped by this local key file/);
  });
});

describe('At rest: operators without the field key', () => {
  it('disconnect against a deployed stack deletes a sealed item without needing the field key', async () => {
    await connect('rest-disconnect');
    const cloudFormation = mockClient(CloudFormationClient);
    try {
      // The stack's outputs name its tables; they name no key: the operator's CLI gets none.
      cloudFormation.on(DescribeStacksCommand).resolves({
        Stacks: [
          {
            StackName: 'broker',
            StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/broker/1',
            StackStatus: 'UPDATE_COMPLETE',
            CreationTime: new Date(),
            Outputs: [
              { OutputKey: 'TokensTableName', OutputValue: stores.config.tokensTable },
              { OutputKey: 'SessionsTableName', OutputValue: stores.config.sessionsTable },
              { OutputKey: 'RefreshFunctionName', OutputValue: 'broker-refresh' },
              { OutputKey: 'LoginUrl', OutputValue: 'https://auth.example.com/login' },
            ],
          },
        ],
      });
      const out: string[] = [];
      const err: string[] = [];

      const code = await runCli(
        ['--stack', 'broker', 'disconnect', 'rest-disconnect'],
        {},
        { out: (line) => out.push(line), err: (line) => err.push(line) },
        { dynamo: stores.client },
      );

      expect({ code, out }).toEqual({
        code: 0,
        out: [JSON.stringify({ userId: 'rest-disconnect', disconnected: true, revoked: false })],
      });
      expect(err.join('\n')).not.toMatch(/FIELD_KEY/);
      expect(await stores.tokens.get('rest-disconnect')).toBeUndefined();
    } finally {
      cloudFormation.restore();
    }
  });
});

describe('At rest: items stored in plaintext before encryption', () => {
  it('keeps a user signed in: the plaintext refresh token is read, used, and replaced by a sealed one', async () => {
    const { refreshToken } = await connect('rest-legacy');
    await setRaw('rest-legacy', 'refreshToken', refreshToken);
    expect((await rawItem('rest-legacy')).refreshToken.S).toBe(refreshToken);

    expect((await stores.tokens.get('rest-legacy'))!.refreshToken).toBe(refreshToken);
    await refresher().getAccessToken('rest-legacy', { forceRefresh: true });

    const item = await rawItem('rest-legacy');
    expect(item.refreshToken.S).toMatch(ENVELOPE);
    expect(item.status.S).toBe('active');
    expect(await sandbox.stats()).toMatchObject({ refreshToken: 1 });
    // And it goes on working: the sealed token refreshes again.
    await expect(refresher().getAccessToken('rest-legacy', { forceRefresh: true })).resolves.toMatchObject({
      userId: 'rest-legacy',
    });
  });

  it('seals a plaintext refresh token on the next refresh even when the provider does not rotate it', async () => {
    const { refreshToken } = await connect('rest-legacy-kept');
    await setRaw('rest-legacy-kept', 'refreshToken', refreshToken);
    await sandbox.setRotation({ omitRefreshToken: true });

    await refresher().getAccessToken('rest-legacy-kept', { forceRefresh: true });

    const item = await rawItem('rest-legacy-kept');
    expect(item.refreshToken.S).toMatch(ENVELOPE);
    expect(JSON.stringify(item)).not.toContain(refreshToken);
    expect((await stores.tokens.get('rest-legacy-kept'))!.refreshToken).toBe(refreshToken);
  });

  it('seals a plaintext refresh token on the next login', async () => {
    const { refreshToken } = await connect('rest-legacy-login');
    await setRaw('rest-legacy-login', 'refreshToken', refreshToken);

    await connect('rest-legacy-login');

    expect((await rawItem('rest-legacy-login')).refreshToken.S).toMatch(ENVELOPE);
  });
});

describe('At rest: FIELD_PLAINTEXT=refuse, once every item is sealed', () => {
  it('refuses a planted plaintext refresh token before any provider call, while sealed items work', async () => {
    const services = createServices(brokerEnv(sandbox, stores, REDIRECT, { FIELD_PLAINTEXT: 'refuse' }), {
      logger: logs.logger,
      dynamo: stores.client,
    });
    const strict = tokenStore(services);
    await connect('rest-strict-sealed');
    const { refreshToken } = await connect('rest-strict-planted');
    await setRaw('rest-strict-planted', 'refreshToken', refreshToken);
    await sandbox.resetStats();

    await expect(strict.get('rest-strict-planted')).rejects.toThrow(DecryptionFailedError);
    await expect(refresher(strict).getAccessToken('rest-strict-planted', { forceRefresh: true })).rejects.toMatchObject(
      { code: 'DECRYPTION_FAILED' },
    );
    expect(await sandbox.stats()).toEqual({ authorizationCode: 0, refreshToken: 0 });
    expect((await rawItem('rest-strict-planted')).refreshToken.S).toBe(refreshToken);
    expect(logs.lines.join('\n')).not.toContain(refreshToken);

    await expect(refresher(strict).getAccessToken('rest-strict-sealed', { forceRefresh: true })).resolves.toMatchObject(
      { userId: 'rest-strict-sealed' },
    );
    expect(await sandbox.stats()).toEqual({ authorizationCode: 0, refreshToken: 1 });
  });

  it('refuses a value other than accept or refuse when the store is built', () => {
    const services = createServices(brokerEnv(sandbox, stores, REDIRECT, { FIELD_PLAINTEXT: 'ignore' }), {
      logger: logs.logger,
      dynamo: stores.client,
    });
    expect(() => tokenStore(services)).toThrow('FIELD_PLAINTEXT must be one of accept, refuse, got "ignore"');
  });
});

describe('At rest: the sessions table', () => {
  it('holds the PKCE code verifier of a login attempt sealed, bound to the attempt', async () => {
    const started = await handleLogin(getEvent('/login'), {
      provider,
      flow: { returnToAllowlist: [] },
      sessions: stores.sessions,
      logger: logs.logger,
    });
    const authorize = new URL(started.headers.location);
    const state = authorize.searchParams.get('state')!;

    const attempt = (await scan(stores.config.sessionsTable)).find((item) => item.id.S === `attempt#${state}`)!;

    expect(attempt.codeVerifier.S).toMatch(ENVELOPE);
    // It is the real verifier, under the envelope: it matches the challenge sent to the provider.
    const verifier = await stores.cipher.decrypt(
      { purpose: 'sessions', field: 'codeVerifier', id: `attempt#${state}` },
      attempt.codeVerifier.S!,
    );
    expect(s256(verifier)).toBe(authorize.searchParams.get('code_challenge'));
    expect(JSON.stringify(attempt)).not.toContain(verifier);
    // Moved into the tokens table as a refresh token, it does not decrypt.
    await connect('rest-verifier-move');
    await setRaw('rest-verifier-move', 'refreshToken', attempt.codeVerifier.S!);
    await expect(stores.tokens.get('rest-verifier-move')).rejects.toThrow(DecryptionFailedError);
  });

  it('still completes a sign-in whose attempt was stored with a plaintext verifier before the upgrade', async () => {
    // connectUser runs /login and /callback; in between, the attempt is rewritten as an old one.
    const sessions = Object.create(stores.sessions) as typeof stores.sessions;
    sessions.putAttempt = async (attempt) => {
      await stores.sessions.putAttempt(attempt);
      await stores.client.send(
        new UpdateItemCommand({
          TableName: stores.config.sessionsTable,
          Key: { id: { S: `attempt#${attempt.state}` } },
          UpdateExpression: 'SET codeVerifier = :v',
          ExpressionAttributeValues: { ':v': { S: attempt.codeVerifier! } },
        }),
      );
      const raw = (await scan(stores.config.sessionsTable)).find((item) => item.id.S === `attempt#${attempt.state}`)!;
      expect(isSealed(raw.codeVerifier.S!)).toBe(false);
    };

    const record = await connectUser('rest-legacy-attempt', {
      provider,
      secret: SECRET,
      stores: { ...stores, sessions },
      logger: logs.logger,
    });

    expect(record.userId).toBe('rest-legacy-attempt');
    expect(await sandbox.stats()).toMatchObject({ authorizationCode: 1 });
  });
});
