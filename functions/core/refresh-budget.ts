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

/** Attempts per DynamoDB call, the first included (the SDK's `maxAttempts`). */
export const DYNAMODB_MAX_ATTEMPTS = 3;

/**
 * The SDK's standard retry waits at most `100 ms * 2^n` before retry n (n = 1, 2, ...); the sum of
 * those waits for {@link DYNAMODB_MAX_ATTEMPTS}.
 */
const DYNAMODB_RETRY_WAITS_MS = Array.from({ length: DYNAMODB_MAX_ATTEMPTS - 1 }, (_, i) => 100 * 2 ** (i + 1)).reduce(
  (sum, wait) => sum + wait,
  0,
);

/** The longest one DynamoDB call can take, every SDK attempt and wait included. */
export const DYNAMODB_CALL_BUDGET_MS =
  DYNAMODB_MAX_ATTEMPTS * (DYNAMODB_CONNECTION_TIMEOUT_MS + DYNAMODB_REQUEST_TIMEOUT_MS) + DYNAMODB_RETRY_WAITS_MS;

/**
 * Attempts the refresher makes to store a rotated pair (each one a DynamoDB call with the SDK's own
 * retries): the provider has already rotated the refresh token, so the new one is the only one left.
 */
export const SAVE_ATTEMPTS = 3;

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
 * the whole write budget, then {@link LEASE_SAFETY_MS}. About 50 s with the defaults.
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
  return DYNAMODB_CALL_BUDGET_MS + MAX_LEASE_WAIT_MS + DYNAMODB_CALL_BUDGET_MS + refreshLeaseMs(refreshTimeoutMs);
}

/** The refresh function's Lambda timeout, in whole seconds: one refresh at the largest settings. */
export const REFRESH_FUNCTION_TIMEOUT_SECONDS = Math.ceil(refreshCallBudgetMs(MAX_REFRESH_TIMEOUT_MS) / 1000);
