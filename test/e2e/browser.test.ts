/**
 * End to end in a real browser: Debian's Chromium, driven by playwright-core, against the local
 * stack (the same handlers as in Lambda, DynamoDB Local, the Kroger-shaped sandbox provider). A
 * person's path: open the login URL, sign in and consent on the sandbox's pages, land on the
 * broker's callback page; then a service reads the token with the reader library.
 *
 * Screenshots of the pages land in test-artifacts/ (gitignored).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core';
import { readStoreConfig } from '../../functions/core/config';
import { BINDING_COOKIE_PREFIX } from '../../functions/core/login';
import { createDynamoClient } from '../../functions/adapters/dynamo';
import type { TokenStore } from '../../functions/adapters/token-store';
import { createTokenReader, UnknownUserError } from '../../functions/reader';
import { createServices, tokenStore } from '../../functions/services';
import { startLocalStack, type LocalStack } from '../../infra/local/stack';

const CHROMIUM = '/usr/bin/chromium';
/**
 * Chromium's flags for this closed network: without the networking ones it keeps dialling Google
 * services and floods the machine with refused connections. The fresh `--user-data-dir` is made by
 * Playwright itself (a mkdtemp directory, removed at close): `chromium.launch()` refuses the flag in
 * `args` ("Pass userDataDir parameter to 'browserType.launchPersistentContext'"), and a persistent
 * context would give one browser context only, while the foreign-browser case needs two.
 */
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

jest.setTimeout(60_000);

let stack: LocalStack | undefined;
let browser: Browser | undefined;
let tokens: TokenStore | undefined;
let dynamoClient: ReturnType<typeof createDynamoClient> | undefined;
const contexts: BrowserContext[] = [];

function theStack(): LocalStack {
  if (!stack) throw new Error('the local stack did not start (see beforeAll)');
  return stack;
}

/** A fresh browser context (its own cookie jar: a "different browser" for the broker). */
async function newPage(): Promise<{ context: BrowserContext; page: Page; received: () => Promise<string> }> {
  if (!browser) throw new Error('Chromium did not start (see beforeAll)');
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  contexts.push(context);
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  // Everything the browser received (URLs and bodies), to prove no token ever reached it.
  const bodies: Array<Promise<string>> = [];
  context.on('response', (response) => {
    bodies.push(
      response.text().then(
        (body) => `${response.url()}\n${body}`,
        () => response.url(), // redirects and aborted requests have no body
      ),
    );
  });
  return { context, page, received: async () => (await Promise.all(bodies)).join('\n') };
}

function isCallback(url: string | URL): boolean {
  const u = typeof url === 'string' ? new URL(url) : url;
  return u.origin === new URL(theStack().baseUrl).origin && u.pathname === '/callback';
}

/** Opens the login URL and signs in at the sandbox as `profileId`; resolves on the consent page. */
async function signIn(page: Page, profileId: string): Promise<void> {
  const s = theStack();
  const opened = await page.goto(s.loginUrl);
  expect(opened?.status()).toBe(200);
  // /login redirected to the sandbox provider's own sign-in page.
  expect(new URL(page.url()).origin).toBe(new URL(s.env.OAUTH2_BASE_URL).origin);
  const login = page.locator('input[name="login"]');
  await expect(login.count()).resolves.toBe(1);
  await login.fill(profileId);

  // The browser-binding cookie /login set: HttpOnly, Lax, only sent to /callback.
  const binding = (await page.context().cookies(s.baseUrl + '/callback')).find((c) =>
    c.name.startsWith(BINDING_COOKIE_PREFIX),
  );
  expect(binding).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/callback' });

  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForSelector('button[name="decision"][value="allow"]');
  await expect(page.locator('body').innerText()).resolves.toContain(profileId);
}

/**
 * Clicks a consent button and returns the response of the page it ends on: the broker's clean
 * /callback (no query), where the callback's 303 sends the browser.
 */
async function decide(page: Page, decision: 'allow' | 'deny'): Promise<Response> {
  const [response] = await Promise.all([
    page.waitForResponse(
      (r) => isCallback(r.url()) && new URL(r.url()).search === '' && r.request().isNavigationRequest(),
    ),
    page.locator(`button[name="decision"][value="${decision}"]`).click(),
  ]);
  await page.waitForLoadState('load');
  return response;
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });
}

async function bindingCookie(context: BrowserContext) {
  return (await context.cookies(theStack().baseUrl + '/callback')).find((c) =>
    c.name.startsWith(BINDING_COOKIE_PREFIX),
  );
}

function reader() {
  const s = theStack();
  return createTokenReader({ env: { ...s.env, CLIENT_SECRET: s.sandbox!.clientSecret }, dynamo: dynamoClient });
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}: the browser end-to-end test needs it. ` +
        'Install it with `apt-get install -y chromium` (Debian), or run .ci/run, which does.',
    );
  }
  const endpoint = process.env.DYNAMODB_ENDPOINT;
  if (!endpoint) throw new Error('DYNAMODB_ENDPOINT is not set: run through jest (global setup starts DynamoDB Local)');
  mkdirSync(ARTIFACTS, { recursive: true });

  const suffix = randomBytes(4).toString('hex');
  const [started, launched] = await Promise.allSettled([
    startLocalStack(
      {
        PORT: '0',
        DYNAMODB_ENDPOINT: endpoint,
        TOKENS_TABLE: `e2e-tokens-${suffix}`,
        SESSIONS_TABLE: `e2e-sessions-${suffix}`,
        LOG_LEVEL: 'error',
      },
      {},
    ),
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, timeout: 30_000 }),
  ]);
  if (started.status === 'fulfilled') stack = started.value;
  if (launched.status === 'fulfilled') browser = launched.value;
  if (started.status === 'rejected') throw started.reason;
  if (launched.status === 'rejected') throw launched.reason;
  expect(stack!.sandbox).toBeDefined();

  const storeConfig = readStoreConfig(stack!.env);
  dynamoClient = createDynamoClient(storeConfig);
  // Through the stack's own environment: its tables and its field key file.
  tokens = tokenStore(createServices(stack!.env, { dynamo: dynamoClient }));
}, 60_000);

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await stack?.stop().catch(() => undefined);
  dynamoClient?.destroy();
}, 30_000);

test('sign in and allow: the success page, the binding cookie cleared, the token readable and never in the browser', async () => {
  const { context, page, received } = await newPage();
  await signIn(page, 'e2e-profile-1');

  const callback = await decide(page, 'allow');
  expect(callback.status()).toBe(200);
  expect(isCallback(page.url())).toBe(true);
  await screenshot(page, 'e2e-success.png');

  const text = await page.locator('body').innerText();
  expect(text.toLowerCase()).toContain('connected');
  expect(await page.title()).toBe('Your Kroger account is connected');
  // The address bar no longer shows the one-time code and state (the callback redirected to a
  // clean URL), and never a token.
  expect(new URL(page.url()).search).toBe('');
  expect(page.url()).not.toMatch(/access_token|refresh_token|id_token|token=/i);
  const html = await page.content();
  expect(html).not.toMatch(/access_token|refresh_token|bearer/i);
  // The binding cookie did its job and was expired by the success page; no cookie is readable by script.
  expect(await bindingCookie(context)).toBeUndefined();
  await expect(page.evaluate(() => document.cookie)).resolves.toBe('');

  // A service reads the token with the reader library: fresh, and never seen by the browser.
  const token = await reader().getAccessToken('e2e-profile-1');
  expect(token.userId).toBe('e2e-profile-1');
  expect(token.accessToken.length).toBeGreaterThan(0);
  expect(token.expiresAt).toBeGreaterThan(Math.floor(Date.now() / 1000));
  const stored = await tokens!.get('e2e-profile-1');
  expect(stored?.refreshToken.length).toBeGreaterThan(0);
  expect(html).not.toContain(token.accessToken);
  expect(page.url()).not.toContain(token.accessToken);
  const everything = await received();
  expect(everything).toContain('Your Kroger account is connected'); // the capture did see the pages...
  expect(everything).not.toContain(token.accessToken); // ...and never a token
  expect(everything).not.toContain(stored!.refreshToken);
});

test('sign in and cancel: the cancelled page (403), nothing stored', async () => {
  const { context, page } = await newPage();
  await signIn(page, 'e2e-profile-2');
  await theStack().sandbox!.resetStats();

  const callback = await decide(page, 'deny');
  expect(callback.status()).toBe(403);
  expect(isCallback(page.url())).toBe(true);
  expect(new URL(page.url()).search).toBe('');
  await screenshot(page, 'e2e-cancelled.png');

  const text = (await page.locator('body').innerText()).toLowerCase();
  expect(text).toContain('cancelled');
  expect(text).toContain('nothing was connected');
  // The attempt was consumed, so its cookie is expired too.
  expect(await bindingCookie(context)).toBeUndefined();

  await expect(reader().getAccessToken('e2e-profile-2')).rejects.toBeInstanceOf(UnknownUserError);
  expect(await tokens!.get('e2e-profile-2')).toBeUndefined();
  expect((await theStack().sandbox!.stats()).authorizationCode).toBe(0);
});

test('the callback URL opened in another browser is refused (400); the browser that started it still completes', async () => {
  // Browser A: sign in and allow, but stop the redirect to /callback before it reaches the broker.
  const a = await newPage();
  // Playwright's page.route() sees only the first request of a redirect chain, and the sandbox
  // reaches /callback through two 303s, so the browser's own interception (CDP Fetch) stops it.
  let capture!: (url: string) => void;
  const captured = new Promise<string>((resolve) => (capture = resolve));
  const cdp = await a.context.newCDPSession(a.page);
  cdp.on('Fetch.requestPaused', (event) => {
    if (isCallback(event.request.url)) {
      capture(event.request.url);
      void cdp.send('Fetch.failRequest', { requestId: event.requestId, errorReason: 'Aborted' }).catch(() => undefined);
    } else {
      void cdp.send('Fetch.continueRequest', { requestId: event.requestId }).catch(() => undefined);
    }
  });
  await cdp.send('Fetch.enable', {
    patterns: [{ urlPattern: `${theStack().baseUrl}/callback*`, requestStage: 'Request' }],
  });
  await signIn(a.page, 'e2e-profile-3');
  await a.page.locator('button[name="decision"][value="allow"]').click();
  const callbackUrl = new URL(await withTimeout(captured, 'the redirect to /callback'));
  await cdp.send('Fetch.disable');
  await cdp.detach();
  expect(callbackUrl.searchParams.get('code')).toBeTruthy();
  expect(callbackUrl.searchParams.get('state')).toBeTruthy();
  expect(await bindingCookie(a.context)).toBeDefined();

  // Browser B (fresh context, no binding cookie) opens the same URL: refused before any call to
  // /token, nothing stored.
  await theStack().sandbox!.resetStats();
  const b = await newPage();
  const foreign = await b.page.goto(callbackUrl.href);
  expect(foreign?.status()).toBe(400);
  await screenshot(b.page, 'e2e-foreign-browser.png');
  const text = (await b.page.locator('body').innerText()).toLowerCase();
  expect(text).toContain('cookie');
  expect(text).toContain('different browser');
  expect(await tokens!.get('e2e-profile-3')).toBeUndefined();
  expect((await theStack().sandbox!.stats()).authorizationCode).toBe(0);

  // Browser A, which started the sign-in, can still finish it with the same URL.
  const finished = await a.page.goto(callbackUrl.href);
  expect(finished?.status()).toBe(200);
  expect((await a.page.locator('body').innerText()).toLowerCase()).toContain('connected');
  expect(await bindingCookie(a.context)).toBeUndefined();
  const token = await reader().getAccessToken('e2e-profile-3');
  expect(token.accessToken.length).toBeGreaterThan(0);
  expect(await a.page.content()).not.toContain(token.accessToken);
});
