import { CALLBACK_LIMITS, describeProviderError, parseCallbackQuery, readCookie } from '../../functions/core/callback';
import { RequestRejectedError } from '../../functions/core/errors';

function rejection(fn: () => unknown): RequestRejectedError {
  try {
    fn();
  } catch (error) {
    if (error instanceof RequestRejectedError) return error;
    throw error;
  }
  throw new Error('expected a RequestRejectedError');
}

describe('Function: parseCallbackQuery', () => {
  it('returns code and state, keeping iss and ignoring unknown parameters', () => {
    expect(parseCallbackQuery('code=abc&state=xyz&iss=https%3A%2F%2Fidp&extra=1')).toEqual({
      kind: 'code',
      code: 'abc',
      state: 'xyz',
      iss: 'https://idp',
    });
  });

  it('returns a provider error with its description', () => {
    expect(parseCallbackQuery('error=access_denied&error_description=no%20thanks&state=s')).toEqual({
      kind: 'error',
      state: 's',
      error: 'access_denied',
      errorDescription: 'no thanks',
    });
  });

  it.each([
    ['no parameters at all', '', 'CALLBACK_MISSING_PARAMETERS', /"state"/],
    ['no state', 'code=abc', 'CALLBACK_MISSING_PARAMETERS', /"state"/],
    ['an empty state', 'code=abc&state=', 'CALLBACK_MISSING_PARAMETERS', /"state"/],
    ['no code', 'state=xyz', 'CALLBACK_MISSING_PARAMETERS', /"code"/],
    ['a repeated state', 'code=a&state=x&state=y', 'CALLBACK_MISSING_PARAMETERS', /more than once/],
    ['a repeated code', 'code=a&code=b&state=x', 'CALLBACK_MISSING_PARAMETERS', /more than once/],
    ['an oversized code', `state=x&code=${'a'.repeat(CALLBACK_LIMITS.code + 1)}`, 'CALLBACK_INPUT_TOO_LARGE', /"code"/],
    [
      'an oversized state',
      `code=a&state=${'s'.repeat(CALLBACK_LIMITS.state + 1)}`,
      'CALLBACK_INPUT_TOO_LARGE',
      /"state"/,
    ],
    [
      'an oversized error_description',
      `state=x&error=e&error_description=${'d'.repeat(CALLBACK_LIMITS.errorDescription + 1)}`,
      'CALLBACK_INPUT_TOO_LARGE',
      /"error_description"/,
    ],
    [
      'an oversized query',
      `state=x&code=a&pad=${'p'.repeat(CALLBACK_LIMITS.query)}`,
      'CALLBACK_INPUT_TOO_LARGE',
      /too large/,
    ],
  ])('refuses %s with a 4xx and a message that names the problem', (_name, query, code, message) => {
    const error = rejection(() => parseCallbackQuery(query));
    expect(error.code).toBe(code);
    expect(error.status).toBeGreaterThanOrEqual(400);
    expect(error.status).toBeLessThan(500);
    expect(error.message).toMatch(message);
  });
});

describe('Function: readCookie', () => {
  it('reads a cookie from API Gateway cookies or a raw header', () => {
    expect(readCookie(['a=1', 'kb=v'], 'kb')).toBe('v');
    expect(readCookie(['a=1; kb=v; c=3'], 'kb')).toBe('v');
  });
  it('returns undefined when absent, ambiguous or oversized', () => {
    expect(readCookie(undefined, 'kb')).toBeUndefined();
    expect(readCookie(['a=1'], 'kb')).toBeUndefined();
    expect(readCookie(['kb=1', 'kb=2'], 'kb')).toBeUndefined();
    expect(readCookie([`kb=${'v'.repeat(CALLBACK_LIMITS.cookieHeader)}`], 'kb')).toBeUndefined();
  });
  it('does not match a cookie whose name merely ends with the name', () => {
    expect(readCookie(['xkb=1'], 'kb')).toBeUndefined();
  });
});

describe('Function: describeProviderError', () => {
  it('explains a cancelled sign-in in plain words', () => {
    expect(describeProviderError('access_denied')).toMatch(/cancelled/);
  });
  it('never echoes an unknown error code', () => {
    expect(describeProviderError('<script>')).not.toContain('<script>');
  });
});
