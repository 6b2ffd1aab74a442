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

describe('Function: parseCallbackQuery (limits and empty values)', () => {
  it('accepts a value of exactly its limit, and a query of exactly 4096 characters', () => {
    const code = 'a'.repeat(CALLBACK_LIMITS.code);
    expect(parseCallbackQuery(`state=s&code=${code}`)).toMatchObject({ kind: 'code', code });
    const query = `state=s&code=c&pad=${'p'.repeat(CALLBACK_LIMITS.query - 'state=s&code=c&pad='.length)}`;
    expect(query).toHaveLength(CALLBACK_LIMITS.query);
    expect(parseCallbackQuery(query)).toMatchObject({ kind: 'code', code: 'c' });
  });

  it('refuses an oversized query with 414, before reading any parameter', () => {
    const error = rejection(() => parseCallbackQuery(`state=s&code=${'a'.repeat(CALLBACK_LIMITS.query)}`));
    expect(error).toMatchObject({
      status: 414,
      code: 'CALLBACK_INPUT_TOO_LARGE',
      message: 'the callback request is too large',
    });
  });

  it('refuses an oversized parameter with 400', () => {
    const error = rejection(() => parseCallbackQuery(`state=s&code=${'a'.repeat(CALLBACK_LIMITS.code + 1)}`));
    expect(error).toMatchObject({ status: 400, message: 'the "code" parameter is too long' });
  });

  it('treats a missing query as an empty one', () => {
    expect(rejection(() => parseCallbackQuery(undefined)).message).toBe(
      'the "state" parameter is missing: open the sign-in link again to start over',
    );
  });

  it('treats an empty iss or error_description as absent', () => {
    expect(parseCallbackQuery('code=a&state=s&iss=')).toEqual({ kind: 'code', code: 'a', state: 's', iss: undefined });
    expect(parseCallbackQuery('error=access_denied&error_description=&state=s')).toEqual({
      kind: 'error',
      state: 's',
      error: 'access_denied',
      errorDescription: undefined,
    });
  });

  it('names the repeated parameter', () => {
    expect(rejection(() => parseCallbackQuery('code=a&state=s&iss=x&iss=y')).message).toBe(
      'the "iss" parameter appears more than once',
    );
    expect(rejection(() => parseCallbackQuery('error=e&state=s&error_description=a&error_description=b')).message).toBe(
      'the "error_description" parameter appears more than once',
    );
  });

  it('says "code" is missing in so many words', () => {
    expect(rejection(() => parseCallbackQuery('state=s')).message).toBe('the "code" parameter is missing');
  });
});

describe('Function: readCookie (edge cases)', () => {
  it('trims spaces around names and values', () => {
    expect(readCookie(['a=1;  kb = v ; c=3'], 'kb')).toBe('v');
  });
  it('ignores a part without "=" even when it starts with the name', () => {
    expect(readCookie(['kbx'], 'kb')).toBeUndefined();
  });
  it('reads a header of exactly the size limit', () => {
    const value = 'v'.repeat(CALLBACK_LIMITS.cookieHeader - 'kb='.length);
    expect(readCookie([`kb=${value}`], 'kb')).toBe(value);
  });
  it('accepts the same cookie sent twice with the same value', () => {
    expect(readCookie(['kb=1', 'kb=1'], 'kb')).toBe('1');
  });
});

describe('Function: describeProviderError (every known code)', () => {
  it.each([
    ['access_denied', 'You cancelled the sign-in or did not approve access, so nothing was connected.'],
    ['login_required', 'Kroger needs you to sign in again.'],
    ['consent_required', 'Kroger needs your approval to connect.'],
    ['invalid_scope', 'Kroger refused the permissions this service asked for.'],
    ['temporarily_unavailable', 'Kroger is temporarily unavailable. Please try again in a few minutes.'],
    ['server_error', 'Kroger had a problem completing the sign-in. Please try again.'],
    ['something_else', 'Kroger did not complete the sign-in, so nothing was connected.'],
  ])('explains %s in plain words', (code, text) => {
    expect(describeProviderError(code)).toBe(text);
  });
});
