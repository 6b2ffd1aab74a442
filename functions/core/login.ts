/**
 * Starting a login: fresh `state`, PKCE S256 and a browser-binding secret, and the authorization
 * request URL. Pure: randomness comes in through an injectable source so tests can pin it.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { ProviderConfig } from './config';

/** Length limits for values that arrive from the browser (all are base64url of 32 bytes here). */
export const MAX_STATE_LENGTH = 128;

/** How long a login attempt (and its cookie) stays valid. */
export const LOGIN_ATTEMPT_TTL_SECONDS = 600;

/** Prefix of the browser-binding cookies (scoped to the callback path). */
export const BINDING_COOKIE_PREFIX = 'kroger_broker_login_';

/**
 * The binding cookie's name for one login attempt: each attempt has its own, so two sign-ins started
 * in two tabs of one browser do not overwrite each other's binding. Derived from `state`, which the
 * callback receives, so no lookup is needed to find it.
 */
export function bindingCookieName(state: string): string {
  return BINDING_COOKIE_PREFIX + createHash('sha256').update(state).digest('base64url').slice(0, 16);
}

/** Returns `bytes` random bytes, base64url encoded (no padding). */
export type RandomSource = (bytes: number) => string;

/** Cryptographically secure default for {@link RandomSource}. */
export const secureRandom: RandomSource = (bytes) => randomBytes(bytes).toString('base64url');

/**
 * PKCE S256 challenge for a verifier.
 * @see https://www.rfc-editor.org/rfc/rfc7636#section-4.2
 */
export function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/**
 * One-way hash of the binding cookie: the store never holds a value that would let someone forge it.
 * The comparison happens inside DynamoDB's conditional delete, on hashes of 256-bit random values.
 */
export function hashBinding(cookieValue: string): string {
  return createHash('sha256').update(cookieValue, 'utf8').digest('base64url');
}

/** What /login persists, keyed by `state`, to be consumed once at /callback. */
export interface LoginAttempt {
  readonly state: string;
  /** PKCE verifier; absent when `PKCE=false`. */
  readonly codeVerifier?: string;
  /** SHA-256 of the binding cookie value. */
  readonly bindingHash: string;
  /** The app's own user id when the login came through a connect link. */
  readonly appUserId?: string;
  /** Allow-listed URL to send the browser to after success. */
  readonly returnTo?: string;
  /** Epoch seconds after which the attempt is void, whatever DynamoDB's lazy TTL says. */
  readonly expiresAt: number;
}

/** Everything /login produces: the attempt to store, the cookie to set and where to redirect. */
export interface LoginStart {
  readonly attempt: LoginAttempt;
  /** Value of the binding cookie; only ever sent to the browser, never stored or logged. */
  readonly bindingValue: string;
  readonly authorizationUrl: string;
}

/**
 * Builds a login: `state` and the binding value carry 256 random bits each (RFC 9700 section 4.7 asks
 * for an unguessable, browser-bound value), the PKCE verifier 256 bits (RFC 7636 section 7.1).
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-2.1.1
 */
export function startLogin(
  config: Pick<ProviderConfig, 'authorizeUrl' | 'clientId' | 'redirectUri' | 'scopes' | 'pkce'>,
  options: { now: number; random?: RandomSource; appUserId?: string; returnTo?: string },
): LoginStart {
  const random = options.random ?? secureRandom;
  const state = random(32);
  const bindingValue = random(32);
  const codeVerifier = config.pkce ? random(32) : undefined;

  // Encoded with encodeURIComponent (spaces as %20), as Kroger's tutorial does, rather than
  // URLSearchParams' "+" for spaces, which some servers do not decode in a query string.
  const params: Array<[string, string]> = [
    ['client_id', config.clientId],
    ['redirect_uri', config.redirectUri],
    ['response_type', 'code'],
    ['scope', config.scopes.join(' ')],
    ['state', state],
  ];
  if (codeVerifier) {
    params.push(['code_challenge', s256(codeVerifier)], ['code_challenge_method', 'S256']);
  }
  const url = new URL(config.authorizeUrl);
  const query = params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  url.search = url.search ? `${url.search.slice(1)}&${query}` : query;

  return {
    attempt: {
      state,
      codeVerifier,
      bindingHash: hashBinding(bindingValue),
      appUserId: options.appUserId,
      returnTo: options.returnTo,
      expiresAt: options.now + LOGIN_ATTEMPT_TTL_SECONDS,
    },
    bindingValue,
    authorizationUrl: url.href,
  };
}

/**
 * The most logins one browser keeps binding cookies for. Each /login sets one (about 80 bytes, for
 * {@link LOGIN_ATTEMPT_TTL_SECONDS}); without a cap, a hundred logins in ten minutes would push the
 * browser's cookie header at /callback past `CALLBACK_LIMITS.cookieHeader`, and every sign-in in
 * that browser would fail. Eight leaves room for tabs and retries, at under 1 KB.
 */
export const MAX_LIVE_LOGINS = 8;

/**
 * The cookie (scoped to /login) that lists this browser's live login attempts. Binding cookies are
 * scoped to /callback, so /login never sees them; this ledger is how it knows which to expire.
 */
export const LOGIN_LEDGER_COOKIE = 'kroger_broker_logins';

/** One binding cookie the ledger knows of: its name's suffix and when it expires (epoch seconds). */
interface LedgerEntry {
  readonly tag: string;
  readonly expiresAt: number;
}

const LEDGER_ENTRY = /^([A-Za-z0-9_-]{16}):(\d{1,12})$/;
const MAX_LEDGER_INPUT = 1024;

/** What /login does with the browser's cookies: which binding cookies to expire, the new ledger. */
export interface LoginCookiePlan {
  /** Names of binding cookies to expire now (the oldest live logins beyond the cap). */
  readonly evict: readonly string[];
  /** The ledger's new value: the live logins, newest last, this one included. */
  readonly ledger: string;
}

/**
 * Plans the cookies of a new login: the browser keeps at most {@link MAX_LIVE_LOGINS} binding
 * cookies; the oldest beyond that are expired (their sign-ins can no longer finish in this
 * browser). A ledger that is missing, oversized or garbled counts as empty.
 * @param ledger the value of {@link LOGIN_LEDGER_COOKIE} the request carried
 * @param added the binding cookie this login sets, and its expiry
 */
export function planLoginCookies(
  ledger: string | undefined,
  added: { name: string; expiresAt: number },
  now: number,
): LoginCookiePlan {
  const live = new Map<string, number>();
  if (ledger && ledger.length <= MAX_LEDGER_INPUT) {
    for (const part of ledger.split('.')) {
      const match = LEDGER_ENTRY.exec(part);
      if (match && Number(match[2]) > now) live.set(match[1], Number(match[2]));
    }
  }
  const addedTag = added.name.slice(BINDING_COOKIE_PREFIX.length);
  live.delete(addedTag);
  const entries: LedgerEntry[] = [...live].map(([tag, expiresAt]) => ({ tag, expiresAt }));
  entries.sort((a, b) => a.expiresAt - b.expiresAt);
  const evicted = entries.splice(0, Math.max(0, entries.length - (MAX_LIVE_LOGINS - 1)));
  entries.push({ tag: addedTag, expiresAt: added.expiresAt });
  return {
    evict: evicted.map((entry) => BINDING_COOKIE_PREFIX + entry.tag),
    ledger: entries.map((entry) => `${entry.tag}:${entry.expiresAt}`).join('.'),
  };
}
