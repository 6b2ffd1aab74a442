/**
 * The closed set of error codes: every error class carries a code from ERROR_CODES, so callers can
 * switch on `code` without meeting a value they were never told about.
 */
import * as errors from '../../functions/core/errors';
import { BrokerError, ERROR_CODES, isErrorCode, RefreshFunctionError } from '../../functions/core/errors';

/** One instance of every error class errors.ts exports, built with its simplest arguments. */
function everyError(): BrokerError[] {
  const made: BrokerError[] = [];
  for (const [name, value] of Object.entries(errors)) {
    if (typeof value !== 'function' || !(value.prototype instanceof Error)) continue;
    const ErrorClass = value as unknown as new (...args: unknown[]) => BrokerError;
    const instance =
      name === 'BrokerError' || name === 'TokenStoreError'
        ? new ErrorClass('m', 'INVALID_ARGUMENT')
        : name === 'RequestRejectedError'
          ? new ErrorClass('m', 'CALLBACK_INVALID_STATE')
          : new ErrorClass('m', 'm');
    made.push(instance);
  }
  return made;
}

describe('Module: errors', () => {
  it('gives every exported error class a code from ERROR_CODES and its own class name', () => {
    const instances = everyError();
    expect(instances.length).toBeGreaterThanOrEqual(15);
    for (const error of instances) {
      expect(ERROR_CODES).toContain(error.code);
      expect(error.name).toBe(error.constructor.name);
    }
  });

  it('lists each code once', () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
  });

  it('tells a code of the set from any other value', () => {
    expect(isErrorCode('UNKNOWN_USER')).toBe(true);
    expect(isErrorCode('unknown_user')).toBe(false);
    expect(isErrorCode('BAD_REQUEST')).toBe(false);
    expect(isErrorCode(undefined)).toBe(false);
  });

  it("keeps an unknown refresh function failure's code and message", () => {
    const error = new RefreshFunctionError('SOMETHING_NEW', 'the broker said why');
    expect(error.code).toBe('REFRESH_FUNCTION_FAILED');
    expect(error.remoteCode).toBe('SOMETHING_NEW');
    expect(error.message).toBe('the refresh function failed ("SOMETHING_NEW"): the broker said why');
  });
});
