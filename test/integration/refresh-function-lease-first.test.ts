/**
 * The refresh function's read path against DynamoDB Local and the sandbox: a reader has just read
 * the item and found the token stale, so the function goes straight to the lease (whose update
 * returns the item) instead of reading it again; a forced refresh still reads first. DynamoDB
 * commands are recorded as the client sends them, token calls by the sandbox.
 */
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { ProviderConfig } from '../../functions/core/config';
import { logEventPublisher } from '../../functions/adapters/events';
import { createProviderClient } from '../../functions/adapters/provider';
import { handleRefreshRequest } from '../../functions/flows/refresh-function-flow';
import { createTokenRefresher } from '../../functions/flows/single-flight-refresh';
import type { SandboxHandle } from '../../infra/local/sandbox/launch';
import { connectUser, sandboxProviderConfig } from '../support/connect';
import { captureLogger } from '../support/logs';
import type { TestStores } from '../support/stores';
import { useFileStack } from '../support/file-stack';

const REDIRECT = 'http://localhost:3995/callback';
const SECRET = 'lease-first-secret';

let sandbox: SandboxHandle;
let stores: TestStores;
let provider: ProviderConfig;
let logs: ReturnType<typeof captureLogger>;

const deps = () => ({
  refresher: createTokenRefresher({
    tokens: stores.tokens,
    client: createProviderClient(provider, async () => SECRET),
    events: logEventPublisher(logs.logger),
    logger: logs.logger,
    forceRefreshMinIntervalSeconds: 0,
  }),
  logger: logs.logger,
});

/** Makes the stored access token look expired, as it will be 30 minutes later. */
async function expire(userId: string) {
  await stores.client.send(
    new UpdateItemCommand({
      TableName: stores.config.tokensTable,
      Key: { userId: { S: userId } },
      UpdateExpression: 'SET expiresAt = :past',
      ExpressionAttributeValues: { ':past': { N: String(Math.floor(Date.now() / 1000) - 60) } },
    }),
  );
}

/** The DynamoDB commands sent while `body` runs, by name, in order. */
async function commandsSentDuring<T>(body: () => Promise<T>): Promise<{ result: T; commands: string[] }> {
  const commands: string[] = [];
  const send = stores.client.send.bind(stores.client);
  const spy = jest.spyOn(stores.client, 'send').mockImplementation(((command: object) => {
    commands.push(command.constructor.name.replace(/Command$/, ''));
    return send(command as never);
  }) as never);
  try {
    return { result: await body(), commands };
  } finally {
    spy.mockRestore();
  }
}

const stack = useFileStack('leasefirst', { clientId: 'lease-first', clientSecret: SECRET, redirectUris: [REDIRECT] });

beforeAll(() => {
  ({ sandbox, stores } = stack);
  provider = sandboxProviderConfig(sandbox, REDIRECT);
});

beforeEach(async () => {
  logs = captureLogger();
});

const connect = async (login: string) => {
  const record = await connectUser(login, { provider, secret: SECRET, stores, logger: logs.logger });
  await sandbox.resetStats();
  return record;
};

describe('Flow: refresh function (lease first)', () => {
  it('refreshes a stale token with two writes and no read: take the lease, save the pair', async () => {
    const user = await connect('lf-stale');
    await expire('lf-stale');

    const { result, commands } = await commandsSentDuring(() => handleRefreshRequest({ userId: 'lf-stale' }, deps()));

    expect(result).toMatchObject({ ok: true });
    expect(commands).toEqual(['UpdateItem', 'UpdateItem']);
    expect((await sandbox.stats()).refreshToken).toBe(1);
    expect((await stores.tokens.get('lf-stale'))!.version).toBe(user.version + 1);
  });

  it('answers from the item the refused lease returned when another process refreshed in between: one request, no lease, no token call', async () => {
    const user = await connect('lf-raced');

    const { result, commands } = await commandsSentDuring(() => handleRefreshRequest({ userId: 'lf-raced' }, deps()));

    expect(result).toEqual({ ok: true, expiresAt: user.expiresAt });
    expect(commands).toEqual(['UpdateItem']);
    expect((await sandbox.stats()).refreshToken).toBe(0);
    const after = (await stores.tokens.get('lf-raced'))!;
    expect(after.leaseOwner).toBeUndefined();
    expect(after.version).toBe(user.version);
  });

  it('waits for a refresh another process holds the lease for, then answers with its token', async () => {
    await connect('lf-held');
    await expire('lf-held');
    const holder = deps();
    const waiter = deps();

    const [first, second] = await Promise.all([
      handleRefreshRequest({ userId: 'lf-held' }, holder),
      handleRefreshRequest({ userId: 'lf-held' }, waiter),
    ]);

    expect(first).toMatchObject({ ok: true });
    expect(second).toEqual(first);
    expect((await sandbox.stats()).refreshToken).toBe(1);
  });

  it('answers REAUTH_REQUIRED from the refused lease for a grant marked dead meanwhile', async () => {
    await connect('lf-dead');
    // As another process's refusal leaves it: marked, its (still unexpired) token kept.
    await stores.client.send(
      new UpdateItemCommand({
        TableName: stores.config.tokensTable,
        Key: { userId: { S: 'lf-dead' } },
        UpdateExpression: 'SET #status = :dead, statusReason = :why',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':dead': { S: 'reauth_required' }, ':why': { S: 'invalid_grant' } },
      }),
    );

    expect(await handleRefreshRequest({ userId: 'lf-dead' }, deps())).toMatchObject({
      ok: false,
      code: 'REAUTH_REQUIRED',
    });
    expect((await sandbox.stats()).refreshToken).toBe(0);
  });

  it('reads first for a forced refresh, which may not be honoured', async () => {
    await connect('lf-forced');

    const { commands } = await commandsSentDuring(() =>
      handleRefreshRequest({ userId: 'lf-forced', forceRefresh: true }, deps()),
    );

    expect(commands[0]).toBe('GetItem');
    expect((await sandbox.stats()).refreshToken).toBe(1);
  });

  it('keeps 50 concurrent invocations for one stale token to one token call', async () => {
    await connect('lf-crowd');
    await expire('lf-crowd');
    const broker = deps();

    const results = await Promise.all(
      Array.from({ length: 50 }, () => handleRefreshRequest({ userId: 'lf-crowd' }, broker)),
    );

    expect(results.every((r) => r.ok)).toBe(true);
    expect((await sandbox.stats()).refreshToken).toBe(1);
  });

  it('answers UNKNOWN_USER for a user with no item, as before', async () => {
    expect(await handleRefreshRequest({ userId: 'lf-nobody' }, deps())).toMatchObject({
      ok: false,
      code: 'UNKNOWN_USER',
    });
  });
});
