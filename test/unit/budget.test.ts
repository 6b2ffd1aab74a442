/**
 * The budgets that must add up (core/budget.ts): every AWS call's limit inside the caller's deadline,
 * each HTTP function inside API Gateway's 30 s, the request deadline inside the function's timeout,
 * and the remote reader's wait covering the refresh function it waits for. A change to one number
 * that breaks a sum fails here, not in production.
 */
import {
  ANSWER_MARGIN_MS,
  API_GATEWAY_TIMEOUT_MS,
  CALLBACK_FUNCTION_TIMEOUT_SECONDS,
  COMPLETE_FUNCTION_TIMEOUT_SECONDS,
  DYNAMODB_CALL_BUDGET_MS,
  DYNAMODB_CONNECTION_TIMEOUT_MS,
  DYNAMODB_REQUEST_TIMEOUT_MS,
  EVENTS_CALL_BUDGET_MS,
  KMS_CALL_BUDGET_MS,
  LOGIN_FUNCTION_TIMEOUT_SECONDS,
  MAX_LEASE_WAIT_MS,
  REFRESH_FUNCTION_TIMEOUT_SECONDS,
  requestDeadlineMs,
  retryPauseMs,
  SECRET_CALL_BUDGET_MS,
} from '../../functions/core/budget';
import { REFRESH_INVOKE_BUDGET_MS } from '../../functions/reader/remote';

describe('Module: budget', () => {
  it('keeps every HTTP function inside API Gateway’s 30 s, so a person never gets API Gateway’s error', () => {
    for (const seconds of [LOGIN_FUNCTION_TIMEOUT_SECONDS, CALLBACK_FUNCTION_TIMEOUT_SECONDS]) {
      expect(seconds * 1000).toBeLessThan(API_GATEWAY_TIMEOUT_MS);
    }
  });

  it('gives every DynamoDB call room for two whole attempts, and every call fits the shortest function', () => {
    expect(DYNAMODB_CALL_BUDGET_MS).toBeGreaterThanOrEqual(
      2 * (DYNAMODB_CONNECTION_TIMEOUT_MS + DYNAMODB_REQUEST_TIMEOUT_MS),
    );
    const shortest =
      Math.min(LOGIN_FUNCTION_TIMEOUT_SECONDS, COMPLETE_FUNCTION_TIMEOUT_SECONDS) * 1000 - ANSWER_MARGIN_MS;
    for (const call of [DYNAMODB_CALL_BUDGET_MS, KMS_CALL_BUDGET_MS, SECRET_CALL_BUDGET_MS, EVENTS_CALL_BUDGET_MS]) {
      expect(call).toBeLessThan(shortest);
    }
  });

  it('ends a request 1 s before the function times out, or before what the runtime says is left', () => {
    expect(requestDeadlineMs(1_000_000, CALLBACK_FUNCTION_TIMEOUT_SECONDS)).toBe(1_000_000 + 25_000 - 1000);
    expect(requestDeadlineMs(1_000_000, CALLBACK_FUNCTION_TIMEOUT_SECONDS, 7_000)).toBe(1_000_000 + 7_000 - 1000);
    // The runtime never gets more than the timeout, whatever it says.
    expect(requestDeadlineMs(1_000_000, LOGIN_FUNCTION_TIMEOUT_SECONDS, 60_000)).toBe(1_000_000 + 10_000 - 1000);
  });

  it('makes a remote reader wait for the refresh function as long as that function may run', () => {
    expect(REFRESH_INVOKE_BUDGET_MS).toBeGreaterThan(REFRESH_FUNCTION_TIMEOUT_SECONDS * 1000);
  });

  it('waits 50 to 150 ms before the second try, growing to 400 to 1200 ms, never more', () => {
    expect(retryPauseMs(0, 0)).toBe(50);
    expect(retryPauseMs(0, 1)).toBe(150);
    expect(retryPauseMs(3, 0)).toBe(400);
    expect(retryPauseMs(10, 1)).toBe(1200);
    // The reader's wait holds many tries, not one or two.
    expect(MAX_LEASE_WAIT_MS / retryPauseMs(10, 1)).toBeGreaterThan(8);
  });
});
