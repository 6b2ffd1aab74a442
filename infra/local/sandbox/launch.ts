/**
 * Starts the sandbox Kroger authorization server (server.mts) as a child process and drives its
 * test controls over HTTP. Kept free of oidc-provider imports (ESM-only) so CommonJS code, jest
 * and `npm start` can use it.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

// Types only: refusals.mts is ESM and runs in the sandbox's process, never in this one.
import type { GrantRefusal, RefusalGrantType, RefusalMode } from './refusals.mjs';

export type { GrantRefusal, RefusalGrantType, RefusalMode };

/** Options of {@link SandboxHandle.refuseToken}. */
export interface RefuseTokenOptions {
  /**
   * How many matching token requests are refused.
   * @default - every matching request until `refuseToken('none')`
   */
  readonly count?: number;
  /**
   * Which requests match, by `grant_type`; others are served normally and not counted down.
   * @default 'any'
   */
  readonly grantType?: RefusalGrantType;
}

/** The refusal the sandbox armed, as its control answered. */
export interface ArmedRefusal {
  readonly mode: RefusalMode | 'none';
  /** `null`: until `refuseToken('none')`. */
  readonly count: number | null;
  readonly grantType: RefusalGrantType;
  /**
   * The token-like value (43 base64url characters) in the bodies of `non-json-form`, `non-json-html`,
   * `oversized` and `stalled-body`, for leak checks; `null` for modes whose body carries none.
   */
  readonly canary: string | null;
}

/** Options of {@link startSandbox}. */
export interface SandboxOptions {
  /**
   * Port to listen on (loopback only).
   * @default 0 - a free port chosen by the system
   */
  readonly port?: number;
  /** The one registered client. It authenticates with HTTP Basic only. */
  readonly clientId: string;
  readonly clientSecret: string;
  /** Registered redirect URIs, matched exactly. */
  readonly redirectUris: readonly string[];
  /**
   * Access token lifetime in seconds, also the token response's `expires_in`.
   * @default 1800 - Kroger's 30 minutes
   */
  readonly accessTokenTtlSeconds?: number;
  /**
   * How long to wait for the ready line before giving up.
   * @default 60000 - it is ready in under 2 s on an idle machine; the margin is for a shared,
   * busy one (a test run's Java, Chromium and bundler beside it), where a tight limit failed a
   * whole test file for a start that was merely slow
   */
  readonly readyTimeoutMs?: number;
  /**
   * Receives the sandbox's log lines (stderr; never token values).
   * @default - lines are kept only to explain a failed start
   */
  readonly onLog?: (line: string) => void;
}

/** A running sandbox: its URLs, its client, and its test controls. */
export interface SandboxHandle {
  /** `http://localhost:PORT`. */
  readonly origin: string;
  /** The issuer, as oidc-provider puts it in the callback's `iss` (RFC 9207); equals `origin`. */
  readonly issuer: string;
  /** `${origin}/v1/connect/oauth2`: `/authorize` and `/token` live under it, as at Kroger. */
  readonly oauth2BaseUrl: string;
  /** `origin`; the profile is at `${apiBaseUrl}/v1/identity/profile`. */
  readonly apiBaseUrl: string;
  /** RFC 7009 token revocation endpoint. */
  readonly revocationUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Counts of POST /token by grant type, including rejected requests and injected failures. */
  stats(): Promise<{ authorizationCode: number; refreshToken: number }>;
  resetStats(): Promise<void>;
  /**
   * Makes the next `count` token requests answer 503 or hang (never answer), to simulate an
   * outage or a timeout; without `count`, until `failToken('none')`.
   */
  failToken(mode: 'none' | '503' | 'hang', count?: number): Promise<void>;
  /**
   * Makes the next `count` token requests of `grantType` answer the way a strict server refuses
   * (`POST /__sandbox/refuse-token`). The request is answered before oidc-provider sees it, so the
   * code or refresh token presented is neither used up nor rotated: it works once the refusal is
   * over. Counted in {@link stats}. `failToken` takes precedence while both are armed; a new call
   * replaces the previous refusal; `'none'` ends it.
   *
   * Exact answers (all with `Cache-Control: no-store`):
   * - `kroger-invalid-request`: 400 `{"error":"invalid_request","error_description":"Missing/Invalid Refresh Token"}`
   * - `kroger-errors-shape`: 400 `{"errors":{"timestamp":<epoch ms>,"code":"AUTH-1007-400","reason":"Missing/Invalid Refresh Token"}}`
   *   (no OAuth `error` member; the code is invented after Kroger's `<API>-<number>-<status>` codes)
   * - `bare-400`: 400, `Content-Length: 0`, no Content-Type
   * - `invalid-client`: 401 `{"error":"invalid_client","error_description":"client authentication failed"}` with
   *   `WWW-Authenticate: Basic realm="<issuer>", error="invalid_client", error_description="client authentication failed"`,
   *   what a wrong secret gets, here for the right one: without `count`, a rotated or disabled client until `'none'`
   * - `invalid-client-no-challenge`: the same 401 without `WWW-Authenticate`
   * - `non-json-form`: 200 `application/x-www-form-urlencoded`
   *   `access_token=<canary>&token_type=bearer&expires_in=<ttl>&refresh_token=<canary>`
   * - `non-json-html`: 200 `text/html; charset=utf-8`, a page starting
   *   `<!DOCTYPE html><html><body><pre>access_token=<canary>&amp;token_type=bearer</pre>`
   * - `oversized`: 200 `application/json; charset=utf-8`, chunked (no Content-Length), exactly 5 MiB
   *   (5,242,880 bytes) of valid JSON: `{"access_token":"<canary>","token_type":"bearer","expires_in":<ttl>,"padding":"aaa…"}`
   * - `stalled-body`: 200 `application/json; charset=utf-8` whose Content-Length announces a full token response,
   *   of which only `{"access_token":"<canary>",` is sent; the rest never comes, until the client aborts
   * @returns the armed refusal, with the canary to look for in logs
   */
  refuseToken(mode: RefusalMode | 'none', opts?: RefuseTokenOptions): Promise<ArmedRefusal>;
  /** When `omitRefreshToken` is true, refresh responses carry no refresh_token and the old one stays valid. */
  setRotation(opts: { omitRefreshToken: boolean }): Promise<void>;
  /**
   * Revokes every grant of the account: its tokens stop working and every later refresh with any
   * of its refresh tokens (current or already rotated) is refused, for good, in the shape `refusal`
   * names (the bodies of {@link refuseToken}'s modes of the same name). A wrong client secret still
   * gets 401 invalid_client first. A new sign-in creates a new, working grant.
   * @param opts.refusal - `'invalid-grant'` (default): oidc-provider's 400 `{"error":"invalid_grant",...}`
   */
  revokeAccount(accountId: string, opts?: { refusal?: GrantRefusal }): Promise<void>;
  /** Stops the process; safe to call twice. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 5_000;
const STDERR_TAIL_LINES = 30;

/**
 * Starts a sandbox and resolves once it listens.
 * @throws Error when it does not print its ready line within `readyTimeoutMs` or exits first; the message ends
 * with the tail of its stderr.
 */
export async function startSandbox(opts: SandboxOptions): Promise<SandboxHandle> {
  if (opts.redirectUris.length === 0) throw new Error('expected at least one "redirectUris" entry');

  // tsx's ESM loader, resolved from this package so the sandbox starts from any working directory.
  const tsxLoader = pathToFileURL(require.resolve('tsx')).href;
  const child = spawn(process.execPath, ['--import', tsxLoader, join(__dirname, 'server.mts')], {
    env: {
      ...process.env,
      SANDBOX_PORT: String(opts.port ?? 0),
      SANDBOX_HOST: '127.0.0.1',
      SANDBOX_CLIENT_ID: opts.clientId,
      SANDBOX_CLIENT_SECRET: opts.clientSecret,
      SANDBOX_REDIRECT_URIS: opts.redirectUris.join(' '),
      SANDBOX_ACCESS_TOKEN_TTL: String(opts.accessTokenTtlSeconds ?? 1800),
      SANDBOX_EXIT_ON_STDIN_END: '1',
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });

  // stderr is always drained (a full pipe would block the child); the tail explains a failed start.
  const tail: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    tail.push(line);
    if (tail.length > STDERR_TAIL_LINES) tail.shift();
    opts.onLog?.(line);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const port = await new Promise<number>((resolve, reject) => {
    const fail = (reason: string): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      // Give the stderr reader a moment to collect the last lines.
      setTimeout(() => reject(new Error(`sandbox ${reason}\n--- sandbox stderr ---\n${tail.join('\n')}`)), 50);
    };
    const readyTimeoutMs = opts.readyTimeoutMs ?? READY_TIMEOUT_MS;
    const timer = setTimeout(() => fail(`did not get ready within ${readyTimeoutMs / 1000} s`), readyTimeoutMs);
    child.once('error', (err) => fail(`could not be spawned: ${err.message}`));
    const onExit = (code: number | null, signal: string | null): void =>
      fail(`exited before it was ready (code ${code}, signal ${signal})`);
    child.once('exit', onExit);
    createInterface({ input: child.stdout }).once('line', (line) => {
      const ready = parseReady(line);
      if (ready === undefined) return fail(`printed an unexpected first line: ${JSON.stringify(line.slice(0, 200))}`);
      clearTimeout(timer);
      child.removeListener('exit', onExit);
      resolve(ready);
    });
  });

  const origin = `http://localhost:${port}`;
  const oauth2BaseUrl = `${origin}/v1/connect/oauth2`;
  const control = (method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> =>
    controlRequest(`${origin}/__sandbox/${path}`, method, body);

  return {
    origin,
    issuer: origin,
    oauth2BaseUrl,
    apiBaseUrl: origin,
    revocationUrl: `${oauth2BaseUrl}/revoke`,
    clientId: opts.clientId,
    clientSecret: opts.clientSecret,
    stats: async () => (await control('GET', 'stats')) as { authorizationCode: number; refreshToken: number },
    resetStats: async () => void (await control('POST', 'stats/reset')),
    failToken: async (mode, count) => void (await control('POST', 'fail-token', { mode, count })),
    setRotation: async ({ omitRefreshToken }) => void (await control('POST', 'rotation', { omitRefreshToken })),
    refuseToken: async (mode, { count, grantType } = {}) =>
      (await control('POST', 'refuse-token', { mode, count, grantType })) as ArmedRefusal,
    revokeAccount: async (accountId, { refusal } = {}) =>
      void (await control('POST', 'revoke-account', { accountId, refusal })),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

function parseReady(line: string): number | undefined {
  try {
    const message = JSON.parse(line) as { ready?: unknown; port?: unknown };
    return message.ready === true && Number.isInteger(message.port) ? (message.port as number) : undefined;
  } catch {
    return undefined;
  }
}

async function controlRequest(url: string, method: 'GET' | 'POST', body: unknown): Promise<unknown> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? undefined : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`sandbox control ${method} ${new URL(url).pathname} answered ${res.status}: ${text}`);
  return JSON.parse(text) as unknown;
}
