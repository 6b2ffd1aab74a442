/**
 * From a flow's error to a page: each named error gets its outcome (and so its status and plain
 * words, functions/core/result-page.ts), logged at the level its cause deserves; anything else is a
 * generic 500 whose details stay in the log.
 */
import {
  ClientCredentialsRejectedError,
  InvalidGrantError,
  IssuerMismatchError,
  KeyUnavailableError,
  ProviderResponseError,
  ProviderUnavailableError,
  RequestRejectedError,
} from '../../functions/core/errors';
import { errorPage, failureKind, pageContext } from '../../functions/flows/pages';
import { captureLogger } from '../support/logs';

/** The codes a login or callback refusal carries. */
type RefusalCode = ConstructorParameters<typeof RequestRejectedError>[1];

const context = pageContext({ redirectUri: 'https://broker.example.com/kroger/callback' }, undefined);

describe('Function: failureKind', () => {
  it.each<[RefusalCode, string]>([
    ['CALLBACK_MISSING_PARAMETERS', 'malformed'],
    ['CALLBACK_INPUT_TOO_LARGE', 'malformed'],
    ['CALLBACK_INVALID_STATE', 'attempt-invalid'],
    ['CALLBACK_BROWSER_MISMATCH', 'wrong-browser'],
    ['CALLBACK_LINK_BOUND', 'link-bound'],
    ['CALLBACK_PUBLIC_DISABLED', 'public-off'],
    ['LOGIN_INVALID_SESSION', 'invalid-link'],
    ['LOGIN_RETURN_TO_NOT_ALLOWED', 'return-to-refused'],
    ['LOGIN_INPUT_TOO_LARGE', 'malformed'],
    ['LOGIN_PUBLIC_DISABLED', 'public-off'],
  ])('shows a request refused with %s as "%s", logged as a warning with its code and status', (code, kind) => {
    const logs = captureLogger();

    expect(failureKind(new RequestRejectedError('m', code, 414), logs.logger)).toBe(kind);
    expect(logs.lines.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({ level: 'WARN', message: 'request refused', errorCode: code, status: 414 }),
    ]);
  });

  it('shows a refusal code it has no page for as the generic one', () => {
    expect(failureKind(new RequestRejectedError('m', 'CALLBACK_PROVIDER_ERROR'), captureLogger().logger)).toBe(
      'internal',
    );
  });

  it.each([
    ['another issuer', new IssuerMismatchError('iss'), 'issuer-mismatch', 'WARN', 'request refused'],
    [
      'a refused code',
      new InvalidGrantError('refused'),
      'code-refused',
      'WARN',
      'sign-in code refused by the provider',
    ],
    [
      'refused client credentials',
      new ClientCredentialsRejectedError('invalid_client'),
      'service-rejected',
      'ERROR',
      "the provider refused the broker's client credentials",
    ],
    ['an outage', new ProviderUnavailableError('down'), 'unavailable', 'WARN', 'provider unavailable'],
    ['a bad answer', new ProviderResponseError('odd'), 'bad-response', 'ERROR', 'provider gave an unexpected response'],
    [
      'an unusable field key',
      new KeyUnavailableError('kms:Decrypt failed'),
      'storage-unavailable',
      'ERROR',
      'the field encryption key could not be used',
    ],
    ['a bug', new TypeError('secret internals'), 'internal', 'ERROR', 'unexpected error'],
  ])('shows %s as "%s", logged at %s', (_n, error, kind, level, message) => {
    const logs = captureLogger();

    expect(failureKind(error, logs.logger)).toBe(kind);
    expect(logs.lines.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ level, message })]);
  });

  it('logs the issuer mismatch under its own refusal code', () => {
    const logs = captureLogger();

    failureKind(new IssuerMismatchError('iss'), logs.logger);

    expect(JSON.parse(logs.lines[0])).toMatchObject({ errorCode: 'CALLBACK_ISSUER_MISMATCH', status: 400 });
  });
});

describe('Function: errorPage', () => {
  it('renders the outcome with its status and the cookies it is given', () => {
    const page = errorPage(new ProviderUnavailableError('down'), captureLogger().logger, context, 'public', ['c=1']);

    expect(page.statusCode).toBe(503);
    expect(page.cookies).toEqual(['c=1']);
    expect(page.body).toContain('<title>Kroger is not answering</title>');
    expect(page.headers['x-frame-options']).toBe('DENY');
  });

  it('answers anything unexpected with a generic 500, keeping the details in the log', () => {
    const logs = captureLogger();

    const page = errorPage(new Error('secret internals'), logs.logger, context, 'public');

    expect(page.statusCode).toBe(500);
    expect(page.cookies).toBeUndefined();
    expect(page.body).toContain('<title>Something went wrong</title>');
    expect(page.body).not.toContain('secret internals');
    expect(JSON.parse(logs.lines[0])).toMatchObject({
      level: 'ERROR',
      message: 'unexpected error',
      error: { name: 'Error', message: 'secret internals' },
    });
  });

  it('offers "Start again" at /login after a public sign-in, and no way back after a connect link', () => {
    const refused = new RequestRejectedError('m', 'CALLBACK_INVALID_STATE');

    const publicPage = errorPage(refused, captureLogger().logger, context, 'public');
    const linkPage = errorPage(refused, captureLogger().logger, context, 'link');

    expect(publicPage.body).toContain('href="https://broker.example.com/kroger/login"');
    expect(linkPage.body).not.toContain('href=');
  });
});
