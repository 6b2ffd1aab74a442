/**
 * Another team adopts the reader: the package as `npm pack` makes it, installed from the tarball
 * into a fresh project, used with nothing but what `npm run tokens -- env` prints, against a running
 * local stack. The consumer takes the production path: it reads from DynamoDB and refreshes through
 * the local stand-in of the broker's refresh function, never holding the client secret.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { readStoreConfig } from '../../functions/core/config';
import { createDynamoClient } from '../../functions/adapters/dynamo';
import { DynamoTokenStore } from '../../functions/adapters/token-store';
import { fieldCipher } from '../../functions/services';
import { completeAuthorization } from '../../infra/local/sandbox/headless';
import { type LocalStack, startLocalStack } from '../../infra/local/stack';
import { cleanNpmEnv, packedTarball, ROOT } from '../support/package';

const TSX = pathToFileURL(require.resolve('tsx')).href;

/** The consumer's code: reads one user's token through the package's root export. */
const CONSUMER = `
import { getAccessToken, UnknownUserError, ConfigError } from 'kroger-token-broker';
try {
  const token = await getAccessToken(process.argv[2]);
  console.log(JSON.stringify({ ok: true, accessToken: token.accessToken, expiresAt: token.expiresAt }));
} catch (error) {
  console.log(JSON.stringify({
    ok: false,
    name: error.name,
    code: error.code,
    message: error.message,
    unknownUser: error instanceof UnknownUserError,
    configError: error instanceof ConfigError,
  }));
}
`;

/** An app backend's code: creates a connect link, or completes a connect code, through the package. */
const APP_BACKEND = `
import { completeConnection, ConnectionRefusedError, createLoginLink } from 'kroger-token-broker';
const [mode, first, second] = process.argv.slice(2);
try {
  const result = mode === 'link' ? await createLoginLink(first, { returnTo: second }) : await completeConnection(first, second);
  console.log(JSON.stringify({ ok: true, ...result }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, name: error.name, code: error.code, message: error.message, refused: error instanceof ConnectionRefusedError }));
}
`;
const RETURN_URL = 'https://app.example.com/kroger/return';

let project: string;
let scratch: string;
let stack: LocalStack;
let tokensEnv: string;

/**
 * Runs the consumer for `userId` in a shell that starts with an empty environment and evaluates
 * `setup` (by default the output of `tokens env`), as the docs say: `eval "$(npm run --silent tokens -- env)"`.
 */
async function consume(userId: string, setup = tokensEnv) {
  return run('consumer.mjs', [userId], setup);
}

/** Runs `script` of the consumer project with `args`, after evaluating `setup` in an empty environment. */
async function run(script: string, args: string[], setup = tokensEnv) {
  writeFileSync(join(project, 'setup.sh'), setup);
  // Not spawnSync: the stand-in the consumer invokes runs in this process's event loop.
  const child = spawn(
    '/bin/bash',
    ['-c', `eval "$(cat setup.sh)" && exec "$0" ${script} "$@"`, process.execPath, ...args],
    {
      cwd: project,
      env: {},
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const status = await new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const out = stdout.trim();
  return { status, stderr, result: out ? JSON.parse(out) : undefined };
}

async function connect(login: string): Promise<void> {
  const started = await fetch(stack.loginUrl, { redirect: 'manual' });
  const cookie = started.headers.getSetCookie()[0].split(';')[0];
  const back = await completeAuthorization(started.headers.get('location')!, { login });
  const done = await fetch(back, { headers: { cookie }, redirect: 'manual' });
  // A stored grant: a 303 to the callback's clean result page.
  if (done.status !== 303) throw new Error(`callback answered ${done.status}`);
}

beforeAll(async () => {
  const tarball = packedTarball();
  project = mkdtempSync(join(tmpdir(), 'broker-consumer-'));
  scratch = mkdtempSync(join(tmpdir(), 'broker-consumer-stack-'));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  writeFileSync(join(project, 'consumer.mjs'), CONSUMER);
  writeFileSync(join(project, 'app-backend.mjs'), APP_BACKEND);
  execFileSync('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
    cwd: project,
    env: cleanNpmEnv(),
    stdio: 'pipe',
  });

  // The broker as `npm start` runs it (its own sandbox provider), on the suite's DynamoDB Local.
  stack = await startLocalStack(
    {
      PORT: '0',
      REFRESH_SCHEDULE_SECONDS: '0',
      LOG_LEVEL: 'warn',
      DYNAMODB_ENDPOINT: process.env.DYNAMODB_ENDPOINT,
      TOKENS_TABLE: 'package-tokens',
      SESSIONS_TABLE: 'package-sessions',
      RETURN_TO_ALLOWLIST: 'https://app.example.com/kroger/',
    },
    { writeStateFile: true, stateFile: join(scratch, '.local', 'stack.json') },
  );
  // `npm run tokens -- env`, run where that stack's state file is.
  tokensEnv = execFileSync(process.execPath, ['--import', TSX, join(ROOT, 'functions/reader/cli.ts'), 'env'], {
    cwd: scratch,
    env: { PATH: process.env.PATH },
    encoding: 'utf8',
  });
  await connect('package-user');
}, 240_000);

afterAll(async () => {
  await stack?.stop();
  for (const dir of [project, scratch]) if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the package installed from its tarball', () => {
  it('brings the reader and its two SDK clients, not aws-cdk-lib, constructs, esbuild or the broker-only clients', () => {
    const modules = join(project, 'node_modules');
    expect(existsSync(join(modules, 'kroger-token-broker', 'dist', 'index.js'))).toBe(true);
    expect(existsSync(join(modules, '@aws-sdk', 'client-dynamodb'))).toBe(true);
    expect(existsSync(join(modules, '@aws-sdk', 'client-lambda'))).toBe(true);
    for (const absent of [
      'aws-cdk-lib',
      'constructs',
      'esbuild',
      'oauth4webapi',
      '@aws-sdk/client-secrets-manager',
      '@aws-sdk/client-eventbridge',
    ]) {
      expect([absent, existsSync(join(modules, absent))]).toEqual([absent, false]);
    }
  });

  it('tokens env prints the reader and link-creator settings and nothing of the client or provider', () => {
    const names = [...tokensEnv.matchAll(/^export ([A-Z0-9_]+)=/gm)].map((m) => m[1]).sort();
    expect(names).toEqual([
      'AWS_ACCESS_KEY_ID',
      'AWS_ENDPOINT_URL_LAMBDA',
      'AWS_REGION',
      'AWS_SECRET_ACCESS_KEY',
      'COMPLETE_FUNCTION_NAME',
      'DYNAMODB_ENDPOINT',
      'LOGIN_URL',
      'REFRESH_FUNCTION_NAME',
      'RETURN_TO_ALLOWLIST',
      'SESSIONS_TABLE',
      'TOKENS_TABLE',
    ]);
    // Every line is an export: the output is safe to eval.
    expect(tokensEnv.trim().split('\n')).toHaveLength(names.length);
    expect(tokensEnv).toMatch(/^export AWS_ENDPOINT_URL_LAMBDA=http:\/\/127\.0\.0\.1:\d+$/m);
    expect(tokensEnv).toContain('export TOKENS_TABLE=package-tokens\n');
    expect(tokensEnv).not.toMatch(/CLIENT_|OAUTH2_|API_BASE_URL|REDIRECT_URL/);
    expect(tokensEnv).not.toContain(stack.sandbox!.clientSecret);
  });

  it('reads a stored token with only what tokens env prints, and prints nothing on stderr', async () => {
    const { status, stderr, result } = await consume('package-user');
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(result.ok).toBe(true);
    expect(result.accessToken).toMatch(/^[\w-]{20,}$/);
  });

  it('after expiry, reads a token refreshed through the refresh function stand-in, exactly once', async () => {
    const config = readStoreConfig(stack.env);
    const client = createDynamoClient(config);
    // The stack's own field cipher (a local key file); this test reads only what readers read.
    const tokens = new DynamoTokenStore(client, config.tokensTable, fieldCipher(stack.services));
    try {
      const before = (await tokens.getForReader('package-user'))!;
      const now = Math.floor(Date.now() / 1000);
      await client.send(
        new UpdateItemCommand({
          TableName: config.tokensTable,
          Key: { userId: { S: 'package-user' } },
          UpdateExpression: 'SET expiresAt = :past',
          ExpressionAttributeValues: { ':past': { N: String(now - 60) } },
        }),
      );
      const refreshesBefore = (await stack.sandbox!.stats()).refreshToken;

      const { status, stderr, result } = await consume('package-user');

      expect(stderr).toBe('');
      expect(status).toBe(0);
      expect((await stack.sandbox!.stats()).refreshToken).toBe(refreshesBefore + 1);
      const after = (await tokens.getForReader('package-user'))!;
      expect(result.accessToken).toBe(after.accessToken);
      expect(result.accessToken).not.toBe(before.accessToken);
      expect(result.expiresAt).toBeGreaterThan(now + 300);
    } finally {
      client.destroy();
    }
  });

  it('throws the exported UnknownUserError for a user who never connected', async () => {
    const { stderr, result } = await consume('never-connected');
    expect(stderr).toBe('');
    expect(result).toMatchObject({ ok: false, unknownUser: true, code: 'UNKNOWN_USER' });
  });

  it('fails with one ConfigError naming what is missing and how to get it when the environment is incomplete', async () => {
    const withoutStandIn = tokensEnv.replace(/^export AWS_ENDPOINT_URL_LAMBDA=.*$/m, '');
    const { stderr, result } = await consume('package-user', withoutStandIn);
    expect(stderr).toBe('');
    expect(result).toMatchObject({ ok: false, configError: true, code: 'CONFIG_INVALID' });
    expect(result.message).toContain('AWS_ENDPOINT_URL_LAMBDA is not set');
    expect(result.message).toContain('npm run --silent tokens -- env');
  });

  it('connects an account through a link and completes it through the complete function stand-in', async () => {
    const link = await run('app-backend.mjs', ['link', 'pkg-app-user', RETURN_URL]);
    expect(link).toMatchObject({ status: 0, stderr: '', result: { ok: true } });
    // The person's browser: the link, Kroger's pages, the callback, which sends the code to the app.
    const started = await fetch(link.result.loginUrl, { redirect: 'manual' });
    const cookie = started.headers.getSetCookie()[0].split(';')[0];
    const back = await completeAuthorization(started.headers.get('location')!, { login: 'pkg-kroger' });
    const done = await fetch(back, { headers: { cookie }, redirect: 'manual' });
    const code = new URL(done.headers.get('location')!).searchParams.get('connect_code')!;
    expect(code).toMatch(/^[\w-]{43}$/);

    const completed = await run('app-backend.mjs', ['complete', code, 'pkg-app-user']);
    const again = await run('app-backend.mjs', ['complete', code, 'pkg-app-user']);
    const read = await consume('pkg-app-user');

    expect(completed).toMatchObject({
      status: 0,
      stderr: '',
      result: { ok: true, userId: 'pkg-app-user', profileId: 'pkg-kroger' },
    });
    expect(again.result).toMatchObject({ ok: false, refused: true, code: 'CONNECT_CODE_USED' });
    expect(read.result).toMatchObject({ ok: true });
  });

  it('fails completing with one ConfigError naming the missing complete function', async () => {
    const withoutFunction = tokensEnv.replace(/^export COMPLETE_FUNCTION_NAME=.*$/m, '');
    const { result } = await run('app-backend.mjs', ['complete', 'a'.repeat(43), 'pkg-app-user'], withoutFunction);
    expect(result).toMatchObject({ ok: false, name: 'ConfigError', code: 'CONFIG_INVALID' });
    expect(result.message).toContain('COMPLETE_FUNCTION_NAME is not set');
  });
});
