/**
 * The refresh function's input checks: it is invoked by other services, so a malformed request
 * gets a typed answer and touches nothing (no read, no refresh).
 */
import {
  ClientCredentialsRejectedError,
  ProviderUnavailableError,
  ReauthRequiredError,
  RefreshInProgressError,
  StoreUnavailableError,
  UnknownUserError,
} from '../../functions/core/errors';
import { handleRefreshRequest } from '../../functions/flows/refresh-function-flow';
import { captureLogger } from '../support/logs';

describe('Flow: refresh function', () => {
  it.each([
    ['no event', null],
    ['no userId', {}],
    ['a numeric userId', { userId: 42 }],
    ['an empty userId', { userId: '' }],
    ['an oversized userId', { userId: 'u'.repeat(257) }],
    ['a negative margin', { userId: 'u', marginSeconds: -1 }],
    ['a margin over an hour', { userId: 'u', marginSeconds: 3601 }],
    ['a margin that is a string', { userId: 'u', marginSeconds: '60' }],
  ])('answers BAD_REQUEST for %s without touching the refresher', async (_name, event) => {
    const refreshForReader = jest.fn();
    const result = await handleRefreshRequest(event, {
      refresher: { refreshForReader },
      logger: captureLogger().logger,
    });
    expect(result).toMatchObject({ ok: false, code: 'BAD_REQUEST' });
    expect(refreshForReader).not.toHaveBeenCalled();
  });

  it('answers ok with the new expiry, passing the request on to the refresher', async () => {
    const refreshForReader = jest.fn().mockResolvedValue({ userId: 'u', accessToken: 'a', expiresAt: 1234 });

    const result = await handleRefreshRequest(
      { userId: 'u', forceRefresh: true, marginSeconds: 60 },
      { refresher: { refreshForReader }, logger: captureLogger().logger },
    );

    expect(result).toEqual({ ok: true, expiresAt: 1234 });
    expect(refreshForReader).toHaveBeenCalledWith('u', { forceRefresh: true, marginSeconds: 60 });
  });

  it.each([
    ['a user id of 256 characters', { userId: 'u'.repeat(256) }, 'u'.repeat(256), undefined, false],
    ['a margin of 0', { userId: 'u', marginSeconds: 0 }, 'u', 0, false],
    ['a margin of an hour', { userId: 'u', marginSeconds: 3600 }, 'u', 3600, false],
    ['forceRefresh only when it is true', { userId: 'u', forceRefresh: 'true' }, 'u', undefined, false],
  ])('accepts %s', async (_what, event, userId, marginSeconds, forceRefresh) => {
    const refreshForReader = jest.fn().mockResolvedValue({ userId, accessToken: 'a', expiresAt: 1 });

    const result = await handleRefreshRequest(event, {
      refresher: { refreshForReader },
      logger: captureLogger().logger,
    });

    expect(result).toEqual({ ok: true, expiresAt: 1 });
    expect(refreshForReader).toHaveBeenCalledWith(userId, { forceRefresh, marginSeconds });
  });

  it('says which field is wrong and its bounds', async () => {
    const answer = (event: unknown) =>
      handleRefreshRequest(event, { refresher: { refreshForReader: jest.fn() }, logger: captureLogger().logger });
    await expect(answer({ userId: '' })).resolves.toEqual({
      ok: false,
      code: 'BAD_REQUEST',
      message: 'expected "userId" to be a string of 1 to 256 characters',
    });
    await expect(answer({ userId: 'u', marginSeconds: -1 })).resolves.toEqual({
      ok: false,
      code: 'BAD_REQUEST',
      message: 'expected "marginSeconds" to be a number from 0 to 3600',
    });
  });

  // The reader turns each code back into its error class: a wrong code tells a service to ask a
  // person to sign in again when Kroger is only down, or the reverse.
  // Whether to try again travels with the code: a reader older than a code still knows.
  it.each([
    ['REAUTH_REQUIRED', new ReauthRequiredError('u', 'invalid_grant'), {}],
    ['UNKNOWN_USER', new UnknownUserError('u'), {}],
    ['REFRESH_IN_PROGRESS', new RefreshInProgressError('u'), { retryable: true, retryAfterSeconds: 1 }],
    ['PROVIDER_UNAVAILABLE', new ProviderUnavailableError('Kroger answered 503'), { retryable: true }],
    ['PROVIDER_CLIENT_REJECTED', new ClientCredentialsRejectedError('the client credentials were refused'), {}],
  ])('answers %s with the error message when the refresher throws it', async (code, error, retry) => {
    const { logger, text } = captureLogger();

    const result = await handleRefreshRequest(
      { userId: 'u' },
      { refresher: { refreshForReader: jest.fn().mockRejectedValue(error) }, logger },
    );

    expect(result).toEqual({ ok: false, code, message: error.message, ...retry });
    expect(text()).toBe('');
  });

  it('answers STORE_UNAVAILABLE as retryable, with the wait, and logs the dependency once', async () => {
    const { logger, lines } = captureLogger();
    const error = new StoreUnavailableError('DynamoDB UpdateItem failed: throttled', { retryAfterSeconds: 1 });

    const result = await handleRefreshRequest(
      { userId: 'u' },
      { refresher: { refreshForReader: jest.fn().mockRejectedValue(error) }, logger },
    );

    expect(result).toEqual({
      ok: false,
      code: 'STORE_UNAVAILABLE',
      message: error.message,
      retryable: true,
      retryAfterSeconds: 1,
    });
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({ level: 'WARN', errorCode: 'STORE_UNAVAILABLE', dependency: 'dynamodb', userId: 'u' }),
    ]);
  });

  it('answers INTERNAL without the error text for an unexpected error, and logs it', async () => {
    const { logger, text } = captureLogger();

    const result = await handleRefreshRequest(
      { userId: 'u' },
      { refresher: { refreshForReader: jest.fn().mockRejectedValue(new TypeError('x is undefined')) }, logger },
    );

    expect(result).toEqual({ ok: false, code: 'INTERNAL', message: 'the refresh failed unexpectedly' });
    expect(text()).toContain('refresh failed unexpectedly');
  });
});
