/**
 * The end-of-sign-in pages as a person and a monitor see them: each outcome's HTTP status (a monitor
 * counts 4xx and 5xx apart), what the page promises (whether anything was saved, what to do next,
 * where to go), and the one link it offers. The words themselves are product copy; these tests hold
 * the facts in them, not their phrasing.
 */
import {
  decodeOutcome,
  encodeOutcome,
  type Outcome,
  type PageContext,
  RESULT_COOKIE_MAX_AGE_SECONDS,
  RESULT_KINDS,
  type ResultKind,
  renderOutcome,
} from '../../functions/core/result-page';
import { newConnectCode, PENDING_CONNECTION_TTL_SECONDS } from '../../functions/core/connect';
import { describeProviderError } from '../../functions/core/callback';

const CONTEXT: PageContext = {
  appName: 'Acme Groceries',
  publicLogin: true,
  loginUrl: 'https://broker.example.com/login',
  returnToAllowlist: ['https://app.example.com/kroger/'],
};
const RETURN = 'https://app.example.com/kroger/return';

const render = (outcome: Omit<Outcome, 'via'> & { via?: Outcome['via'] }, context: PageContext = CONTEXT) =>
  renderOutcome({ via: 'public', ...outcome }, context);
/** Everything the page says, as one string. */
const said = (outcome: Omit<Outcome, 'via'> & { via?: Outcome['via'] }, context: PageContext = CONTEXT) => {
  const { page } = render(outcome, context);
  return [page.title, page.message, ...(page.notes ?? [])].join('\n');
};

describe('Function: renderOutcome', () => {
  it.each<[ResultKind, number]>([
    ['connected', 200],
    ['pending', 200],
    ['cancelled', 403],
    ['provider-error', 400],
    ['attempt-invalid', 400],
    ['wrong-browser', 400],
    ['malformed', 400],
    ['issuer-mismatch', 400],
    ['code-refused', 400],
    ['unavailable', 503],
    ['bad-response', 502],
    ['service-rejected', 502],
    ['storage-unavailable', 503],
    ['link-bound', 409],
    ['public-off', 403],
    ['invalid-link', 400],
    ['return-to-refused', 400],
    ['nothing', 400],
    ['internal', 500],
  ])('answers %s with HTTP %i', (kind, status) => {
    expect(render({ kind, connectCode: newConnectCode() }).status).toBe(status);
  });

  it('has a status for every outcome kind, and only success is 2xx', () => {
    for (const kind of RESULT_KINDS) {
      const { status } = render({ kind, connectCode: newConnectCode() });
      expect(status >= 200 && status < 300).toBe(kind === 'connected' || kind === 'pending');
    }
  });

  it.each<ResultKind>([
    'attempt-invalid',
    'wrong-browser',
    'malformed',
    'issuer-mismatch',
    'code-refused',
    'unavailable',
    'bad-response',
    'storage-unavailable',
    'internal',
  ])('says that nothing was saved after %s', (kind) => {
    expect(said({ kind })).toContain('Nothing was saved.');
  });

  it.each<[ResultKind, RegExp]>([
    ['connected', /^Your Kroger account is connected\n/],
    ['cancelled', /^Not connected\n/],
    ['attempt-invalid', /expired or was already used[\s\S]*only once, within 10 minutes/],
    ['wrong-browser', /another browser[\s\S]*cookies allowed/],
    ['malformed', /incomplete[\s\S]*missing information/],
    ['issuer-mismatch', /did not come from Kroger's sign-in service/],
    ['code-refused', /no longer accepts this sign-in/],
    ['unavailable', /^Kroger is not answering\n[\s\S]*try again in a few minutes/],
    ['bad-response', /unexpected answer[\s\S]*try again later/],
    ['service-rejected', /did not accept this service[\s\S]*service operator has to fix this/],
    [
      'storage-unavailable',
      /^Not connected\nThis service cannot store connections at the moment[\s\S]*try again in a few minutes/,
    ],
    ['link-bound', /^Not saved: this connection is managed by Acme Groceries\n[\s\S]*Nothing was changed/],
    ['public-off', /^Start from Acme Groceries\n[\s\S]*only through a link from Acme Groceries/],
    ['invalid-link', /cannot be used[\s\S]*each link works once[\s\S]*back to Acme Groceries/],
    ['return-to-refused', /not allowed[\s\S]*Nothing was started or saved[\s\S]*back to Acme Groceries/],
    ['nothing', /^Nothing to show here\n[\s\S]*start again from Acme Groceries/],
    ['internal', /^Something went wrong\n/],
  ])('tells the person what happened after %s', (kind, words) => {
    expect(said({ kind })).toMatch(words);
  });

  it('names the app, capitalised at the start of a sentence, on the success page', () => {
    expect(render({ kind: 'connected' }, { ...CONTEXT, appName: 'acme' }).page.message).toBe(
      'Acme can now use your Kroger account. You can close this window.',
    );
  });

  it("uses the provider's own explanation for a refusal at Kroger", () => {
    expect(said({ kind: 'provider-error', providerError: 'login_required' })).toContain(
      describeProviderError('login_required'),
    );
    expect(said({ kind: 'provider-error' })).toContain(describeProviderError(''));
    expect(said({ kind: 'cancelled' })).toContain(describeProviderError('access_denied'));
  });

  it('lowers "Please start again" inside a sentence after a cancel', () => {
    expect(render({ kind: 'cancelled', via: 'link' }).page.message).toMatch(
      /If that was a mistake, please start again from Acme Groceries\.$/,
    );
    expect(render({ kind: 'cancelled' }).page.message).toMatch(/If that was a mistake, please start again\.$/);
  });

  it('tells a pending sign-in how long its code lasts and that it is for the account that started it', () => {
    const code = newConnectCode();
    const { page } = render({ kind: 'pending', via: 'link', connectCode: code });
    expect(page.code).toBe(code);
    expect(page.notes?.[0]).toContain(`for the next ${PENDING_CONNECTION_TTL_SECONDS / 60} minutes`);
    expect(page.notes?.[0]).toContain('only for the Acme Groceries account that started this connection');
    expect(page.notes?.[1]).toMatch(/Never send it to anyone/);
  });

  it('shows a code only on the pending page', () => {
    expect(render({ kind: 'connected', connectCode: newConnectCode() }).page.code).toBeUndefined();
  });

  it('says how long a result is kept when there is none to show', () => {
    expect(said({ kind: 'nothing' })).toContain(`kept for ${RESULT_COOKIE_MAX_AGE_SECONDS / 60} minutes`);
  });

  it('offers "Start again" after a public failure, and not after outcomes a restart would repeat', () => {
    const restart = { href: CONTEXT.loginUrl, label: 'Start again' };
    expect(render({ kind: 'unavailable' }).page.action).toEqual(restart);
    expect(render({ kind: 'unavailable' }).page.message).toContain('Please try again in a few minutes.');
    expect(render({ kind: 'malformed' }).page.message).toMatch(/Please start again\.$/);
    for (const kind of ['connected', 'pending', 'link-bound', 'public-off', 'nothing'] as const) {
      expect(render({ kind, connectCode: newConnectCode() }).page.action).toBeUndefined();
    }
  });

  it('offers "Return to <app>" for an allow-listed return URL, whatever the outcome but pending', () => {
    for (const kind of ['connected', 'unavailable', 'link-bound'] as const) {
      expect(render({ kind, via: 'link', returnTo: RETURN }).page.action).toEqual({
        href: RETURN,
        label: 'Return to Acme Groceries',
      });
    }
    expect(render({ kind: 'unavailable', returnTo: RETURN }).page.message).toMatch(/try again in a few minutes\.$/);
    expect(
      render({ kind: 'pending', via: 'link', connectCode: newConnectCode(), returnTo: RETURN }).page.action,
    ).toBeUndefined();
  });

  it('offers nothing for a return URL off the allow-list, and says to start from the app after a link', () => {
    const { page } = render({ kind: 'malformed', via: 'link', returnTo: 'https://evil.example/' });
    expect(page.action).toBeUndefined();
    expect(page.message).toMatch(/Please start again from Acme Groceries\.$/);
  });

  it('brands the page with the app and says it never asks for the Kroger password', () => {
    const { page } = render({ kind: 'connected' });
    expect(page.brand).toBe('Acme Groceries · Kroger account connection');
    expect(page.footer).toBe(
      "This service connects your Kroger account to Acme Groceries. It never asks for your Kroger password: you enter that only on Kroger's own sign-in page.",
    );
  });
});

describe('Function: encodeOutcome / decodeOutcome', () => {
  it.each<Outcome>([
    { kind: 'connected', via: 'public' },
    { kind: 'provider-error', via: 'link', providerError: 'login_required', returnTo: RETURN },
    { kind: 'pending', via: 'link', connectCode: newConnectCode() },
  ])('round-trips $kind via $via', (outcome) => {
    expect(decodeOutcome(encodeOutcome(outcome))).toEqual({
      providerError: undefined,
      connectCode: undefined,
      returnTo: undefined,
      ...outcome,
    });
  });

  it('writes only the fields an outcome has, in short keys', () => {
    const decoded = (outcome: Outcome) =>
      JSON.parse(Buffer.from(encodeOutcome(outcome), 'base64url').toString('utf8')) as unknown;
    expect(decoded({ kind: 'connected', via: 'link' })).toEqual({ k: 'connected', v: 'l' });
    expect(decoded({ kind: 'provider-error', via: 'public', providerError: 'x', returnTo: RETURN })).toEqual({
      k: 'provider-error',
      v: 'p',
      p: 'x',
      r: RETURN,
    });
  });

  const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

  it.each([
    ['no cookie', undefined],
    ['an empty cookie', ''],
    ['JSON null', forged(null)],
    ['a missing via', forged({ k: 'connected' })],
    ['an unknown via', forged({ k: 'connected', v: 'x' })],
    ['a code one character short', forged({ k: 'pending', v: 'l', c: newConnectCode().slice(1) })],
    ['a code with a character outside base64url', forged({ k: 'pending', v: 'l', c: `${newConnectCode().slice(1)}+` })],
    ['a numeric code', forged({ k: 'connected', v: 'l', c: 42 })],
  ])('refuses %s', (_what, value) => {
    expect(decodeOutcome(value)).toBeUndefined();
  });

  it('accepts a cookie of 2,048 characters and refuses a longer one', () => {
    // A return URL padded so the cookie is exactly `length` characters of valid base64url JSON.
    const ofLength = (length: number) => {
      for (let pad = 0; ; pad++) {
        const value = forged({ k: 'connected', v: 'p', r: 'x'.repeat(pad) });
        if (value.length === length) return value;
        if (value.length > length) throw new Error(`no cookie of ${length} characters`);
      }
    };
    expect(decodeOutcome(ofLength(2048))).toMatchObject({ kind: 'connected', via: 'public' });
    expect(decodeOutcome(ofLength(2050))).toBeUndefined();
  });

  it('keeps a provider error of up to 64 lower-case letters and underscores, and drops anything else', () => {
    const error = (p: unknown) => decodeOutcome(forged({ k: 'provider-error', v: 'p', p }))?.providerError;
    expect(error('a'.repeat(64))).toBe('a'.repeat(64));
    expect(error('a'.repeat(65))).toBeUndefined();
    expect(error('')).toBeUndefined();
    expect(error('Login_required')).toBeUndefined();
    expect(error('x login_required')).toBeUndefined();
    expect(error(7)).toBeUndefined();
  });
});
