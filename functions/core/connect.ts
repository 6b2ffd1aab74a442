/**
 * Connect codes: what a connect link's sign-in yields instead of a stored grant. The callback keeps
 * the grant as a *pending connection* and hands the browser a one-time code; the app's backend
 * completes it for its own signed-in user (`completeConnection`). A link forwarded to someone else
 * therefore binds nothing: their browser carries the code back to the app, where they are not the
 * link's app user, and the completion is refused. Pure: randomness comes in through a source.
 *
 * Also the contract between the app (the library, the CLI) and the broker's complete function.
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.7 (CSRF) — the same class of attack, one step later
 */
import { createHash } from 'node:crypto';
import { ArgumentError, type ErrorCode, type FunctionFailure, type ReceivedFunctionFailure } from './errors';
import { type RandomSource, secureRandom } from './login';
import { MAX_USER_ID_LENGTH } from './refresh-protocol';

/** The query parameter that carries a connect code to the link's return URL. */
export const CONNECT_CODE_PARAMETER = 'connect_code';

/** Random bytes in a connect code: 256 bits, well over the 128 the issue asks for. */
export const CONNECT_CODE_BYTES = 32;

/** A connect code is exactly this many base64url characters (32 bytes, no padding). */
export const CONNECT_CODE_LENGTH = 43;

/** Anything longer than this is refused as oversized before it is looked at. */
export const MAX_CONNECT_CODE_INPUT = 256;

/** How long a pending connection waits for the app to complete it. */
export const PENDING_CONNECTION_TTL_SECONDS = 600;

/**
 * How long a completed or cancelled code's tombstone (no tokens in it) is kept, so a second attempt
 * is told "already used" or "cancelled" rather than "unknown".
 */
export const CLOSED_CONNECTION_RETENTION_SECONDS = 86_400;

const CODE_SHAPE = /^[A-Za-z0-9_-]+$/;

/** A fresh connect code. */
export function newConnectCode(random: RandomSource = secureRandom): string {
  return random(CONNECT_CODE_BYTES);
}

/**
 * What the sessions table keys a pending connection by: a SHA-256 of the code, so the table never
 * holds a value that would complete it. Plain SHA-256 suffices for 256 random bits.
 */
export function hashConnectCode(code: string): string {
  return createHash('sha256').update(code, 'utf8').digest('base64url');
}

/**
 * Checks a connect code from outside (an app's request, a command line).
 * @throws {ArgumentError} not a string, oversized, or not the shape of a connect code
 */
export function parseConnectCode(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new ArgumentError('expected "connectCode" to be a non-empty string');
  }
  if (value.length > MAX_CONNECT_CODE_INPUT) {
    throw new ArgumentError(
      `the connect code is too long (${value.length} characters; a code has ${CONNECT_CODE_LENGTH})`,
    );
  }
  if (value.length !== CONNECT_CODE_LENGTH || !CODE_SHAPE.test(value)) {
    throw new ArgumentError(
      `the connect code is malformed: expected ${CONNECT_CODE_LENGTH} characters of A-Z a-z 0-9 - _`,
    );
  }
  return value;
}

/**
 * Checks an app user id from outside.
 * @throws {ArgumentError} not a string of 1 to {@link MAX_USER_ID_LENGTH} characters
 */
export function parseAppUserId(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_USER_ID_LENGTH) {
    throw new ArgumentError(`expected "appUserId" to be a string of 1 to ${MAX_USER_ID_LENGTH} characters`);
  }
  return value;
}

/** True when `url` already has a `connect_code` parameter (a return URL must not: the broker adds it). */
export function carriesConnectCode(url: string): boolean {
  try {
    return new URL(url).searchParams.has(CONNECT_CODE_PARAMETER);
  } catch {
    return false;
  }
}

/**
 * The return URL with `connect_code=<code>` appended to its query. Appended as text rather than
 * through `URLSearchParams`, which would re-encode the app's own parameters; the code is base64url,
 * so it needs no encoding.
 */
export function withConnectCode(returnTo: string, code: string): string {
  const url = new URL(returnTo);
  const pair = `${CONNECT_CODE_PARAMETER}=${code}`;
  url.search = url.search.length > 1 ? `${url.search}&${pair}` : pair;
  return url.href;
}

/** A completed connection: whose tokens they now are, and which Kroger account they belong to. */
export interface Connection {
  /** The app user id the tokens are stored under (read them with `tokens get <userId>`). */
  readonly userId: string;
  /** The Kroger profile id of the account that was connected. */
  readonly profileId: string;
}

/** A request to the complete function (and the arguments of `completeConnection`). */
export interface CompleteRequest {
  readonly connectCode: string;
  readonly appUserId: string;
}

/** Codes only the wire carries: a malformed request, and an unexpected failure. */
export type CompleteWireCode = 'BAD_REQUEST' | 'INTERNAL';

/** What the complete function answers: the connection, or a stable code and a message. Never a token. */
export type CompleteFunctionResult =
  ({ readonly ok: true } & Connection) | FunctionFailure<ErrorCode | CompleteWireCode>;

/** An answer as the library receives it: possibly from a newer broker, so any code string. */
export type ReceivedCompleteResult = ({ readonly ok: true } & Connection) | ReceivedFunctionFailure;

/**
 * Checks a complete function event (JSON from the app's backend, so anything at all).
 * @throws {ArgumentError} a malformed or oversized code, or a bad app user id
 */
export function parseCompleteRequest(event: unknown): CompleteRequest {
  const request = (typeof event === 'object' && event !== null ? event : {}) as Record<string, unknown>;
  return { connectCode: parseConnectCode(request.connectCode), appUserId: parseAppUserId(request.appUserId) };
}
