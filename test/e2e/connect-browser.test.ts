/**
 * The connect-link flow in a real browser (Debian's Chromium via playwright-core) against the local
 * stack (DynamoDB Local, the sandbox provider) and the example app backend (examples/connect-app.ts):
 * a person signed in at the app connects Kroger; a link forwarded to someone else connects nothing;
 * a link without a return URL shows the code to paste; a used link, a cancelled sign-in and the
 * public /login of a links-only deployment end on pages that say what to do.
 *
 * Screenshots of the new pages land in test-artifacts/connect-*.png (gitignored).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { readCookie } from '../../functions/core/callback';
import { readStoreConfig } from '../../functions/core/config';
import { createDynamoClient } from '../../functions/adapters/dynamo';
import { DynamoTokenStore } from '../../functions/adapters/token-store';
import { fieldCipher } from '../../functions/services';
import { completeConnection, ConnectionRefusedError, createLoginLink, createTokenReader } from '../../functions/reader';
import { startLocalStack, type LocalStack } from '../../infra/local/stack';
import { createConnectApp } from '../../examples/connect-app';

const CHROMIUM = '/usr/bin/chromium';
/** As in browser.test.ts: without the networking flags Chromium dials out and floods this closed network. */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ARTIFACTS = resolve(__dirname, '..', '..', 'test-artifacts');
const STEP_TIMEOUT_MS = 15_000;
const APP_NAME = 'Acme Groceries';
/** The stand-in for the app's own session: who is signed in to the app in this browser. */
const SESSION_COOKIE = 'demo_user';

jest.setTimeout(90_000);

let stack: LocalStack | undefined;
let browser: Browser | undefined;
let appServer: Server | undefined;
let appBase = '';
let dynamoClient: ReturnType<typeof createDynamoClient> | undefined;
let tokens: DynamoTokenStore | undefined;
const contexts: BrowserContext[] = [];
/** What the example app logged. */
const appLog: string[] = [];

function theStack(): LocalStack {
  if (!stack) throw new Error('the local stack did not start (see beforeAll)');
  return stack;
}

/** The broker's environment as the app backend gets it (no client secret). */
function appEnv(): Record<string, string> {
  return { ...theStack().env };
}

/** A fresh browser (its own cookie jar), signed in to the app as `appUser` if given. */
async function newBrowser(appUser?: string): Promise<{ context: BrowserContext; page: Page; visited: string[] }> {
  if (!browser) throw new Error('Chromium did not start (see beforeAll)');
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  contexts.push(context);
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  if (appUser) await context.addCookies([{ name: SESSION_COOKIE, value: appUser, url: appBase }]);
  const visited: string[] = [];
  context.on('request', (request) => visited.push(request.url()));
  return { context, page: await context.newPage(), visited };
}

/** At the sandbox's pages: sign in as `profileId` and allow (or cancel). */
async function signInAtKroger(page: Page, profileId: string, decision: 'allow' | 'deny' = 'allow'): Promise<void> {
  expect(new URL(page.url()).origin).toBe(new URL(theStack().env.OAUTH2_BASE_URL).origin);
  await page.locator('input[name="login"]').fill(profileId);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForSelector('button[name="decision"][value="allow"]');
  await Promise.all([
    page.waitForURL((url) => url.origin !== new URL(theStack().env.OAUTH2_BASE_URL).origin),
    page.locator(`button[name="decision"][value="${decision}"]`).click(),
  ]);
  await page.waitForLoadState('load');
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });
}

async function text(page: Page): Promise<string> {
  return page.locator('body').innerText();
}

/** The connect codes the browser carried to the app's return URL. */
function codesSent(visited: string[]): string[] {
  return visited
    .map((url) => new URL(url))
    .filter((url) => url.origin === appBase && url.pathname === '/kroger/return')
    .map((url) => url.searchParams.get('connect_code'))
    .filter((code): code is string => Boolean(code));
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}: install it with \`apt-get install -y chromium\``);
  }
  const endpoint = process.env.DYNAMODB_ENDPOINT;
  if (!endpoint) throw new Error('DYNAMODB_ENDPOINT is not set: run through jest (global setup starts DynamoDB Local)');
  mkdirSync(ARTIFACTS, { recursive: true });

  // The app listens first: the broker's allow-list names its return URL.
  let app: ReturnType<typeof createConnectApp> | undefined;
  appServer = createServer((req, res) => {
    if (!app) return void res.writeHead(503).end();
    void app(req, res);
  });
  await new Promise<void>((ready) => appServer!.listen(0, '127.0.0.1', ready));
  appBase = `http://localhost:${(appServer.address() as AddressInfo).port}`;

  const suffix = randomBytes(4).toString('hex');
  const [started, launched] = await Promise.allSettled([
    startLocalStack({
      PORT: '0',
      DYNAMODB_ENDPOINT: endpoint,
      TOKENS_TABLE: `e2e-connect-tokens-${suffix}`,
      SESSIONS_TABLE: `e2e-connect-sessions-${suffix}`,
      LOG_LEVEL: 'error',
      APP_NAME,
      // A links-only deployment: the public /login is off.
      PUBLIC_LOGIN: 'false',
      RETURN_TO_ALLOWLIST: `${appBase}/kroger/`,
      REFRESH_SCHEDULE_SECONDS: '0',
    }),
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, timeout: 30_000 }),
  ]);
  if (started.status === 'fulfilled') stack = started.value;
  if (launched.status === 'fulfilled') browser = launched.value;
  if (started.status === 'rejected') throw started.reason;
  if (launched.status === 'rejected') throw launched.reason;

  const record =
    (level: string) =>
    (...parts: unknown[]) =>
      void appLog.push(`${level} ${parts.join(' ')}`);
  app = createConnectApp({
    baseUrl: appBase,
    env: appEnv(),
    log: { info: record('info'), warn: record('warn'), error: record('error') },
    currentUser: (req: IncomingMessage) =>
      readCookie(req.headers.cookie ? [req.headers.cookie] : undefined, SESSION_COOKIE),
  });
  const storeConfig = readStoreConfig(stack!.env);
  dynamoClient = createDynamoClient(storeConfig);
  // The stack's own field cipher: the refresh tokens it stored are sealed under its key file.
  tokens = new DynamoTokenStore(dynamoClient, storeConfig.tokensTable, fieldCipher(stack!.services));
}, 90_000);

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await stack?.stop().catch(() => undefined);
  await new Promise((done) => (appServer ? appServer.close(done) : done(undefined)));
  dynamoClient?.destroy();
}, 30_000);

test('a signed-in user connects Kroger: app -> broker -> Kroger -> app, completed for that user only', async () => {
  const { page, visited } = await newBrowser('app-alice');
  await page.goto(`${appBase}/kroger/connect`);
  await signInAtKroger(page, 'kroger-alice');

  // Back at the app, which completed the connection and left the URL with the code at once.
  expect(page.url()).toBe(`${appBase}/kroger/done`);
  expect(await text(page)).toContain('Your Kroger account is connected');
  await screenshot(page, 'connect-app-done.png');
  const [code] = codesSent(visited);
  expect(code).toHaveLength(43);
  // The broker's own URLs never carried the code; the callback's query was code and state only.
  for (const url of visited.filter((u) => new URL(u).origin === theStack().baseUrl)) expect(url).not.toContain(code);

  const token = await createTokenReader({
    env: { ...appEnv(), CLIENT_SECRET: theStack().sandbox!.clientSecret },
    dynamo: dynamoClient,
  }).getAccessToken('app-alice');
  expect(token.accessToken.length).toBeGreaterThan(0);
  expect(await tokens!.get('app-alice')).toMatchObject({ profileId: 'kroger-alice', boundBy: 'connect' });
  expect(await tokens!.get('kroger-alice')).toBeUndefined();
});

test('a forwarded link connects nothing: the victim is told, the code is cancelled, neither user gets the account', async () => {
  // The attacker makes a link for their own app account, as the app would for them...
  const { loginUrl } = await createLoginLink('app-attacker', {
    env: appEnv(),
    dynamo: dynamoClient,
    returnTo: `${appBase}/kroger/return`,
  });
  // ...and a victim, signed in to the app and at Kroger, opens it.
  const { page, visited } = await newBrowser('app-victim');
  await page.goto(loginUrl);
  await signInAtKroger(page, 'kroger-victim');

  expect(new URL(page.url()).pathname).toBe('/kroger/return');
  expect(await text(page)).toContain('started from another account');
  await screenshot(page, 'connect-forwarded-link-refused.png');
  expect(appLog).toContain('warn foreign connect code presented for user app-victim');
  for (const id of ['app-attacker', 'app-victim', 'kroger-victim']) expect(await tokens!.get(id)).toBeUndefined();

  // Had the attacker got the code, it is dead now.
  const [code] = codesSent(visited);
  const late = await completeConnection(code, 'app-attacker', { env: appEnv(), dynamo: dynamoClient }).catch((e) => e);
  expect(late).toBeInstanceOf(ConnectionRefusedError);
  expect(late).toMatchObject({ code: 'CONNECT_CODE_CANCELLED' });
  expect(await tokens!.get('app-attacker')).toBeUndefined();
});

test('a link without a return URL shows the code to paste, at a clean address; used once it shows why not', async () => {
  const { loginUrl } = await createLoginLink('app-bob', { env: appEnv(), dynamo: dynamoClient });
  const { page } = await newBrowser();
  await page.goto(loginUrl);
  await signInAtKroger(page, 'kroger-bob');

  // The callback redirected to its clean URL: no code, no state in the address bar.
  expect(page.url()).toBe(`${theStack().baseUrl}/callback`);
  const pending = await text(page);
  expect(pending).toContain(`One more step: finish in ${APP_NAME}`);
  expect(pending).toContain('Never send it to anyone');
  const code = (await page.locator('p.code').innerText()).trim();
  expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
  await screenshot(page, 'connect-pending-code.png');
  // A reload shows the same page (the result cookie lives a few minutes); still nothing stored.
  await page.reload();
  expect((await page.locator('p.code').innerText()).trim()).toBe(code);
  expect(await tokens!.get('app-bob')).toBeUndefined();

  // The person pastes it into the app, which completes it for its signed-in user.
  expect(await completeConnection(code, 'app-bob', { env: appEnv(), dynamo: dynamoClient })).toEqual({
    userId: 'app-bob',
    profileId: 'kroger-bob',
  });

  // The link again: used up.
  const again = await page.goto(loginUrl);
  expect(again?.status()).toBe(400);
  expect(await text(page)).toContain('This connect link cannot be used');
  expect(await text(page)).toContain(`Go back to ${APP_NAME}`);
  await screenshot(page, 'connect-link-used.png');
});

test('a cancelled sign-in from a link ends on a page that offers the way back to the app', async () => {
  const { page } = await newBrowser('app-carol');
  await page.goto(`${appBase}/kroger/connect`);
  await signInAtKroger(page, 'kroger-carol', 'deny');

  expect(page.url()).toBe(`${theStack().baseUrl}/callback`);
  expect(await text(page)).toContain('nothing was connected');
  const back = page.getByRole('link', { name: `Return to ${APP_NAME}` });
  await expect(back.getAttribute('href')).resolves.toBe(`${appBase}/kroger/return`);
  await screenshot(page, 'connect-cancelled.png');
  await back.click();
  await page.waitForURL(`${appBase}/kroger/return`);
  expect(await text(page)).toContain('Connect again when you are ready');
  expect(await tokens!.get('app-carol')).toBeUndefined();
});

test('the public /login of a links-only deployment (PUBLIC_LOGIN=false) says to start from the app', async () => {
  const { page } = await newBrowser();
  const response = await page.goto(theStack().loginUrl);

  expect(response?.status()).toBe(403);
  expect(await text(page)).toContain(`Start from ${APP_NAME}`);
  expect(await page.locator('a').count()).toBe(0);
  await screenshot(page, 'connect-public-off.png');
});
