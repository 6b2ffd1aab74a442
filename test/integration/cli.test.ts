/**
 * The tokens CLI against DynamoDB Local and the sandbox provider: output shape, exit codes, and that
 * listing never prints a token.
 */
import { readProviderConfig } from '../../functions/core/config';
import { runCli } from '../../functions/reader/cli';
import type { SandboxHandle } from '../../infra/local/sandbox/launch';
import { connectUser, brokerEnv } from '../support/connect';
import { captureLogger } from '../support/logs';
import type { TestStores } from '../support/stores';
import { useFileStack } from '../support/file-stack';

const REDIRECT = 'http://localhost:3996/callback';
let sandbox: SandboxHandle;
let stores: TestStores;
let env: Record<string, string>;

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, env, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

const connect = (login: string) =>
  connectUser(login, {
    provider: readProviderConfig(env),
    secret: env.CLIENT_SECRET,
    stores,
    logger: captureLogger().logger,
  });

const stack = useFileStack('cli', { clientId: 'cli-client', clientSecret: 'cli-secret', redirectUris: [REDIRECT] });

beforeAll(async () => {
  ({ sandbox, stores } = stack);
  env = brokerEnv(sandbox, stores, REDIRECT, {
    OAUTH2_REVOCATION_URL: sandbox.revocationUrl,
    // `refresh` right after a login: the interval has its own tests (cli-disconnect.test.ts, reader-limits.test.ts).
    FORCE_REFRESH_MIN_INTERVAL_SECONDS: '0',
  });
  await connect('cli-user');
});

describe('CLI: tokens', () => {
  it('get prints exactly one JSON object with userId, accessToken, expiresAt and scope', async () => {
    const { code, out } = await cli('get', 'cli-user');

    expect(code).toBe(0);
    expect(out).toHaveLength(1);
    const printed = JSON.parse(out[0]);
    expect(Object.keys(printed).sort()).toEqual(['accessToken', 'expiresAt', 'scope', 'userId']);
    expect(printed.accessToken).toBe((await stores.tokens.get('cli-user'))!.accessToken);
  });

  it('get exits 3 with a message on stderr for an unknown user', async () => {
    const { code, out, err } = await cli('get', 'nobody');
    expect(code).toBe(3);
    expect(out).toEqual([]);
    expect(err.join('\n')).toMatch(/no tokens stored for user "nobody"/);
  });

  it('list never prints a token value', async () => {
    const record = (await stores.tokens.get('cli-user'))!;
    const { code, out } = await cli('list');
    expect(code).toBe(0);
    expect(out.join('\n')).toContain('"cli-user"');
    expect(out.join('\n')).not.toContain(record.accessToken);
    expect(out.join('\n')).not.toContain(record.refreshToken);
  });

  it('refresh forces a new token and prints no token', async () => {
    const before = (await stores.tokens.get('cli-user'))!;
    const { code, out } = await cli('refresh', 'cli-user');
    const after = (await stores.tokens.get('cli-user'))!;
    expect(code).toBe(0);
    expect(after.accessToken).not.toBe(before.accessToken);
    expect(out.join('\n')).not.toContain(after.accessToken);
  });

  it('link prints a one-time login URL derived from REDIRECT_URL', async () => {
    const { code, out } = await cli('link', 'app-user-1', '--ttl', '60');
    expect(code).toBe(0);
    const { loginUrl } = JSON.parse(out[0]);
    expect(loginUrl).toMatch(/^http:\/\/localhost:3996\/login\?session=[\w-]{43}$/);
  });

  it('get exits 4 when the grant was revoked and the user must sign in again', async () => {
    await connect('cli-revoked');
    await sandbox.revokeAccount('cli-revoked');

    const refreshed = await cli('refresh', 'cli-revoked');
    const read = await cli('get', 'cli-revoked');

    expect(refreshed.code).toBe(4);
    expect(read.code).toBe(4);
    expect(read.err.join('\n')).toMatch(/must sign in again/);
  });

  it('exits 2 with usage for an unknown command or a missing argument', async () => {
    expect((await cli('frobnicate')).code).toBe(2);
    expect((await cli('get')).code).toBe(2);
    expect((await cli('link', 'u1', '--ttl', 'abc')).code).toBe(2);
  });

  it('disconnect deletes the tokens and revokes the grant at the provider', async () => {
    await connect('cli-gone');
    const record = (await stores.tokens.get('cli-gone'))!;

    const { code, out } = await cli('disconnect', 'cli-gone');

    expect(code).toBe(0);
    expect(JSON.parse(out[0])).toEqual({ userId: 'cli-gone', disconnected: true, revoked: true });
    expect(await stores.tokens.get('cli-gone')).toBeUndefined();
    // The provider no longer honours the grant's refresh token.
    const refused = await fetch(`${sandbox.oauth2BaseUrl}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from('cli-client:cli-secret').toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: record.refreshToken }),
    });
    expect(refused.status).toBe(400);
    expect((await cli('disconnect', 'cli-gone')).code).toBe(3);
  });
});
