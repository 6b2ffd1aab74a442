import {
  InvalidGrantError,
  ProviderResponseError,
  ProviderUnavailableError,
  RequestRejectedError,
} from '../../functions/core/errors';
import { errorPage } from '../../functions/flows/pages';
import { captureLogger } from '../support/logs';

describe('Function: errorPage', () => {
  it('shows a refused request with its own status, its message as a sentence, and its detail', () => {
    const logs = captureLogger();
    const error = new RequestRejectedError(
      'the "state" parameter is missing',
      'CALLBACK_MISSING_PARAMETERS',
      400,
      'more',
    );

    const page = errorPage(error, logs.logger, ['c=; Max-Age=0']);

    expect(page.statusCode).toBe(400);
    expect(page.cookies).toEqual(['c=; Max-Age=0']);
    expect(page.body).toContain('<title>Sign-in not completed</title>');
    expect(page.body).toContain('<p>The &#34;state&#34; parameter is missing.</p><p class="detail">more</p>');
    expect(logs.lines.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({
        level: 'WARN',
        message: 'request refused',
        errorCode: 'CALLBACK_MISSING_PARAMETERS',
        status: 400,
      }),
    ]);
  });

  it.each([
    ['a sentence that already ends', 'open the link again.', 'Open the link again.'],
    ['a question', 'did you cancel?', 'Did you cancel?'],
    ['an exclamation', 'too late!', 'Too late!'],
  ])('does not add a full stop to %s', (_name, message, shown) => {
    const page = errorPage(new RequestRejectedError(message, 'CALLBACK_INVALID_STATE', 400), captureLogger().logger);

    expect(page.body).toContain(`<p>${shown}</p>`);
  });

  it('adds a full stop to a message whose only stop is inside it', () => {
    const page = errorPage(
      new RequestRejectedError('see example.com', 'CALLBACK_INVALID_STATE'),
      captureLogger().logger,
    );

    expect(page.body).toContain('<p>See example.com.</p>');
  });

  it.each([
    [
      'a refused code',
      new InvalidGrantError('refused'),
      400,
      'Sign-in not completed',
      'The sign-in code was already used or has expired. Please open the sign-in link again.',
      'WARN',
      'sign-in code refused by the provider',
    ],
    [
      'an outage',
      new ProviderUnavailableError('down'),
      503,
      'Kroger is not answering',
      'Nothing was saved. Please try again in a few minutes.',
      'WARN',
      'provider unavailable',
    ],
    [
      'a bad answer',
      new ProviderResponseError('odd'),
      502,
      'Sign-in not completed',
      'Kroger gave an unexpected answer, so nothing was saved. Please try again later.',
      'ERROR',
      'provider gave an unexpected response',
    ],
  ])('answers %s with its status and page, and logs the error', (_n, error, status, title, text, level, message) => {
    const logs = captureLogger();

    const page = errorPage(error, logs.logger, ['c=; Max-Age=0']);

    expect(page.statusCode).toBe(status);
    expect(page.cookies).toEqual(['c=; Max-Age=0']);
    expect(page.body).toContain(`<title>${title}</title>`);
    expect(page.body).toContain(`<p>${text}</p>`);
    expect(logs.lines.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({ level, message, error: expect.objectContaining({ name: error.name }) }),
    ]);
  });

  it('answers anything unexpected with a generic 500 and logs the details only', () => {
    const logs = captureLogger();

    const page = errorPage(new Error('secret internals'), logs.logger);

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
});
