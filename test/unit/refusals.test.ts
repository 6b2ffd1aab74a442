/**
 * How a token endpoint's refusal is read (core/refusals.ts), the limits on what readers can cause
 * (core/refresh-protocol.ts), and the refresh budget the lease is sized from (core/budget.ts).
 */
import {
  DEFAULT_REFRESH_TIMEOUT_MS,
  DYNAMODB_CALL_BUDGET_MS,
  MAX_LEASE_WAIT_MS,
  MAX_REFRESH_TIMEOUT_MS,
  REFRESH_FUNCTION_TIMEOUT_SECONDS,
  refreshLeaseMs,
  WRITE_BUDGET_MS,
} from '../../functions/core/budget';
import { capMarginSeconds, mayForceRefresh } from '../../functions/core/refresh-protocol';
import {
  classifyTokenError,
  isMassRefusal,
  MAX_REASON_LENGTH,
  refusalsInWindow,
  sanitizeReason,
} from '../../functions/core/refusals';
import { REFRESHER_STOP_BEFORE_TIMEOUT_MS } from '../../functions/core/schema';

const TOKEN = 'Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG0'; // 47 base64url characters

const json = (status: number, body: unknown, headers: { wwwAuthenticate?: string } = {}) => ({
  status,
  contentType: 'application/json; charset=utf-8',
  body: JSON.stringify(body),
  ...headers,
});

describe('Function: classifyTokenError', () => {
  describe('a refusal of the grant', () => {
    it.each([
      [
        "Kroger's documented 400 invalid_request",
        json(400, { error: 'invalid_request', error_description: 'Missing/Invalid Refresh Token' }),
        'invalid_request',
        'invalid_request: Missing/Invalid Refresh Token',
      ],
      [
        "Kroger's API error shape",
        json(400, { errors: { timestamp: 1, code: 'AUTH-1007-400', reason: 'Missing/Invalid Refresh Token' } }),
        'errors_object',
        'AUTH-1007-400: Missing/Invalid Refresh Token',
      ],
      [
        'a list of Kroger API errors',
        json(400, { errors: [{ code: 'AUTH-1007-400', reason: 'Missing/Invalid Refresh Token' }] }),
        'errors_object',
        'AUTH-1007-400: Missing/Invalid Refresh Token',
      ],
      [
        'RFC 6749 invalid_grant',
        json(400, { error: 'invalid_grant', error_description: 'grant request is invalid' }),
        'invalid_grant',
        'invalid_grant: grant request is invalid',
      ],
      ['invalid_grant even on a 401', json(401, { error: 'invalid_grant' }), 'invalid_grant', 'invalid_grant'],
    ])('is confirmed for %s, with the provider error and reason', (_name, answer, shape, reason) => {
      expect(classifyTokenError(answer)).toEqual(
        expect.objectContaining({ kind: 'grant-refused', confirmed: true, shape, reason }),
      );
    });

    it.each([
      ['a bare 400 (glewlwyd)', { status: 400, body: '' }, 'no_body', 'http_400 (no body)'],
      [
        'a 400 HTML page',
        { status: 400, contentType: 'text/html', body: '<h1>Bad Request</h1>' },
        'other',
        'http_400 (text/html body)',
      ],
      [
        'invalid_request about something else',
        json(400, { error: 'invalid_request', error_description: 'missing parameter' }),
        'invalid_request',
        'invalid_request: missing parameter',
      ],
      ['invalid_scope', json(400, { error: 'invalid_scope' }), 'other', 'invalid_scope'],
      [
        'an errors object without a reason about the token',
        json(400, { errors: { code: 'X-1', reason: 'Something else' } }),
        'errors_object',
        'X-1: Something else',
      ],
      ['a bare 403', { status: 403, body: '' }, 'no_body', 'http_403 (no body)'],
      ['a JSON body with no error at all', json(400, { message: 'nope' }), 'other', 'http_400 (application/json body)'],
    ])('is unconfirmed for %s: one more attempt decides', (_name, answer, shape, reason) => {
      expect(classifyTokenError(answer)).toEqual(
        expect.objectContaining({ kind: 'grant-refused', confirmed: false, shape, reason }),
      );
    });
  });

  describe('a refusal of the client', () => {
    it.each([
      [
        'a 401 with a Basic challenge',
        json(401, { error: 'invalid_client' }, { wwwAuthenticate: 'Basic realm="x", error="invalid_client"' }),
      ],
      ['a 401 without a challenge', json(401, { error: 'invalid_client' })],
      ['a bare 401', { status: 401, body: '' }],
      ['invalid_client on a 400', json(400, { error: 'invalid_client' })],
      ['unauthorized_client', json(400, { error: 'unauthorized_client' })],
      ['unsupported_grant_type', json(400, { error: 'unsupported_grant_type' })],
    ])("is the operator's problem for %s, never a dead grant", (_name, answer) => {
      expect(classifyTokenError(answer).kind).toBe('client-rejected');
    });

    it('names the error from the challenge when the body has none', () => {
      expect(
        classifyTokenError({ status: 401, body: '', wwwAuthenticate: 'Basic realm="k", error="invalid_client"' }),
      ).toEqual({ kind: 'client-rejected', status: 401, oauthError: 'invalid_client' });
    });
  });

  it.each([500, 502, 503, 504, 408, 425, 429])('treats status %s as unavailable', (status) => {
    expect(classifyTokenError({ status, body: '' })).toEqual({ kind: 'unavailable', status });
  });

  it.each(['temporarily_unavailable', 'server_error'])('treats a 400 "%s" as unavailable', (error) => {
    expect(classifyTokenError(json(400, { error })).kind).toBe('unavailable');
  });

  it.each([404, 405, 415])('treats status %s as a bad response: the request went to the wrong place', (status) => {
    expect(classifyTokenError({ status, body: '<html>' }).kind).toBe('bad-response');
  });

  it('ignores an `error` that is not an OAuth error code (no quotes, at most 64 characters)', () => {
    const verdict = classifyTokenError(json(400, { error: `invalid_grant"${'x'.repeat(80)}` }));
    expect(verdict).toEqual(expect.objectContaining({ kind: 'grant-refused', confirmed: false }));
    expect(JSON.stringify(verdict)).not.toContain('xxxxxxxx');
  });

  it('never records a token the provider echoed in its description', () => {
    const verdict = classifyTokenError(
      json(400, { error: 'invalid_grant', error_description: `refresh token ${TOKEN} is revoked` }),
    );
    expect(verdict).toEqual(expect.objectContaining({ reason: 'invalid_grant: refresh token [redacted] is revoked' }));
  });
});

describe('Function: classifyTokenError, reading odd bodies', () => {
  it.each([
    ['a JSON array', { status: 400, contentType: 'application/json', body: '[{"error":"invalid_grant"}]' }],
    ['JSON null', { status: 400, contentType: 'application/json', body: 'null' }],
    ['a JSON string', { status: 400, contentType: 'application/json', body: '"invalid_grant"' }],
  ])('reads no OAuth error from %s: unconfirmed', (_what, answer) => {
    expect(classifyTokenError(answer)).toEqual({
      kind: 'grant-refused',
      status: 400,
      confirmed: false,
      shape: 'other',
      reason: 'http_400 (application/json body)',
    });
  });

  it('trims the error and ignores a blank description', () => {
    expect(classifyTokenError(json(400, { error: ' invalid_grant ', error_description: '  ' }))).toEqual(
      expect.objectContaining({ confirmed: true, shape: 'invalid_grant', reason: 'invalid_grant' }),
    );
  });

  it('confirms only invalid_request by a description naming the refresh token', () => {
    expect(
      classifyTokenError(json(400, { error: 'invalid_scope', error_description: 'refresh token scope too wide' })),
    ).toEqual(expect.objectContaining({ confirmed: false, shape: 'other' }));
    expect(classifyTokenError(json(400, { error: 'invalid_request' }))).toEqual(
      expect.objectContaining({ confirmed: false, shape: 'invalid_request', reason: 'invalid_request' }),
    );
  });

  it.each([
    ['an errors string', { errors: 'Missing/Invalid Refresh Token' }, 'other', 'http_400 (application/json body)'],
    ['an empty errors object', { errors: {} }, 'errors_object', 'http_400 (errors without a reason)'],
    ['an errors object with a code only', { errors: { code: 'AUTH-1' } }, 'errors_object', 'AUTH-1'],
    [
      'an errors object with a message',
      { errors: { message: 'Refresh token expired' } },
      'errors_object',
      'Refresh token expired',
    ],
  ])('reads %s', (_what, body, shape, reason) => {
    expect(classifyTokenError(json(400, body))).toEqual(expect.objectContaining({ shape, reason }));
  });

  it('counts a whitespace body as no body, and names a body by its media type alone', () => {
    expect(classifyTokenError({ status: 400, body: ' \r\n ' })).toEqual(
      expect.objectContaining({ shape: 'no_body', reason: 'http_400 (no body)' }),
    );
    expect(classifyTokenError({ status: 400, contentType: ' Text/HTML ; charset=utf-8', body: 'x' })).toEqual(
      expect.objectContaining({ shape: 'other', reason: 'http_400 (text/html body)' }),
    );
    expect(classifyTokenError({ status: 400, body: 'x' })).toEqual(
      expect.objectContaining({ reason: 'http_400 (untyped body)' }),
    );
  });

  it('reads an unquoted error from the challenge', () => {
    expect(classifyTokenError({ status: 401, body: '', wwwAuthenticate: 'Basic error=invalid_client' })).toEqual({
      kind: 'client-rejected',
      status: 401,
      oauthError: 'invalid_client',
    });
  });
});

describe('Function: sanitizeReason', () => {
  it('keeps printable ASCII only, collapses whitespace and bounds the length', () => {
    const reason = sanitizeReason(`a\u0000b\n\tc ${'é'.repeat(3)} ${'word '.repeat(100)}`);
    expect(reason.startsWith('a b c word word')).toBe(true);
    expect(reason.length).toBe(MAX_REASON_LENGTH);
    expect(reason.endsWith('...')).toBe(true);
  });

  it('keeps a reason of exactly the limit whole, and cuts one character more', () => {
    const limit = `${'a b '.repeat(MAX_REASON_LENGTH).slice(0, MAX_REASON_LENGTH - 1)}z`;
    expect(sanitizeReason(limit)).toBe(limit);
    expect(sanitizeReason(`${limit}c`)).toBe(`${limit.slice(0, MAX_REASON_LENGTH - 3)}...`);
  });

  it('replaces a run of control characters with one space', () => {
    expect(sanitizeReason('a\u0000\u0001b', 3)).toBe('a b');
  });

  it('redacts every token-shaped run, of any of the token alphabets', () => {
    expect(sanitizeReason(`x ${TOKEN} y ${'a.b-c_d~e+f/g='.repeat(3)} z`)).toBe('x [redacted] y [redacted] z');
  });
});

describe('Function: isMassRefusal', () => {
  const at = (nowSeconds: number, threshold = 20) => ({ nowSeconds, windowSeconds: 600, threshold });

  it('holds only above the threshold', () => {
    expect(isMassRefusal({ current: 20, previous: 0 }, at(0))).toBe(false);
    expect(isMassRefusal({ current: 21, previous: 0 }, at(0))).toBe(true);
  });

  it('weighs the previous window by how much of it the sliding window still covers', () => {
    // 150 s into a 600-s window: three quarters of the previous window still count.
    expect(refusalsInWindow({ current: 5, previous: 20 }, 600 * 7 + 150, 600)).toBe(20);
    expect(isMassRefusal({ current: 6, previous: 20 }, at(600 * 7 + 150))).toBe(true);
    expect(isMassRefusal({ current: 6, previous: 20 }, at(600 * 7 + 450))).toBe(false);
  });

  it('is off with a threshold of 0', () => {
    expect(isMassRefusal({ current: 10_000, previous: 10_000 }, at(0, 0))).toBe(false);
  });
});

describe('Function: capMarginSeconds', () => {
  it("caps a margin at half the token's lifetime: 3600 s against 1800-s tokens is 900 s", () => {
    expect(capMarginSeconds(3600, 1800)).toBe(900);
    expect(capMarginSeconds(300, 1800)).toBe(300);
    expect(capMarginSeconds(300, 60)).toBe(30);
  });

  it("assumes Kroger's 30 minutes when the lifetime is unknown or not positive", () => {
    expect(capMarginSeconds(3600)).toBe(900);
    expect(capMarginSeconds(3600, 0)).toBe(900);
    expect(capMarginSeconds(3600, -5)).toBe(900);
  });
});

describe('Function: mayForceRefresh', () => {
  it('honours a forced refresh only once the interval has passed since the tokens were issued', () => {
    expect(mayForceRefresh(1000, 1059, 60)).toBe(false);
    expect(mayForceRefresh(1000, 1060, 60)).toBe(true);
    expect(mayForceRefresh(1000, 1000, 0)).toBe(true);
  });
});

describe('Module: budget', () => {
  it('makes the lease outlast the provider call and every write attempt', () => {
    expect(refreshLeaseMs(DEFAULT_REFRESH_TIMEOUT_MS)).toBeGreaterThan(DEFAULT_REFRESH_TIMEOUT_MS + WRITE_BUDGET_MS);
    // Three save attempts, each a DynamoDB call with the SDK's own retries.
    expect(WRITE_BUDGET_MS).toBeGreaterThanOrEqual(3 * DYNAMODB_CALL_BUDGET_MS);
  });

  it('sizes the refresh function and the refresher stop time for a whole refresh at the largest settings', () => {
    const whole = MAX_LEASE_WAIT_MS + refreshLeaseMs(MAX_REFRESH_TIMEOUT_MS);
    expect(REFRESH_FUNCTION_TIMEOUT_SECONDS * 1000).toBeGreaterThan(whole);
    expect(REFRESHER_STOP_BEFORE_TIMEOUT_MS).toBeGreaterThan(whole);
    // Still inside Lambda's 15 minutes, and well inside the refresher's 5.
    expect(REFRESH_FUNCTION_TIMEOUT_SECONDS).toBeLessThan(150);
  });
});
