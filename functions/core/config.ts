/**
 * Configuration, read once per process from an environment-like record and validated up front.
 * Names follow Kroger's tutorial (`CLIENT_ID`, `CLIENT_SECRET`, `OAUTH2_BASE_URL`, `API_BASE_URL`,
 * `REDIRECT_URL`) plus the broker's own. A missing or malformed value throws a {@link ConfigError}
 * that names the variable, so a bad deploy fails at init instead of on a user's request.
 */
import { ConfigError } from './errors';
import { DEFAULT_REFRESH_TIMEOUT_MS, MAX_REFRESH_TIMEOUT_MS } from './budget';
import {
  DEFAULT_REFRESH_POLICY,
  PLAINTEXT_FIELD_POLICIES,
  type PlaintextFieldPolicy,
  REFRESH_LIMIT_SETTINGS,
  REFRESH_POLICIES,
  REFRESH_POLICY_SETTINGS,
  type RefreshPolicyName,
} from './schema';
import type { RefreshPolicy } from './tokens';

/** What a process reads configuration from: usually `process.env`. */
export type Env = Readonly<Record<string, string | undefined>>;

/** Kroger's scopes for a broker that shops for a user; `profile.compact` gives the profile id. */
export const DEFAULT_SCOPES = ['product.compact', 'cart.basic:write', 'profile.compact'] as const;

/** Everything needed to talk to the authorization server and the API. */
export interface ProviderConfig {
  readonly clientId: string;
  /** `{OAUTH2_BASE_URL}/authorize` */
  readonly authorizeUrl: string;
  /** `{OAUTH2_BASE_URL}/token` */
  readonly tokenUrl: string;
  /** RFC 7009 revocation endpoint, when the provider has one (`OAUTH2_REVOCATION_URL`). */
  readonly revocationUrl?: string;
  /** `{API_BASE_URL}/v1/identity/profile` */
  readonly profileUrl: string;
  /** The exact redirect URI registered with the provider (`REDIRECT_URL`). */
  readonly redirectUri: string;
  readonly scopes: readonly string[];
  /** Send PKCE S256 (RFC 7636); `PKCE=false` only for a provider that rejects it. */
  readonly pkce: boolean;
  /**
   * Expected `iss` authorization response parameter (RFC 9207), when `OAUTH2_ISSUER` is set. Without
   * it a returned `iss` is not checked: with a single authorization server there is no mix-up to
   * defend against (RFC 9700 section 4.4).
   */
  readonly issuer?: string;
  /** Per-request timeout towards the provider, well inside API Gateway's 30 s (`PROVIDER_TIMEOUT_MS`). */
  readonly timeoutMs: number;
  /**
   * Timeout of a refresh call (`REFRESH_TIMEOUT_MS`), longer than {@link timeoutMs}: nobody's browser
   * waits on a refresh, and a refresh abandoned after it was sent may have rotated the refresh token
   * (its outcome is unknown), so it is given more time to answer.
   */
  readonly refreshTimeoutMs: number;
  /** Plain `http:` is allowed only for loopback hosts (the local sandbox). */
  readonly allowInsecureHttp: boolean;
}

/** Where tokens and login sessions live. */
export interface StoreConfig {
  readonly tokensTable: string;
  /** Login attempts and connect links: a table token readers are never granted. */
  readonly sessionsTable: string;
  /** A local DynamoDB (DynamoDB Local) instead of the AWS endpoint. */
  readonly endpoint?: string;
  /**
   * The access key id sent to a local endpoint (`DYNAMODB_LOCAL_ACCESS_KEY`). DynamoDB Local keeps one
   * database per access key, so `npm start` uses a random one per run: another client on the network,
   * with any other key, sees none of its tables. Unset: `local`.
   */
  readonly localAccessKey?: string;
  readonly region: string;
}

/**
 * Where the key that encrypts refresh tokens and code verifiers comes from: a KMS key in AWS
 * (`FIELD_KEY_ARN`), a local key file for `npm start` and the tests (`FIELD_KEY_FILE`).
 */
export type FieldKeyConfig =
  | { readonly kind: 'kms'; readonly keyArn: string; readonly region: string }
  | { readonly kind: 'local'; readonly file: string };

/** Where the client secret comes from: Secrets Manager in AWS, `CLIENT_SECRET` locally. */
export type SecretConfig =
  { readonly kind: 'secrets-manager'; readonly secretId: string } | { readonly kind: 'static'; readonly value: string };

/** What the login/callback pages may redirect to after success, and what they say. */
export interface FlowConfig {
  /** Allow-listed origins or URL prefixes a `returnTo` may point at (`RETURN_TO_ALLOWLIST`). */
  readonly returnToAllowlist: readonly string[];
  /** Default target after success (`SUCCESS_REDIRECT`); must itself be on the allow-list. */
  readonly successRedirect?: string;
  /**
   * The app's name as the pages show it (`APP_NAME`).
   * @default {@link DEFAULT_APP_NAME}
   */
  readonly appName?: string;
  /**
   * Whether `/login` without a connect link is served (`PUBLIC_LOGIN`). Deployments that connect
   * accounts only through links turn it off.
   * @default true
   */
  readonly publicLogin?: boolean;
}

/** What the pages call the app when `APP_NAME` is not set. */
export const DEFAULT_APP_NAME = 'the app';

/** The longest `APP_NAME` accepted: it is a name on a page, not a sentence. */
export const MAX_APP_NAME_LENGTH = 64;

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

function required(env: Env, name: string): string {
  const value = env[name]?.trim();
  if (!value) {
    throw new ConfigError(`${name} environment variable is not set`);
  }
  return value;
}

function optional(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

/**
 * Parses an absolute URL and requires https, except on loopback hosts.
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-2.6 (transport security)
 */
export function parseUrlSetting(name: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} must be an absolute URL, got "${value}"`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    throw new ConfigError(`${name} must use https (plain http only on localhost), got "${value}"`);
  }
  if (url.username || url.password) {
    throw new ConfigError(`${name} must not contain credentials`);
  }
  return url;
}

function trimSlash(url: URL): string {
  return url.href.replace(/\/+$/, '');
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = optional(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ConfigError(`${name} must be "true" or "false", got "${raw}"`);
}

// RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** Parses `SCOPES` (space separated); the broker needs a profile scope to key tokens by user. */
export function parseScopes(raw: string | undefined): string[] {
  const scopes = raw === undefined ? [...DEFAULT_SCOPES] : raw.split(/\s+/).filter(Boolean);
  if (scopes.length === 0) {
    throw new ConfigError('SCOPES must list at least one scope');
  }
  for (const scope of scopes) {
    if (!SCOPE_TOKEN.test(scope)) {
      throw new ConfigError(`SCOPES has an invalid scope "${scope}"`);
    }
  }
  if (!scopes.some((s) => s.startsWith('profile.'))) {
    throw new ConfigError('SCOPES must include "profile.compact": tokens are stored under the Kroger profile id');
  }
  return [...new Set(scopes)];
}

/** Reads the provider settings (`CLIENT_ID`, `OAUTH2_BASE_URL`, `API_BASE_URL`, `REDIRECT_URL`, ...). */
export function readProviderConfig(env: Env): ProviderConfig {
  const clientId = required(env, 'CLIENT_ID');
  const base = parseUrlSetting('OAUTH2_BASE_URL', required(env, 'OAUTH2_BASE_URL'));
  const api = parseUrlSetting('API_BASE_URL', required(env, 'API_BASE_URL'));
  const redirect = parseUrlSetting('REDIRECT_URL', required(env, 'REDIRECT_URL'));
  if (redirect.hash) {
    throw new ConfigError('REDIRECT_URL must not have a fragment (RFC 6749 section 3.1.2)');
  }
  const revocation = optional(env, 'OAUTH2_REVOCATION_URL');
  const issuer = optional(env, 'OAUTH2_ISSUER');
  const insecure = [base, api, redirect].some((u) => u.protocol === 'http:');
  const timeoutMs = readIntSetting(env, 'PROVIDER_TIMEOUT_MS', 8000, 1, 10_000);
  return {
    clientId,
    authorizeUrl: `${trimSlash(base)}/authorize`,
    tokenUrl: `${trimSlash(base)}/token`,
    revocationUrl: revocation ? parseUrlSetting('OAUTH2_REVOCATION_URL', revocation).href : undefined,
    profileUrl: `${trimSlash(api)}/v1/identity/profile`,
    // Verbatim, not URL-normalised: the provider compares it as a string with the registered one.
    redirectUri: required(env, 'REDIRECT_URL'),
    scopes: parseScopes(optional(env, 'SCOPES')),
    pkce: bool(env, 'PKCE', true),
    // Compared as the exact string the provider sends (RFC 9207 section 2.4), so kept verbatim.
    issuer: issuer ? (parseUrlSetting('OAUTH2_ISSUER', issuer), issuer) : undefined,
    // At most 10 s: the callback makes two calls in a row inside its 25 s Lambda timeout.
    timeoutMs,
    refreshTimeoutMs: readRefreshTimeout(env, timeoutMs),
    allowInsecureHttp: insecure,
  };
}

/** `REFRESH_TIMEOUT_MS`: longer than `PROVIDER_TIMEOUT_MS`, at most {@link MAX_REFRESH_TIMEOUT_MS}. */
function readRefreshTimeout(env: Env, providerTimeoutMs: number): number {
  const fallback = Math.max(DEFAULT_REFRESH_TIMEOUT_MS, providerTimeoutMs + 1);
  const value = readIntSetting(env, 'REFRESH_TIMEOUT_MS', fallback, 1, MAX_REFRESH_TIMEOUT_MS);
  if (value <= providerTimeoutMs) {
    throw new ConfigError(
      `REFRESH_TIMEOUT_MS (${value}) must be longer than PROVIDER_TIMEOUT_MS (${providerTimeoutMs}): a refresh abandoned after it was sent may have used up the refresh token`,
    );
  }
  return value;
}

/** Limits on what refreshes readers can cause, and the guard against mass expiry. */
export interface RefreshLimitsConfig {
  /** A forced refresh is honoured at most once per user per this many seconds (`FORCE_REFRESH_MIN_INTERVAL_SECONDS`). */
  readonly forceRefreshMinIntervalSeconds: number;
  /**
   * At most this many grants are marked `reauth_required` per window for one shape of refusal
   * (`MASS_REFUSAL_THRESHOLD`); more are held (kept active, retried) and alarmed. 0 turns the guard off.
   */
  readonly massRefusalThreshold: number;
  /** The guard's window (`MASS_REFUSAL_WINDOW_SECONDS`). */
  readonly massRefusalWindowSeconds: number;
}

/** Reads {@link RefreshLimitsConfig} from the settings of the same names (see `REFRESH_LIMIT_SETTINGS`). */
export function readRefreshLimits(env: Env): RefreshLimitsConfig {
  const setting = (name: keyof typeof REFRESH_LIMIT_SETTINGS) => {
    const { default: fallback, min, max } = REFRESH_LIMIT_SETTINGS[name];
    return readIntSetting(env, name, fallback, min, max);
  };
  return {
    forceRefreshMinIntervalSeconds: setting('FORCE_REFRESH_MIN_INTERVAL_SECONDS'),
    massRefusalThreshold: setting('MASS_REFUSAL_THRESHOLD'),
    massRefusalWindowSeconds: setting('MASS_REFUSAL_WINDOW_SECONDS'),
  };
}

const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;

function tableName(env: Env, name: string, fallback: string): string {
  const value = optional(env, name) ?? fallback;
  if (!TABLE_NAME.test(value)) {
    throw new ConfigError(`${name} must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -), got "${value}"`);
  }
  return value;
}

// DynamoDB Local 2.x+ refuses an access key id with anything but letters and digits.
const LOCAL_ACCESS_KEY = /^[A-Za-z0-9]{1,128}$/;

/** Reads `TOKENS_TABLE`, `SESSIONS_TABLE`, `DYNAMODB_ENDPOINT` (with `DYNAMODB_LOCAL_ACCESS_KEY`) and the region. */
export function readStoreConfig(env: Env): StoreConfig {
  const endpoint = optional(env, 'DYNAMODB_ENDPOINT');
  const localAccessKey = optional(env, 'DYNAMODB_LOCAL_ACCESS_KEY');
  if (localAccessKey !== undefined && !LOCAL_ACCESS_KEY.test(localAccessKey)) {
    // The value is a credential: the message does not repeat it.
    throw new ConfigError('DYNAMODB_LOCAL_ACCESS_KEY must be 1 to 128 letters and digits');
  }
  return {
    tokensTable: tableName(env, 'TOKENS_TABLE', 'kroger-tokens'),
    sessionsTable: tableName(env, 'SESSIONS_TABLE', 'kroger-login-sessions'),
    endpoint: endpoint ? parseUrlSetting('DYNAMODB_ENDPOINT', endpoint).href : undefined,
    localAccessKey,
    region: optional(env, 'AWS_REGION') ?? optional(env, 'AWS_DEFAULT_REGION') ?? 'us-east-1',
  };
}

// arn:<partition>:kms:<region>:<account>:key/<key id>; an alias would let the key behind it change.
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):\d{12}:key\/[A-Za-z0-9-]+$/;

/**
 * Reads where the field encryption key comes from: `FIELD_KEY_ARN` (a KMS key ARN; the stack sets it
 * on the functions it grants the key to) or `FIELD_KEY_FILE` (a local key file; `npm start` creates
 * `.local/field-key`). Called only where a field is encrypted or decrypted: token readers need neither.
 * @throws {ConfigError} neither or both are set, or the ARN is not a KMS key ARN
 */
export function readFieldKeyConfig(env: Env): FieldKeyConfig {
  const arn = optional(env, 'FIELD_KEY_ARN');
  const file = optional(env, 'FIELD_KEY_FILE');
  if (arn && file) {
    throw new ConfigError(
      'FIELD_KEY_ARN and FIELD_KEY_FILE are both set: set FIELD_KEY_ARN in AWS, FIELD_KEY_FILE locally',
    );
  }
  if (arn) {
    const match = KMS_KEY_ARN.exec(arn);
    if (!match)
      throw new ConfigError(
        `FIELD_KEY_ARN must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), got "${arn}"`,
      );
    return { kind: 'kms', keyArn: arn, region: match[1] };
  }
  if (file) return { kind: 'local', file };
  throw new ConfigError(
    'FIELD_KEY_ARN environment variable is not set (the KMS key encrypting refresh tokens; FIELD_KEY_FILE for a local key file)',
  );
}

/**
 * Reads where the client secret comes from. In AWS the stack sets `CLIENT_SECRET_ARN` and the value
 * stays in Secrets Manager; `CLIENT_SECRET` is for local runs only.
 */
export function readSecretConfig(env: Env): SecretConfig {
  const arn = optional(env, 'CLIENT_SECRET_ARN');
  if (arn) return { kind: 'secrets-manager', secretId: arn };
  const value = env.CLIENT_SECRET;
  if (!value) {
    throw new ConfigError('CLIENT_SECRET environment variable is not set (or CLIENT_SECRET_ARN in AWS)');
  }
  return { kind: 'static', value };
}

/**
 * Reads `RETURN_TO_ALLOWLIST` (space or comma separated URL prefixes), `SUCCESS_REDIRECT`, `APP_NAME`
 * and `PUBLIC_LOGIN`.
 */
export function readFlowConfig(env: Env): FlowConfig {
  const list = (optional(env, 'RETURN_TO_ALLOWLIST') ?? '')
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((entry) => parseUrlSetting('RETURN_TO_ALLOWLIST', entry).href);
  const pages = { appName: readAppName(env), publicLogin: bool(env, 'PUBLIC_LOGIN', true) };
  const successRedirect = optional(env, 'SUCCESS_REDIRECT');
  if (successRedirect) {
    const href = parseUrlSetting('SUCCESS_REDIRECT', successRedirect).href;
    if (!list.some((prefix) => isAllowedTarget(href, [prefix]))) {
      throw new ConfigError('SUCCESS_REDIRECT must be on RETURN_TO_ALLOWLIST');
    }
    return { returnToAllowlist: list, successRedirect: href, ...pages };
  }
  return { returnToAllowlist: list, ...pages };
}

/** Reads `APP_NAME`: printable text of at most {@link MAX_APP_NAME_LENGTH} characters. */
export function readAppName(env: Env): string {
  const name = optional(env, 'APP_NAME');
  if (name === undefined) return DEFAULT_APP_NAME;
  if (name.length > MAX_APP_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new ConfigError(`APP_NAME must be at most ${MAX_APP_NAME_LENGTH} printable characters`);
  }
  return name;
}

/**
 * True when `target` is an absolute https (or loopback http) URL on an allow-listed origin and path
 * prefix. Compared on parsed URLs, never on raw strings, so `https://app.example.com.evil.test`
 * does not pass for `https://app.example.com`.
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.11 (open redirection)
 */
export function isAllowedTarget(target: string, allowlist: readonly string[]): boolean {
  let url: URL;
  try {
    url = parseUrlSetting('returnTo', target);
  } catch {
    return false;
  }
  return allowlist.some((entry) => {
    const allowed = new URL(entry);
    if (url.origin !== allowed.origin) return false;
    const prefix = allowed.pathname.endsWith('/') ? allowed.pathname : `${allowed.pathname}/`;
    return allowed.pathname === '/' || url.pathname === allowed.pathname || url.pathname.startsWith(prefix);
  });
}

/**
 * The broker's login URL on the host and path of its redirect URI: the trailing `/callback` becomes
 * `/login` (query dropped). The login must be served where the callback is, since the browser-binding
 * cookie set at /login has to come back with the callback.
 */
export function loginUrlFromRedirect(redirectUrl: string): string {
  const url = new URL(redirectUrl);
  url.pathname = url.pathname.replace(/\/callback\/?$/, '/login');
  url.search = '';
  return url.href;
}

/**
 * Reads the refresh policy: `REFRESH_POLICY` (`eager` or `on-read`, default `eager`) and, for
 * `on-read`, `KEEP_ALIVE_SECONDS` (see `REFRESH_POLICY_SETTINGS`). Every function that writes a
 * user's schedule reads it, so they agree on it.
 * @throws {ConfigError} an unknown policy or a keep-alive out of range, naming the variable
 */
export function readRefreshPolicy(env: Env): RefreshPolicy {
  const raw = optional(env, 'REFRESH_POLICY')?.toLowerCase() ?? DEFAULT_REFRESH_POLICY;
  if (!(REFRESH_POLICIES as readonly string[]).includes(raw)) {
    throw new ConfigError(`REFRESH_POLICY must be one of ${REFRESH_POLICIES.join(', ')}, got "${raw}"`);
  }
  const { default: fallback, min, max } = REFRESH_POLICY_SETTINGS.KEEP_ALIVE_SECONDS;
  return {
    name: raw as RefreshPolicyName,
    keepAliveSeconds: readIntSetting(env, 'KEEP_ALIVE_SECONDS', fallback, min, max),
  };
}

/**
 * Reads `FIELD_PLAINTEXT` (`accept` by default): whether a secret field stored before encryption is
 * still read. See {@link PLAINTEXT_FIELD_POLICIES}.
 * @throws {ConfigError} a value other than `accept` or `refuse`
 */
export function readPlaintextFieldPolicy(env: Env): PlaintextFieldPolicy {
  const raw = optional(env, 'FIELD_PLAINTEXT')?.toLowerCase() ?? 'accept';
  if (!(PLAINTEXT_FIELD_POLICIES as readonly string[]).includes(raw)) {
    throw new ConfigError(`FIELD_PLAINTEXT must be one of ${PLAINTEXT_FIELD_POLICIES.join(', ')}, got "${raw}"`);
  }
  return raw as PlaintextFieldPolicy;
}

/** Log levels `LOG_LEVEL` accepts. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** Reads `LOG_LEVEL` (default `info`). */
export function readLogLevel(env: Env): (typeof LOG_LEVELS)[number] {
  const raw = optional(env, 'LOG_LEVEL')?.toLowerCase() ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(raw)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${raw}"`);
  }
  return raw as (typeof LOG_LEVELS)[number];
}

/**
 * Reads a whole-number setting in `[min, max]`, or `fallback` when unset. Exported for the settings
 * of single entry points (the refresher, the local stack).
 */
export function readIntSetting(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(`${name} must be a whole number between ${min} and ${max}, got "${raw}"`);
  }
  return Number(raw);
}
