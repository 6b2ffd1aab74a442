/**
 * `tokens disconnect` against DynamoDB Local and the sandbox: the grant is revoked at the provider
 * first and the tokens deleted only then; a failed revocation keeps the tokens (exit 5), `--force`
 * deletes without revoking and says the grant is still live, and without a revocation endpoint the
 * tokens are deleted with a note that the grant stays live at the provider.
 */
import { readProviderConfig } from '../../functions/core/config';
import { runCli } from '../../functions/reader/cli';
import type { SandboxHandle } from '../../infra/local/sandbox/launch';
import { connectUser, brokerEnv } from '../support/connect';
import { captureLogger } from '../support/logs';
import type { TestStores } from '../support/stores';
import { useFileStack } from '../support/file-stack';

const REDIRECT = 'http://localhost:3995/callback';
const SECRET = 'disconnect-secret';
let sandbox: SandboxHandle;
let stores: TestStores;
let env: Record<string, string>;

async function cli(argv: string[], overrides: Record<string, string | undefined> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const merged = Object.fromEntries(
    Object.entries({ ...env, ...overrides }).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
  const code = await runCli(argv, merged, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err: err.join('\n') };
}

const connect = (login: string) =>
  connectUser(login, { provider: readProviderConfig(env), secret: SECRET, stores, logger: captureLogger().logger });

/** What the provider answers to the refresh token now: 200 while the grant is live. */
async function presentAtProvider(refreshToken: string): Promise<number> {
  const res = await fetch(`${sandbox.oauth2BaseUrl}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${sandbox.clientId}:${SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  });
  await res.arrayBuffer();
  return res.status;
}

const stack = useFileStack('disconnect', {
  clientId: 'disconnect-client',
  clientSecret: SECRET,
  redirectUris: [REDIRECT],
});

beforeAll(() => {
  ({ sandbox, stores } = stack);
  env = brokerEnv(sandbox, stores, REDIRECT, {
    OAUTH2_REVOCATION_URL: sandbox.revocationUrl,
    PROVIDER_TIMEOUT_MS: '2000',
  });
});

describe('CLI: tokens disconnect', () => {
  it('revokes the grant at the provider, then deletes the tokens', async () => {
    const record = await connect('d-revoke');

    const { code, out, err } = await cli(['disconnect', 'd-revoke']);

    expect(code).toBe(0);
    expect(JSON.parse(out[0])).toEqual({ userId: 'd-revoke', disconnected: true, revoked: true });
    expect(err).toBe('');
    expect(await stores.tokens.get('d-revoke')).toBeUndefined();
    expect(await presentAtProvider(record.refreshToken)).toBe(400);
  });

  it('keeps the tokens, exits 5 and says so when the provider refuses the revocation', async () => {
    const record = await connect('d-refused');

    // The sandbox refuses the revocation request (401 invalid_client) for a wrong client secret.
    const { code, out, err } = await cli(['disconnect', 'd-refused'], { CLIENT_SECRET: 'not-the-secret' });

    expect(code).toBe(5);
    expect(out).toEqual([]);
    expect(err).toMatch(/revoking the grant at the provider failed/);
    expect(err).toMatch(/the tokens are kept/);
    expect(err).toMatch(/--force/);
    const kept = await stores.tokens.get('d-refused');
    expect(kept).toMatchObject({ status: 'active', refreshToken: record.refreshToken });
    expect(kept?.leaseOwner).toBeUndefined(); // released: refreshes go on as before
    // Nothing was lost: the grant still works, so the disconnect can be tried again.
    const again = await cli(['disconnect', 'd-refused']);
    expect(again.code).toBe(0);
    expect(await presentAtProvider(record.refreshToken)).toBe(400);
  });

  it('keeps the tokens and exits 5 when the revocation endpoint cannot be reached', async () => {
    await connect('d-unreachable');

    // A loopback port nothing listens on: the connection is refused.
    const { code, err } = await cli(['disconnect', 'd-unreachable'], {
      OAUTH2_REVOCATION_URL: 'http://127.0.0.1:9/revoke',
    });

    expect(code).toBe(5);
    expect(err).toMatch(/the tokens are kept/);
    expect(await stores.tokens.get('d-unreachable')).toMatchObject({ status: 'active' });
  });

  it('--force deletes without revoking and says the grant is still live at the provider', async () => {
    const record = await connect('d-force');

    const { code, out, err } = await cli(['disconnect', '--force', 'd-force'], {
      OAUTH2_REVOCATION_URL: 'http://127.0.0.1:9/revoke',
    });

    expect(code).toBe(0);
    expect(JSON.parse(out[0])).toEqual({ userId: 'd-force', disconnected: true, revoked: false });
    expect(err).toMatch(/without revoking .*the grant is still live at the provider/);
    expect(await stores.tokens.get('d-force')).toBeUndefined();
    expect(await presentAtProvider(record.refreshToken)).toBe(200);
  });

  it('without a revocation endpoint, deletes the tokens and says the grant stays live until it expires', async () => {
    const record = await connect('d-no-endpoint');

    const { code, out, err } = await cli(['disconnect', 'd-no-endpoint'], { OAUTH2_REVOCATION_URL: undefined });

    expect(code).toBe(0);
    expect(JSON.parse(out[0])).toEqual({ userId: 'd-no-endpoint', disconnected: true, revoked: false });
    expect(err).toMatch(/no revocation endpoint is configured \(OAUTH2_REVOCATION_URL\)/);
    expect(err).toMatch(/stays live at the provider until it expires/);
    expect(await stores.tokens.get('d-no-endpoint')).toBeUndefined();
    expect(await presentAtProvider(record.refreshToken)).toBe(200);
  });

  it('exits 3 for an unknown user, with or without --force, and touches nothing at the provider', async () => {
    expect((await cli(['disconnect', 'd-nobody'])).code).toBe(3);
    expect((await cli(['disconnect', 'd-nobody', '--force'])).code).toBe(3);
  });
});
