/**
 * Named errors with stable codes. Handlers map them to HTTP statuses; the reader library and the
 * CLI map them to typed results and exit codes. Messages are lowercase, quote the field, and never
 * carry a token, a code, a verifier or the client secret.
 *
 * The set of codes is closed ({@link ERROR_CODES}): callers switch on `error.code` and can rely on
 * never meeting another value from this package.
 */

/** Every code an error of this package can carry, one per way things go wrong. */
export const ERROR_CODES = [
  /** A configuration value (environment variable, construct prop) is missing or malformed. */
  'CONFIG_INVALID',
  /** An argument passed to a function or command is invalid. */
  'INVALID_ARGUMENT',
  'CALLBACK_MISSING_PARAMETERS',
  'CALLBACK_INPUT_TOO_LARGE',
  'CALLBACK_INVALID_STATE',
  'CALLBACK_BROWSER_MISMATCH',
  'CALLBACK_PROVIDER_ERROR',
  'CALLBACK_ISSUER_MISMATCH',
  /** A public sign-in finished for a user id whose tokens were bound through a connect link. */
  'CALLBACK_LINK_BOUND',
  /** A public sign-in (no connect link) finished after `PUBLIC_LOGIN` was turned off. */
  'CALLBACK_PUBLIC_DISABLED',
  'LOGIN_INVALID_SESSION',
  'LOGIN_RETURN_TO_NOT_ALLOWED',
  'LOGIN_INPUT_TOO_LARGE',
  /** `/login` without a connect link while `PUBLIC_LOGIN=false`. */
  'LOGIN_PUBLIC_DISABLED',
  /** No pending connection has this connect code (never issued, or cleaned up long ago). */
  'CONNECT_CODE_UNKNOWN',
  /** The connect code was already completed. */
  'CONNECT_CODE_USED',
  /** The connect code's pending connection expired before it was completed. */
  'CONNECT_CODE_EXPIRED',
  /** The connect code belongs to another app user; presenting it cancelled it. */
  'CONNECT_CODE_FOREIGN',
  /** The connect code was cancelled earlier, when it was presented for another app user. */
  'CONNECT_CODE_CANCELLED',
  'PROVIDER_UNAVAILABLE',
  'PROVIDER_INVALID_GRANT',
  /**
   * The provider refused the broker's client credentials (`invalid_client`, a 401) or the client
   * itself (`unauthorized_client`, `unsupported_grant_type`): the operator's problem, not the user's.
   */
  'PROVIDER_CLIENT_REJECTED',
  'PROVIDER_BAD_RESPONSE',
  'PROVIDER_ISSUER_MISMATCH',
  'SECRET_UNAVAILABLE',
  'UNKNOWN_USER',
  'CONCURRENT_UPDATE',
  /** A write made under the refresh lease found the lease taken over by another process. */
  'LEASE_LOST',
  'REAUTH_REQUIRED',
  'REFRESH_IN_PROGRESS',
  /** The broker's refresh function failed in a way this reader does not know (see `remoteCode`). */
  'REFRESH_FUNCTION_FAILED',
  /** The broker's complete function failed in a way this library does not know (see `remoteCode`). */
  'COMPLETE_FUNCTION_FAILED',
  /** A stored encrypted field does not decrypt: moved from another item, altered, or under another key. */
  'DECRYPTION_FAILED',
  /** The field encryption key could not be used (KMS unreachable, throttled, access denied, key disabled). */
  'KEY_UNAVAILABLE',
  /** The token store (DynamoDB) was throttled, timed out, failed (5xx) or could not be reached: retry. */
  'STORE_UNAVAILABLE',
  /** The broker's refresh or complete function could not be invoked (throttled, timed out, failed): retry. */
  'FUNCTION_UNAVAILABLE',
  /** The event bus (EventBridge) refused or could not take an event; events are best effort. */
  'EVENTS_UNAVAILABLE',
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** True when `value` is one of {@link ERROR_CODES}. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/**
 * The dependencies whose temporary unavailability the broker names: the token store, the field key,
 * the client secret, the broker's own functions (invoked by readers), the event bus, and Kroger.
 */
export const DEPENDENCIES = {
  dynamodb: 'the token store (DynamoDB)',
  kms: 'the field encryption key (KMS)',
  secretsmanager: 'the client secret (Secrets Manager)',
  lambda: "the broker's function (Lambda)",
  eventbridge: 'the event bus (EventBridge)',
  provider: 'Kroger',
} as const;

/** One of {@link DEPENDENCIES}. */
export type Dependency = keyof typeof DEPENDENCIES;

/** What every error says about trying again. */
export interface RetryAdvice {
  /**
   * True when the same call may succeed later without anybody acting (a throttled, slow or failing
   * dependency, a refresh in progress): nothing was lost, try again. False when it would fail the
   * same way (an unknown user, a dead grant, a refused configuration).
   */
  readonly retryable: boolean;
  /** When known, how long to wait before trying again, in whole seconds. */
  readonly retryAfterSeconds?: number;
}

/** Options every broker error takes. */
export interface BrokerErrorOptions {
  readonly cause?: unknown;
  /** @default false */
  readonly retryable?: boolean;
  readonly retryAfterSeconds?: number;
}

/**
 * Base class: every error the broker raises on purpose has a stable `code`, and says whether trying
 * again may help (`retryable`, and where known `retryAfterSeconds`).
 *
 * Each class names itself with a literal `name`: the Lambda bundles are minified, which renames
 * classes, and logs (`"name"`) and the runtime's `errorType` must still say `ConfigError`. A literal
 * per class costs nothing at start, unlike esbuild's `keepNames`, which wraps every function of the
 * bundle (the AWS SDK's too).
 */
export class BrokerError extends Error implements RetryAdvice {
  override readonly name: string = 'BrokerError';

  /** Stable machine-readable code, safe to log and to branch on. */
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly retryAfterSeconds?: number;

  constructor(message: string, code: ErrorCode, options?: BrokerErrorOptions) {
    super(
      message,
      typeof options === 'object' && options !== null && 'cause' in options ? { cause: options.cause } : undefined,
    );
    this.code = code;
    this.retryable = options?.retryable ?? false;
    if (options?.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/**
 * A failure as the broker's refresh and complete functions answer it: a stable code, a message, and
 * (from {@link retryAdviceOf}) whether and when to try again.
 */
export interface FunctionFailure<Code extends string> {
  readonly ok: false;
  readonly code: Code;
  readonly message: string;
  /** Present (true) when trying again may succeed: the error's `retryable`. */
  readonly retryable?: true;
  /** When known, how long to wait before trying again. */
  readonly retryAfterSeconds?: number;
}

/** A failure as a caller receives it: possibly from a newer broker, so any code, and advice as sent. */
export interface ReceivedFunctionFailure {
  readonly ok: false;
  readonly code: string;
  readonly message: string;
  readonly retryable?: boolean;
  readonly retryAfterSeconds?: number;
}

/**
 * What a function answers a reader about trying again, from `error`: `{retryable: true}` and the
 * wait when known, or nothing (an old reader ignores the fields, a new one rebuilds the advice).
 */
export function retryAdviceOf(error: BrokerError): { retryable?: true; retryAfterSeconds?: number } {
  if (!error.retryable) return {};
  return error.retryAfterSeconds === undefined
    ? { retryable: true }
    : { retryable: true, retryAfterSeconds: error.retryAfterSeconds };
}

/**
 * A dependency was temporarily unavailable: throttled, slow, failing (5xx) or unreachable. Nothing
 * stored was lost; the same call may succeed later. Each dependency has its own class and code
 * ({@link StoreUnavailableError}, {@link ProviderUnavailableError}, ...); this base lets a caller
 * treat them alike and name the one that failed ({@link dependency}).
 */
export class DependencyUnavailableError extends BrokerError {
  override readonly name: string = 'DependencyUnavailableError';

  /** Which dependency failed. */
  readonly dependency: Dependency;

  constructor(message: string, code: ErrorCode, dependency: Dependency, options?: BrokerErrorOptions) {
    super(message, code, { retryable: true, ...options });
    this.dependency = dependency;
  }
}

/**
 * The token store (DynamoDB) was throttled, timed out, answered 5xx or could not be reached, after
 * the SDK's own retries and within the call's deadline. Nothing was lost: a read can be retried as
 * is; a write either did not happen or, when {@link outcomeUnknown}, may have landed, which the
 * broker's conditional writes make safe to find out by reading again.
 */
export class StoreUnavailableError extends DependencyUnavailableError {
  override readonly name: string = 'StoreUnavailableError';

  /** The DynamoDB operation that failed (`GetItem`, `UpdateItem`, ...), when known. */
  readonly operation?: string;
  /** True when the request may have reached DynamoDB (a timeout, a connection lost mid-answer). */
  readonly outcomeUnknown: boolean;

  constructor(
    message: string,
    options?: BrokerErrorOptions & { readonly operation?: string; readonly outcomeUnknown?: boolean },
  ) {
    super(message, 'STORE_UNAVAILABLE', 'dynamodb', options);
    this.operation = options?.operation;
    this.outcomeUnknown = options?.outcomeUnknown ?? false;
  }
}

/**
 * The broker's refresh or complete function could not be invoked: Lambda throttled it, the invoke
 * timed out or failed on the way, or the function itself crashed or timed out (`FunctionError`).
 * Nothing was lost; try again.
 */
export class FunctionUnavailableError extends DependencyUnavailableError {
  override readonly name: string = 'FunctionUnavailableError';

  constructor(message: string, options?: BrokerErrorOptions) {
    super(message, 'FUNCTION_UNAVAILABLE', 'lambda', options);
  }
}

/** EventBridge refused an event or could not be reached. Events are best effort: logged, never thrown to a person. */
export class EventsUnavailableError extends DependencyUnavailableError {
  override readonly name: string = 'EventsUnavailableError';

  constructor(message: string, options?: BrokerErrorOptions) {
    super(message, 'EVENTS_UNAVAILABLE', 'eventbridge', options);
  }
}

/** A configuration value is missing or malformed; raised once, at start. */
export class ConfigError extends BrokerError {
  override readonly name: string = 'ConfigError';

  constructor(message: string) {
    super(message, 'CONFIG_INVALID');
  }
}

/**
 * An argument of a library function or command is invalid (an empty user id, a return target off the
 * allow-list): the caller's mistake on this call, unlike {@link ConfigError}, the deployment's.
 */
export class ArgumentError extends BrokerError {
  override readonly name: string = 'ArgumentError';

  constructor(message: string) {
    super(message, 'INVALID_ARGUMENT');
  }
}

/** Codes of callback refusals, one per way a callback request can be refused. */
export type CallbackErrorCode = Extract<ErrorCode, `CALLBACK_${string}`>;

/** Codes of login refusals (connect links and return targets). */
export type LoginErrorCode = Extract<ErrorCode, `LOGIN_${string}`>;

/**
 * The request to /callback (or /login) is refused: always a 4xx, always before any call to the
 * provider's token endpoint, never with anything stored.
 */
export class RequestRejectedError extends BrokerError {
  override readonly name: string = 'RequestRejectedError';

  /** HTTP status the handler answers with. */
  readonly status: number;
  /** Extra text for the person (for example the provider's `error_description`), shown escaped. */
  readonly detail?: string;

  constructor(message: string, code: CallbackErrorCode | LoginErrorCode, status = 400, detail?: string) {
    super(message, code);
    this.status = status;
    this.detail = detail;
  }
}

/**
 * The provider could not be reached, timed out, answered 5xx or 429, or stopped sending its answer:
 * retry later. The stored grant is kept, but when the request was sent and no usable answer came
 * back ({@link outcomeUnknown}), the provider may have used (and rotated) the refresh token: the next
 * attempt then finds the grant refused.
 */
export class ProviderUnavailableError extends DependencyUnavailableError {
  override readonly name: string = 'ProviderUnavailableError';

  /**
   * True when the request may have reached the provider and been processed (a timeout after it was
   * sent, a connection lost mid-answer, a body that stopped arriving): its outcome is unknown.
   */
  readonly outcomeUnknown: boolean;

  constructor(message: string, options?: BrokerErrorOptions & { outcomeUnknown?: boolean }) {
    super(message, 'PROVIDER_UNAVAILABLE', 'provider', options);
    this.outcomeUnknown = options?.outcomeUnknown ?? false;
  }
}

/**
 * The authorization response did not come from the expected authorization server: its `iss`
 * parameter is missing or different from the configured issuer.
 * @see https://www.rfc-editor.org/rfc/rfc9207#section-2.4
 */
export class IssuerMismatchError extends BrokerError {
  override readonly name: string = 'IssuerMismatchError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'PROVIDER_ISSUER_MISMATCH', options);
  }
}

/**
 * The provider refused the grant: the code or refresh token is expired, used or revoked. Any 4xx
 * refusal of a grant counts, whatever its body (`invalid_grant`, Kroger's 400 "Missing/Invalid
 * Refresh Token" as `invalid_request` or as `{"errors":{...}}`, a bare 400); see
 * `functions/core/refusals.ts`. For a refresh token this means the user has to sign in again.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */
export class InvalidGrantError extends BrokerError {
  override readonly name: string = 'InvalidGrantError';

  /**
   * True when the answer says unmistakably that the grant is dead (`invalid_grant`, Kroger's
   * "Missing/Invalid Refresh Token"); false for a refusal that does not say why (a bare 400), which
   * the refresher confirms with one more attempt before giving the grant up.
   */
  readonly confirmed: boolean;
  /** The provider's error and reason as recorded on the item: sanitized, bounded, never a token. */
  readonly reason: string;
  /** How the refusal was shaped; mass-refusal counts are kept per shape. */
  readonly shape: RefusalShapeName;

  constructor(
    message: string,
    options?: { cause?: unknown; confirmed?: boolean; reason?: string; shape?: RefusalShapeName },
  ) {
    super(message, 'PROVIDER_INVALID_GRANT', options);
    this.confirmed = options?.confirmed ?? true;
    this.reason = options?.reason ?? 'invalid_grant';
    this.shape = options?.shape ?? 'invalid_grant';
  }
}

/** The shapes of a refusal of a grant (see `functions/core/refusals.ts`). */
export type RefusalShapeName = 'invalid_grant' | 'invalid_request' | 'errors_object' | 'no_body' | 'other';

/**
 * The provider refused the broker's client: its credentials (`invalid_client`, or any 401 from the
 * token endpoint, with or without a `WWW-Authenticate` challenge) or its registration
 * (`unauthorized_client`, `unsupported_grant_type`). Every user's refresh fails the same way, and no
 * user can fix it by signing in again: grants are kept, the operator is alerted and must fix the
 * client id or secret; the next refresh after that works.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */
export class ClientCredentialsRejectedError extends BrokerError {
  override readonly name: string = 'ClientCredentialsRejectedError';

  /** The OAuth `error` value when the provider sent one. */
  readonly oauthError?: string;
  /** The HTTP status of the refusal. */
  readonly status?: number;

  constructor(message: string, options?: { cause?: unknown; oauthError?: string; status?: number }) {
    super(message, 'PROVIDER_CLIENT_REJECTED', options);
    this.oauthError = options?.oauthError;
    this.status = options?.status;
  }
}

/**
 * The provider answered, but not with anything usable: a 2xx that is not a token response (not JSON,
 * fields missing, wrong `token_type`), a body larger than the broker reads, or a status that says the
 * request went to the wrong place (404, 405, 415). Retried with back-off; an operator must look.
 */
export class ProviderResponseError extends BrokerError {
  override readonly name: string = 'ProviderResponseError';

  /** The OAuth `error` value when the provider sent one. */
  readonly oauthError?: string;
  /**
   * True when the provider answered 2xx to a refresh: it probably issued new tokens (and rotated the
   * refresh token) that the broker could not read.
   */
  readonly outcomeUnknown: boolean;

  constructor(message: string, options?: { cause?: unknown; oauthError?: string; outcomeUnknown?: boolean }) {
    super(message, 'PROVIDER_BAD_RESPONSE', options);
    this.oauthError = options?.oauthError;
    this.outcomeUnknown = options?.outcomeUnknown ?? false;
  }
}

/**
 * The client secret could not be read: Secrets Manager throttled, failing or unreachable
 * (`retryable`), or the secret missing, empty or not granted (not retryable: an operator must act).
 */
export class SecretUnavailableError extends DependencyUnavailableError {
  override readonly name: string = 'SecretUnavailableError';

  constructor(message: string, options?: BrokerErrorOptions) {
    super(message, 'SECRET_UNAVAILABLE', 'secretsmanager', { retryable: false, ...options });
  }
}

/** Base of token store failures. */
export class TokenStoreError extends BrokerError {
  override readonly name: string = 'TokenStoreError';
}

/** No tokens are stored for this user id. */
export class UnknownUserError extends TokenStoreError {
  override readonly name: string = 'UnknownUserError';

  /** The user id that was asked for (an id, not a secret). */
  readonly userId: string;

  constructor(userId: string) {
    super(`no tokens stored for user "${userId}"`, 'UNKNOWN_USER');
    this.userId = userId;
  }
}

/** A conditional write lost a race: the item changed since it was read (version or lease). */
export class ConcurrentUpdateError extends TokenStoreError {
  override readonly name: string = 'ConcurrentUpdateError';

  constructor(message: string, options?: { cause?: unknown; code?: 'CONCURRENT_UPDATE' | 'LEASE_LOST' }) {
    super(message, options?.code ?? 'CONCURRENT_UPDATE', { cause: options?.cause, retryable: true });
  }
}

/**
 * A write made under the refresh lease was refused because another process owns the lease now (ours
 * expired and was taken over): the fence that keeps a delayed holder from overwriting what the new
 * holder presented and stored. A {@link ConcurrentUpdateError}, so callers that re-read on a lost race
 * do the same here.
 */
export class LeaseLostError extends ConcurrentUpdateError {
  override readonly name: string = 'LeaseLostError';

  constructor(userId: string, options?: { cause?: unknown }) {
    super(`the refresh lease for user "${userId}" was taken over by another process`, {
      ...options,
      code: 'LEASE_LOST',
    });
  }
}

/** The user's grant is gone (revoked, expired, reused): they must sign in again. */
export class ReauthRequiredError extends BrokerError {
  override readonly name: string = 'ReauthRequiredError';

  readonly userId: string;
  /** Why the grant was given up, as recorded on the item. */
  readonly reason?: string;

  constructor(userId: string, reason?: string) {
    super(`user "${userId}" must sign in again${reason ? ` (${reason})` : ''}`, 'REAUTH_REQUIRED');
    this.userId = userId;
    this.reason = reason;
  }
}

/** Another process holds the refresh lease and did not finish in time: try again shortly. */
export class RefreshInProgressError extends BrokerError {
  override readonly name: string = 'RefreshInProgressError';

  constructor(userId: string) {
    super(`a refresh for user "${userId}" is in progress; try again`, 'REFRESH_IN_PROGRESS', {
      retryable: true,
      retryAfterSeconds: 1,
    });
  }
}

/**
 * The broker's refresh function answered with a failure this reader has no class for (a newer
 * broker's code, or an unexpected error there). The remote code and message are kept.
 */
export class RefreshFunctionError extends BrokerError {
  override readonly name: string = 'RefreshFunctionError';

  /** The code the refresh function answered with. */
  readonly remoteCode: string;

  /** @param retry whether the function said trying again may help (a newer broker's code may be retryable) */
  constructor(remoteCode: string, message: string, retry?: RetryAdvice) {
    super(`the refresh function failed ("${remoteCode}"): ${message}`, 'REFRESH_FUNCTION_FAILED', retry);
    this.remoteCode = remoteCode;
  }
}

/** Why a connect code was refused: one per way completing a pending connection can fail. */
export type ConnectRefusal = 'unknown' | 'used' | 'expired' | 'foreign' | 'cancelled';

/** Codes of connect-code refusals. */
export type ConnectRefusalCode = Extract<ErrorCode, `CONNECT_CODE_${string}`>;

const CONNECT_REFUSALS: Readonly<Record<ConnectRefusal, { code: ConnectRefusalCode; message: string }>> = {
  unknown: {
    code: 'CONNECT_CODE_UNKNOWN',
    message: 'this connect code is not known (mistyped, or from another broker): ask the person to connect again',
  },
  used: {
    code: 'CONNECT_CODE_USED',
    message: 'this connect code was already used: a code completes one connection, once',
  },
  expired: {
    code: 'CONNECT_CODE_EXPIRED',
    message: 'this connect code expired before it was completed: ask the person to connect again',
  },
  foreign: {
    code: 'CONNECT_CODE_FOREIGN',
    message:
      'this connect code belongs to another app user: it was not completed and is now cancelled, so nothing was connected (a forwarded connect link?)',
  },
  cancelled: {
    code: 'CONNECT_CODE_CANCELLED',
    message:
      'this connect code was cancelled when it was presented for another app user: ask the person to connect again',
  },
};

/**
 * A connect code was refused by `completeConnection`: unknown, used, expired, foreign (presented for
 * another app user than the link's, which cancels it) or cancelled. Nothing was written in any case.
 */
export class ConnectionRefusedError extends BrokerError {
  override readonly name: string = 'ConnectionRefusedError';

  /** Which refusal, as a word (the `code` says the same as a stable code). */
  readonly reason: ConnectRefusal;

  constructor(reason: ConnectRefusal) {
    const refusal = CONNECT_REFUSALS[reason] ?? CONNECT_REFUSALS.unknown;
    super(refusal.message, refusal.code);
    this.reason = CONNECT_REFUSALS[reason] ? reason : 'unknown';
  }
}

/**
 * The broker's complete function answered with a failure this library has no class for (a newer
 * broker's code, or an unexpected error there). The remote code and message are kept.
 */
export class CompleteFunctionError extends BrokerError {
  override readonly name: string = 'CompleteFunctionError';

  /** The code the complete function answered with. */
  readonly remoteCode: string;

  /** @param retry whether the function said trying again may help */
  constructor(remoteCode: string, message: string, retry?: RetryAdvice) {
    super(`the complete function failed ("${remoteCode}"): ${message}`, 'COMPLETE_FUNCTION_FAILED', retry);
    this.remoteCode = remoteCode;
  }
}

/**
 * A stored encrypted field (a refresh token, a code verifier) does not decrypt: the ciphertext was
 * moved from another item or field, altered, truncated, or written under another key. Never retried:
 * the same bytes fail the same way. The message names the field and the item, never a value.
 */
export class DecryptionFailedError extends BrokerError {
  override readonly name: string = 'DecryptionFailedError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'DECRYPTION_FAILED', options);
  }
}

/**
 * The field encryption key could not be used: KMS was unreachable or throttled, the role may not
 * use the key, or the key is disabled. Nothing stored was changed; a transient cause clears by itself.
 */
export class KeyUnavailableError extends DependencyUnavailableError {
  override readonly name: string = 'KeyUnavailableError';

  /**
   * @param options.retryable true for a throttled, failing or unreachable KMS; false (the default)
   *   for a key that is disabled or not granted, which an operator must fix
   */
  constructor(message: string, options?: BrokerErrorOptions) {
    super(message, 'KEY_UNAVAILABLE', 'kms', { retryable: false, ...options });
  }
}
