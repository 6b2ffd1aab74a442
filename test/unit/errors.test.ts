/**
 * The closed set of error codes: every error class carries a code from ERROR_CODES, so callers can
 * switch on `code` without meeting a value they were never told about. The named errors' codes are a
 * contract (the refresh function sends them to readers, the CLI maps them to exit codes), and their
 * messages say what happened without a secret.
 */
import * as errors from '../../functions/core/errors';
import {
  BrokerError,
  ConcurrentUpdateError,
  ConfigError,
  ERROR_CODES,
  InvalidGrantError,
  isErrorCode,
  ProviderResponseError,
  ProviderUnavailableError,
  ReauthRequiredError,
  RefreshFunctionError,
  RefreshInProgressError,
  RequestRejectedError,
  TokenStoreError,
  UnknownUserError,
} from '../../functions/core/errors';

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
          : name === 'DependencyUnavailableError'
            ? new ErrorClass('m', 'STORE_UNAVAILABLE', 'dynamodb')
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

describe('Named errors', () => {
  const cause = new Error('underlying');

  // Built inside each test (not in the table), so every constructor runs while the test runs.
  it.each<[string, () => BrokerError, string, string]>([
    ['ConfigError', () => new ConfigError('X is not set'), 'CONFIG_INVALID', 'X is not set'],
    ['ProviderUnavailableError', () => new ProviderUnavailableError('down', { cause }), 'PROVIDER_UNAVAILABLE', 'down'],
    ['InvalidGrantError', () => new InvalidGrantError('refused', { cause }), 'PROVIDER_INVALID_GRANT', 'refused'],
    ['ProviderResponseError', () => new ProviderResponseError('odd', { cause }), 'PROVIDER_BAD_RESPONSE', 'odd'],
    ['UnknownUserError', () => new UnknownUserError('u1'), 'UNKNOWN_USER', 'no tokens stored for user "u1"'],
    ['ConcurrentUpdateError', () => new ConcurrentUpdateError('lost', { cause }), 'CONCURRENT_UPDATE', 'lost'],
    ['ReauthRequiredError', () => new ReauthRequiredError('u1'), 'REAUTH_REQUIRED', 'user "u1" must sign in again'],
    [
      'ReauthRequiredError',
      () => new ReauthRequiredError('u1', 'invalid_grant'),
      'REAUTH_REQUIRED',
      'user "u1" must sign in again (invalid_grant)',
    ],
    [
      'RefreshInProgressError',
      () => new RefreshInProgressError('u1'),
      'REFRESH_IN_PROGRESS',
      'a refresh for user "u1" is in progress; try again',
    ],
  ])('%s has its name, stable code and message', (name, make, code, message) => {
    const error = make();
    expect(error).toBeInstanceOf(BrokerError);
    expect(error).toBeInstanceOf(Error);
    expect({ name: error.name, code: error.code, message: error.message }).toEqual({ name, code, message });
  });

  it('keeps the cause it is given', () => {
    expect(new ProviderUnavailableError('down', { cause }).cause).toBe(cause);
    expect(new InvalidGrantError('refused', { cause }).cause).toBe(cause);
    expect(new ConcurrentUpdateError('lost', { cause }).cause).toBe(cause);
  });

  it('groups the store errors under TokenStoreError', () => {
    expect(new UnknownUserError('u')).toBeInstanceOf(TokenStoreError);
    expect(new ConcurrentUpdateError('c')).toBeInstanceOf(TokenStoreError);
  });

  it('records who must sign in again, and why', () => {
    expect(new ReauthRequiredError('u1', 'invalid_grant')).toMatchObject({ userId: 'u1', reason: 'invalid_grant' });
    expect(new ReauthRequiredError('u1').reason).toBeUndefined();
    expect(new UnknownUserError('u2').userId).toBe('u2');
  });

  it('keeps the OAuth error of a bad provider response', () => {
    expect(new ProviderResponseError('odd', { oauthError: 'invalid_client' }).oauthError).toBe('invalid_client');
    expect(new ProviderResponseError('odd').oauthError).toBeUndefined();
  });

  it('refuses a request with 400 unless told otherwise, keeping the detail for the page', () => {
    expect(new RequestRejectedError('m', 'CALLBACK_INVALID_STATE')).toMatchObject({
      name: 'RequestRejectedError',
      code: 'CALLBACK_INVALID_STATE',
      status: 400,
      detail: undefined,
    });
    expect(new RequestRejectedError('m', 'CALLBACK_INPUT_TOO_LARGE', 414, 'd')).toMatchObject({
      status: 414,
      detail: 'd',
    });
  });
});
