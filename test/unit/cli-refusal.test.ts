/**
 * The tokens CLI refuses to guess (issue 14): without `--stack`, explicit variables or a running
 * local stack it exits 2, says the three ways, and makes no AWS call at all, instead of reading the
 * default table names in whatever account the shell's credentials point at. Every AWS client the CLI
 * could use is stubbed (aws-sdk-client-mock) only to prove that none was called.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { resolveEnv, runCli } from '../../functions/reader/cli';

const dynamo = mockClient(DynamoDBClient);
const cloudFormation = mockClient(CloudFormationClient);
const lambda = mockClient(LambdaClient);
const ROOT = join(__dirname, '..', '..');

async function cli(argv: string[], env: Record<string, string>) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, env, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err: err.join('\n') };
}

const awsCalls = () => dynamo.calls().length + cloudFormation.calls().length + lambda.calls().length;

beforeEach(() => {
  dynamo.reset();
  cloudFormation.reset();
  lambda.reset();
});

describe('CLI: tokens without a target', () => {
  it.each([['list'], ['get', 'user-1'], ['refresh', 'user-1'], ['disconnect', 'user-1'], ['link', 'app-user-1']])(
    '%s exits 2 naming the three ways, with no AWS call',
    async (...argv) => {
      const { code, out, err } = await cli(argv, {});
      expect(code).toBe(2);
      expect(out).toEqual([]);
      expect(err).toMatch(/--stack NAME \[--region REGION\]/);
      expect(err).toMatch(/DYNAMODB_ENDPOINT, or TOKENS_TABLE and SESSIONS_TABLE/);
      expect(err).toMatch(/npm start/);
      expect(awsCalls()).toBe(0);
    },
  );

  it('is not satisfied by AWS settings, a region or a client secret alone: those name no broker', async () => {
    const { code } = await cli(['list'], {
      AWS_PROFILE: 'prod-admin',
      AWS_REGION: 'us-east-1',
      CLIENT_ID: 'id',
      CLIENT_SECRET: 'secret',
      REFRESH_FUNCTION_NAME: 'some-function',
    });
    expect(code).toBe(2);
    expect(awsCalls()).toBe(0);
  });

  it('goes ahead with an explicit TOKENS_TABLE, on that table', async () => {
    dynamo.on(ScanCommand).resolves({ Items: [] });
    const { code } = await cli(['list'], { TOKENS_TABLE: 'explicit-tokens', AWS_REGION: 'eu-west-1' });
    expect(code).toBe(0);
    expect(dynamo.commandCalls(ScanCommand).map((c) => c.args[0].input.TableName)).toEqual(['explicit-tokens']);
  });

  it('still prints the usage (exit 2) for no command, before looking for a target', async () => {
    const { code, err } = await cli([], {});
    expect(code).toBe(2);
    expect(err).toMatch(/^error: usage: npm run tokens -- \[--stack NAME \[--region REGION\]\] <command>/);
  });

  it('ignores a local stack state file whose process is gone', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'tokens-cli-stale-'));
    mkdirSync(join(cwd, '.local'));
    const stateFile = join(cwd, '.local', 'stack.json');
    // pid 2^22 + 1 is above Linux's pid_max: no such process.
    writeFileSync(stateFile, JSON.stringify({ pid: 4194305, env: { DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000' } }));
    expect(resolveEnv({}, stateFile)).toEqual({});
  });

  it('as `npm run tokens -- list` in a fresh checkout: exits 2 with the three ways on stderr', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'tokens-cli-fresh-'));
    const result = spawnSync(
      process.execPath,
      ['--import', pathToFileURL(require.resolve('tsx')).href, join(ROOT, 'functions/reader/cli.ts'), 'list'],
      {
        cwd,
        // Credentials-like settings present, as in an operator's shell: still no guessing.
        env: {
          PATH: process.env.PATH,
          AWS_REGION: 'us-east-1',
          AWS_EC2_METADATA_DISABLED: 'true',
          AWS_PROFILE: 'default',
        },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/no broker to talk to/);
    expect(result.stderr).toMatch(/--stack NAME/);
  });
});
