/**
 * `npm start` as a developer runs it, watched from outside (issue 12, points 6 and 7):
 * - a request that arrives while it starts (a health poller, an early click) is answered, with
 *   `503 starting` until the routes are attached, never left hanging;
 * - its DynamoDB Local, which listens on every interface (the jar has no bind option), is opened with
 *   a random per-run access key kept only in `.local/stack.json` (0600): a client with any other key,
 *   `local` included, sees an empty database;
 * - the local field key is a 0600 file beside it, and outlives the run.
 * Runs in a scratch directory, so it never touches a developer's own `.local/`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import type { LocalStackState } from '../../functions/reader/local-state';
import { freePort } from '../../infra/local/ports';

const ROOT = join(__dirname, '../..');
const TSX = pathToFileURL(require.resolve('tsx')).href;
let cwd: string;
let start: ChildProcess | undefined;

function stopped(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

/** Table names DynamoDB Local shows to a client presenting `accessKey`. */
async function tablesSeenWith(endpoint: string, accessKey: string): Promise<string[]> {
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: accessKey, secretAccessKey: accessKey },
    maxAttempts: 1,
  });
  try {
    return (await client.send(new ListTablesCommand({}))).TableNames ?? [];
  } finally {
    client.destroy();
  }
}

type Probe = { kind: 'answer'; status: number; retryAfter: string | null; body: string } | { kind: 'refused' | 'hung' };

/** One GET /login that gives up after 3 s: `hung` is what the startup gate must prevent. */
async function probe(url: string): Promise<Probe> {
  try {
    const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(3000) });
    return {
      kind: 'answer',
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      body: await response.text(),
    };
  } catch (error) {
    return (error as Error).name === 'TimeoutError' ? { kind: 'hung' } : { kind: 'refused' };
  }
}

beforeAll(() => {
  cwd = mkdtempSync(join(tmpdir(), 'broker-exposure-'));
});

afterAll(async () => {
  if (start && start.exitCode === null) {
    start.kill('SIGKILL');
    await stopped(start);
  }
  rmSync(cwd, { recursive: true, force: true });
});

test('npm start answers during startup, and keeps its DynamoDB Local and field key to itself', async () => {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    DYNAMODB_LOCAL_PORT: '0',
    REFRESH_SCHEDULE_SECONDS: '0',
  };
  for (const name of ['OAUTH2_BASE_URL', 'DYNAMODB_ENDPOINT', 'CLIENT_ID', 'CLIENT_SECRET', 'REDIRECT_URL']) {
    delete env[name];
  }
  for (const name of ['FIELD_KEY_FILE', 'FIELD_KEY_ARN', 'DYNAMODB_LOCAL_ACCESS_KEY']) delete env[name];
  start = spawn(process.execPath, ['--import', TSX, join(ROOT, 'infra/local/start.ts')], { cwd, env });
  let out = '';
  let err = '';
  start.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  start.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no login URL printed; stdout so far:\n${out}\n${err}`)), 60_000);
    start!.stdout!.on('data', () => {
      if (/Open http:\/\/localhost:\d+\/login /.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    start!.once('exit', (code) => reject(new Error(`npm start exited with ${code}:\n${out}\n${err}`)));
  });
  let started = false;
  void ready.then(() => (started = true)).catch(() => undefined);

  // Poll /login from the moment the process starts until it says it is ready, as a health check would.
  const url = `http://127.0.0.1:${port}/login`;
  const probes: Probe[] = [];
  while (!started && start.exitCode === null) {
    probes.push(await probe(url));
    await new Promise((r) => setTimeout(r, 25));
  }
  await ready;
  const after = await probe(url);

  const answers = probes.filter((p) => p.kind === 'answer');
  expect(probes.filter((p) => p.kind === 'hung')).toEqual([]);
  // The server listened long before it was ready (DynamoDB Local and the sandbox start in between).
  expect(answers.length).toBeGreaterThan(0);
  expect(answers[0]).toEqual({ kind: 'answer', status: 503, retryAfter: '1', body: 'starting' });
  for (const answer of answers) expect([302, 503]).toContain(answer.status);
  expect(after).toMatchObject({ kind: 'answer', status: 302 });

  // The state file: 0600, with this run's DynamoDB Local key and the field key's path (not the key).
  const stateFile = join(cwd, '.local/stack.json');
  expect(statSync(stateFile).mode & 0o777).toBe(0o600);
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as LocalStackState;
  const accessKey = state.env.DYNAMODB_LOCAL_ACCESS_KEY;
  expect(accessKey).toMatch(/^[0-9a-f]{40}$/);
  expect(state.env.FIELD_KEY_FILE).toBe(join(cwd, '.local/field-key'));
  const fieldKey = readFileSync(state.env.FIELD_KEY_FILE, 'utf8').trim();
  expect(statSync(state.env.FIELD_KEY_FILE).mode & 0o777).toBe(0o600);
  expect(JSON.stringify(state)).not.toContain(fieldKey);
  // Neither key is printed.
  expect(out + err).not.toContain(accessKey);
  expect(out + err).not.toContain(fieldKey);

  // Anyone else reaching the port, with the old fixed key or any other, finds no tables.
  const endpoint = state.env.DYNAMODB_ENDPOINT;
  expect(await tablesSeenWith(endpoint, accessKey)).toEqual(['kroger-login-sessions', 'kroger-tokens']);
  expect(await tablesSeenWith(endpoint, 'local')).toEqual([]);
  expect(await tablesSeenWith(endpoint, 'AKIAIOSFODNN7EXAMPLE')).toEqual([]);

  start.kill('SIGINT');
  expect(await stopped(start)).toBe(0);
  expect(existsSync(stateFile)).toBe(false);
  // The field key stays: a persistent DYNAMODB_ENDPOINT would still be readable next run.
  expect(readFileSync(join(cwd, '.local/field-key'), 'utf8').trim()).toBe(fieldKey);
}, 120_000);
