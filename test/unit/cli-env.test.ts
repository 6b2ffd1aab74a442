/**
 * `npm run tokens -- env` beside a local stack's state file: what it prints, and the one message
 * and exit code when there is nothing to print. (test/e2e/package.test.ts runs it against a real
 * stack and evaluates its output.)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, shellWord } from '../../functions/reader/cli';
import type { LocalStackState } from '../../functions/reader/local-state';

let dir: string;
let stateFile: string;

async function env(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l) };
  const code = await runCli(['env', ...args], {}, io, { stateFile });
  return { code, out, err };
}

function writeState(state: LocalStackState): void {
  mkdirSync(join(dir, '.local'), { recursive: true });
  writeFileSync(stateFile, JSON.stringify(state));
}

/** A pid no process has: the one of a child that already exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'broker-cli-env-'));
  stateFile = join(dir, '.local', 'stack.json');
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('CLI: tokens env', () => {
  it("prints the running stack's reader settings as export lines, and only those", async () => {
    writeState({
      pid: process.pid,
      env: { CLIENT_ID: 'client', CLIENT_SECRET: 'sandbox-secret', OAUTH2_BASE_URL: 'http://localhost:1/x' },
      reader: { TOKENS_TABLE: 'kroger-tokens', AWS_ENDPOINT_URL_LAMBDA: 'http://127.0.0.1:4567' },
    });

    const { code, out, err } = await env();

    expect(code).toBe(0);
    expect(err).toEqual([]);
    expect(out).toEqual(['export TOKENS_TABLE=kroger-tokens', 'export AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:4567']);
  });

  it('quotes a value the shell would otherwise split or expand', async () => {
    writeState({ pid: process.pid, env: {}, reader: { AWS_SECRET_ACCESS_KEY: "a b'$c" } });
    const { out } = await env();
    expect(out).toEqual([`export AWS_SECRET_ACCESS_KEY='a b'\\''$c'`]);
  });

  it('exits 1 saying to run npm start when no stack ever ran here', async () => {
    const { code, out, err } = await env();
    expect(code).toBe(1);
    expect(out).toEqual([]);
    expect(err.join('\n')).toMatch(/no local stack is running in this directory: start it with `npm start`/);
  });

  it('exits 1 saying to run npm start when the stack that wrote the state file is gone', async () => {
    writeState({ pid: deadPid(), env: {}, reader: { TOKENS_TABLE: 'kroger-tokens' } });
    const { code, out, err } = await env();
    expect(code).toBe(1);
    expect(out).toEqual([]);
    expect(err.join('\n')).toMatch(/start it with `npm start`/);
  });

  it('exits 1 asking for a restart when the running stack predates tokens env', async () => {
    writeState({ pid: process.pid, env: { DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000' } });
    const { code, out, err } = await env();
    expect(code).toBe(1);
    expect(out).toEqual([]);
    expect(err.join('\n')).toMatch(/older than `tokens env`: restart it/);
  });

  it('exits 2 with the usage for an argument', async () => {
    const { code, err } = await env('--json');
    expect(code).toBe(2);
    expect(err.join('\n')).toMatch(/env takes no arguments\nusage: npm run tokens/);
  });

  it('exits 2 for --stack: it describes the local stack only', async () => {
    writeState({ pid: process.pid, env: {}, reader: { TOKENS_TABLE: 'kroger-tokens' } });
    const { code, out } = await env('--stack', 'KrogerTokenBroker');
    expect(code).toBe(2);
    expect(out).toEqual([]);
  });
});

describe('Function: shellWord', () => {
  it.each([
    ['http://127.0.0.1:8000/', 'http://127.0.0.1:8000/'],
    ['LOCAL0A1B', 'LOCAL0A1B'],
    ['', "''"],
    ['$(rm -rf /)', "'$(rm -rf /)'"],
    ["it's", `'it'\\''s'`],
  ])('renders %j as %s', (value, word) => {
    expect(shellWord(value)).toBe(word);
  });
});
