/**
 * The README's own commands, as a newcomer runs them: `npm start` (infra/local/start.ts) in its own
 * process with no configuration, then `npm run tokens` (functions/reader/cli.ts) beside it, then
 * Ctrl+C. Run from a scratch directory, so the state file never touches a developer's running stack.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

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

beforeAll(() => {
  cwd = mkdtempSync(join(tmpdir(), 'broker-start-'));
});

afterAll(async () => {
  if (start && start.exitCode === null) {
    start.kill('SIGKILL');
    await stopped(start);
  }
  rmSync(cwd, { recursive: true, force: true });
});

test('npm start serves /login, prints it, lets the tokens CLI find it, and cleans up on Ctrl+C', async () => {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', DYNAMODB_LOCAL_PORT: '0', REFRESH_SCHEDULE_SECONDS: '0' };
  for (const name of ['OAUTH2_BASE_URL', 'DYNAMODB_ENDPOINT', 'CLIENT_ID', 'CLIENT_SECRET', 'REDIRECT_URL']) {
    delete env[name];
  }
  start = spawn(process.execPath, ['--import', TSX, join(ROOT, 'infra/local/start.ts')], { cwd, env });
  let out = '';
  start.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  start.stderr!.resume();
  const loginUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no login URL printed; stdout so far:\n${out}`)), 45_000);
    start!.stdout!.on('data', () => {
      const match = /Open (http:\/\/localhost:\d+\/login) /.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    start!.once('exit', (code) => reject(new Error(`npm start exited with ${code}:\n${out}`)));
  });

  const login = await fetch(loginUrl, { redirect: 'manual' });
  expect(login.status).toBe(302);
  expect(login.headers.get('location')).toMatch(/\/v1\/connect\/oauth2\/authorize\?client_id=/);
  expect(existsSync(join(cwd, '.local/stack.json'))).toBe(true);

  const cli = spawnSync(process.execPath, ['--import', TSX, join(ROOT, 'functions/reader/cli.ts'), 'get', 'nobody'], {
    cwd,
    env,
    encoding: 'utf8',
  });
  // It found the stack's DynamoDB (an unknown user, exit 3), rather than failing to reach any.
  expect(cli.stderr).toMatch(/no tokens stored for user "nobody"/);
  expect(cli.status).toBe(3);

  start.kill('SIGINT');
  expect(await stopped(start)).toBe(0);
  expect(existsSync(join(cwd, '.local/stack.json'))).toBe(false);
  await expect(fetch(loginUrl)).rejects.toThrow();
}, 90_000);
