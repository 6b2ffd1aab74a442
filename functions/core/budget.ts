/**
 * How long one refresh may take, from named parts, so the lease, the functions' timeouts and the
 * refresher's stop time are computed from the same numbers and cannot drift apart.
 *
 * The refresh lease must outlast everything its holder may still do after taking it: the provider
 * call (its own timeout, which covers reading the client secret and the body) and then writing the
 * result (every attempt of every retry). A lease that expired while its holder was still working
 * would let a second process present the same single-use refresh token; a strict provider then
 * revokes the grant. The writes are also fenced (conditioned on the lease owner), so a holder that
 * overruns anyway (a frozen process) cannot overwrite what the next holder stored.
 *
 * Plain numbers only: infra imports this module to size the functions.
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2 (refresh token rotation)
 */

/** Time allowed to open a connection to DynamoDB (the SDK's `connectionTimeout`). */
export const DYNAMODB_CONNECTION_TIMEOUT_MS = 1000;

/** Time allowed for one DynamoDB request once connected (the SDK's `requestTimeout`, enforced). */
export const DYNAMODB_REQUEST_TIMEOUT_MS = 2000;

/**
 * Attempts per DynamoDB call, the first included (the SDK's `maxAttempts`, in its adaptive retry mode:
 * a throttled client also slows its own sending rate). The call's deadline, not this count, is what
 * bounds the time: under throttling the back-off (from 1 s, doubling) and the rate limiter's waits
 * (up to 2 s each) leave room for about three attempts.
 */
export const DYNAMODB_MAX_ATTEMPTS = 5;

/**
 * The longest one DynamoDB call may take, every SDK attempt, back-off and rate-limit wait included:
 * a hard deadline (`adapters/aws-call.ts` aborts the call when it passes), after which the call fails
 * with `StoreUnavailableError`. Two full attempts (connect and request timeouts) fit in it.
 */
export const DYNAMODB_CALL_BUDGET_MS = 6000;

/** The longest one KMS call (GenerateDataKey, Decrypt) may take, its SDK retries included. */
export const KMS_CALL_BUDGET_MS = 3000;

/** The longest reading the client secret from Secrets Manager may take, its SDK retries included. */
export const SECRET_CALL_BUDGET_MS = 3000;

/** The longest publishing one event may take: events are best effort and never hold a person up long. */
export const EVENTS_CALL_BUDGET_MS = 2000;

/** Time allowed to connect to and hear back from an AWS service other than DynamoDB, per attempt. */
export const AWS_CONNECTION_TIMEOUT_MS = 1000;

/** Time allowed for one request to KMS, Secrets Manager or EventBridge once connected, per attempt. */
export const AWS_REQUEST_TIMEOUT_MS = 2000;

/**
 * Store attempts the write budget reserves for a rotated pair (each one a DynamoDB call with the
 * SDK's own retries): the provider has already rotated the refresh token, so the new one is the only
 * one left. The refresher keeps trying past this count for as long as its lease leaves room for one
 * more whole call (`flows/single-flight-refresh.ts`): a fast provider answer leaves the unused part of
 * the refresh timeout for writing too.
 */
export const SAVE_ATTEMPTS = 5;

/** Wait before the refresher's save attempt n + 1 is `SAVE_BACKOFF_MS * n`. */
export const SAVE_BACKOFF_MS = 250;

/** The longest the holder may spend writing the outcome of one provider call. */
export const WRITE_BUDGET_MS =
  SAVE_ATTEMPTS * DYNAMODB_CALL_BUDGET_MS + SAVE_BACKOFF_MS * ((SAVE_ATTEMPTS * (SAVE_ATTEMPTS - 1)) / 2);

/** Slack on top of the holder's budget: clock steps, event-loop delays. */
export const LEASE_SAFETY_MS = 5000;

/** Default of `REFRESH_TIMEOUT_MS`: the refresh call's own timeout, longer than the callback's. */
export const DEFAULT_REFRESH_TIMEOUT_MS = 15_000;

/** Largest `REFRESH_TIMEOUT_MS`; the functions' timeouts are sized for it. */
export const MAX_REFRESH_TIMEOUT_MS = 25_000;

/** How long a reader waits for another process's refresh before giving up (`RefreshInProgressError`). */
export const MAX_LEASE_WAIT_MS = 12_000;

/**
 * The lease for a refresh whose provider call times out after `refreshTimeoutMs`: that call, then
 * the whole write budget, then {@link LEASE_SAFETY_MS}. About 52 s with the defaults. What the holder
 * does unchecked fits well inside it (taking the lease and decrypting the refresh token, the call,
 * sealing and the first write: `refreshTimeoutMs` + 2 DynamoDB calls + 2 KMS calls, 18 s on top of
 * the call); every later write starts only while a whole call still fits before the lease ends.
 */
export function refreshLeaseMs(refreshTimeoutMs: number): number {
  return refreshTimeoutMs + WRITE_BUDGET_MS + LEASE_SAFETY_MS;
}

/**
 * The longest one refresh for one user can take end to end: a read, waiting for another holder,
 * taking the lease, and then a whole lease's work. The refresh function's timeout and the
 * refresher's stop time are sized from it (with {@link MAX_REFRESH_TIMEOUT_MS}).
 */
export function refreshCallBudgetMs(refreshTimeoutMs: number): number {
  // A read (and its refresh token decrypted), the wait, then taking the lease (and decrypting again).
  const readAndDecrypt = DYNAMODB_CALL_BUDGET_MS + KMS_CALL_BUDGET_MS;
  return readAndDecrypt + MAX_LEASE_WAIT_MS + readAndDecrypt + refreshLeaseMs(refreshTimeoutMs);
}

/** The refresh function's Lambda timeout, in whole seconds: one refresh at the largest settings. */
export const REFRESH_FUNCTION_TIMEOUT_SECONDS = Math.ceil(refreshCallBudgetMs(MAX_REFRESH_TIMEOUT_MS) / 1000);

/**
 * API Gateway HTTP API's integration timeout: after it the browser gets API Gateway's own error, not
 * the broker's page, so every HTTP function must answer well before it.
 */
export const API_GATEWAY_TIMEOUT_MS = 30_000;

/** Time kept at the end of a request to answer: render the page, write the log line. */
export const ANSWER_MARGIN_MS = 1000;

/**
 * The callback function's Lambda timeout. Its steps' own limits add up to more (secret 3 s, consuming
 * the attempt 6 s, KMS 3 s, code exchange and profile lookup 8 s each, the store write 6 s, an unkept
 * grant's revocation 3 s: 37 s), so its steps run under a deadline of this timeout less
 * {@link ANSWER_MARGIN_MS} and the revocation's own 3 s, which cuts every call to what is left: the
 * person always gets the broker's page (a 503 "try again" at worst), never a Lambda timeout or API
 * Gateway's 503, and a grant the broker could not keep still gets its revocation.
 */
export const CALLBACK_FUNCTION_TIMEOUT_SECONDS = 25;

/** The login function's Lambda timeout: a connect link read and consumed, an attempt written, under a deadline. */
export const LOGIN_FUNCTION_TIMEOUT_SECONDS = 10;

/** The complete function's Lambda timeout: two DynamoDB writes and an event, under a deadline. */
export const COMPLETE_FUNCTION_TIMEOUT_SECONDS = 10;

/**
 * The deadline (epoch ms) of a request handled by a function with `timeoutSeconds`: what the Lambda
 * runtime says is left (when it says), never more than the timeout, less {@link ANSWER_MARGIN_MS}.
 */
export function requestDeadlineMs(nowMs: number, timeoutSeconds: number, remainingMs?: number): number {
  const left = Math.min(remainingMs ?? Number.POSITIVE_INFINITY, timeoutSeconds * 1000);
  return nowMs + left - ANSWER_MARGIN_MS;
}

/**
 * The pause before try `attempt + 1` of something that waits on the store (another process's lease,
 * a throttled read): 100 ms doubling to at most 800 ms, with jitter (half to one and a half times),
 * so readers that failed together do not come back together.
 */
export function retryPauseMs(attempt: number, random: number = Math.random()): number {
  return Math.min(100 * 2 ** Math.min(attempt, 3), 800) * (0.5 + random);
}
