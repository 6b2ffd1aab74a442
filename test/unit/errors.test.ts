/**
 * The named errors: their stable codes are a contract (the refresh function sends them to readers,
 * the CLI maps them to exit codes), and their messages say what happened without a secret.
 */
import {
  BrokerError,
  ConcurrentUpdateError,
  ConfigError,
  InvalidGrantError,
  ProviderResponseError,
  ProviderUnavailableError,
  ReauthRequiredError,
  RefreshInProgressError,
  RequestRejectedError,
  TokenStoreError,
  UnknownUserError,
} from '../../functions/core/errors';

describe('Named errors', () => {
  const cause = new Error('underlying');

  it.each([
    [new ConfigError('X is not set'), 'ConfigError', 'CONFIG_INVALID', 'X is not set'],
    [new ProviderUnavailableError('down', { cause }), 'ProviderUnavailableError', 'PROVIDER_UNAVAILABLE', 'down'],
    [new InvalidGrantError('refused', { cause }), 'InvalidGrantError', 'PROVIDER_INVALID_GRANT', 'refused'],
    [new ProviderResponseError('odd', { cause }), 'ProviderResponseError', 'PROVIDER_BAD_RESPONSE', 'odd'],
    [new UnknownUserError('u1'), 'UnknownUserError', 'UNKNOWN_USER', 'no tokens stored for user "u1"'],
    [new ConcurrentUpdateError('lost', { cause }), 'ConcurrentUpdateError', 'CONCURRENT_UPDATE', 'lost'],
    [new ReauthRequiredError('u1'), 'ReauthRequiredError', 'REAUTH_REQUIRED', 'user "u1" must sign in again'],
    [
      new ReauthRequiredError('u1', 'invalid_grant'),
      'ReauthRequiredError',
      'REAUTH_REQUIRED',
      'user "u1" must sign in again (invalid_grant)',
    ],
    [
      new RefreshInProgressError('u1'),
      'RefreshInProgressError',
      'REFRESH_IN_PROGRESS',
      'a refresh for user "u1" is in progress; try again',
    ],
  ])('%s has its name, stable code and message', (error, name, code, message) => {
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
