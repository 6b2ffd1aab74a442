/**
 * The pure parts of connect links: connect codes, their wire contract, the page vocabulary and its
 * result cookie, the cap on login cookies, and the settings the pages read.
 */
import { ConfigError, ConnectionRefusedError, ERROR_CODES } from '../../functions/core/errors';
import { readFlowConfig } from '../../functions/core/config';
import {
  carriesConnectCode,
  CONNECT_CODE_LENGTH,
  hashConnectCode,
  newConnectCode,
  parseCompleteRequest,
  parseConnectCode,
  withConnectCode,
} from '../../functions/core/connect';
import { htmlPage } from '../../functions/core/http';
import { createCompleteFunctionHandler } from '../../functions/handlers';
import { createServices } from '../../functions/services';
import {
  BINDING_COOKIE_PREFIX,
  bindingCookieName,
  LOGIN_ATTEMPT_TTL_SECONDS,
  MAX_LIVE_LOGINS,
  planLoginCookies,
} from '../../functions/core/login';
import {
  decodeOutcome,
  encodeOutcome,
  type Outcome,
  type PageContext,
  renderOutcome,
  RESULT_KINDS,
} from '../../functions/core/result-page';

const CONTEXT: PageContext = {
  appName: 'Acme Groceries',
  publicLogin: true,
  loginUrl: 'https://broker.example.com/login',
  returnToAllowlist: ['https://app.example.com/kroger/'],
};

describe('Function: newConnectCode', () => {
  it('carries 256 random bits as 43 base64url characters, fresh each time', () => {
    const codes = new Set(Array.from({ length: 50 }, () => newConnectCode()));
    expect(codes.size).toBe(50);
    for (const code of codes) {
      expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(code, 'base64url').length * 8).toBeGreaterThanOrEqual(128);
    }
  });

  it('is stored only as a hash that does not contain it', () => {
    const code = newConnectCode();
    expect(hashConnectCode(code)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(hashConnectCode(code)).not.toBe(code);
    expect(hashConnectCode(code)).toBe(hashConnectCode(code));
  });
});

describe('Function: parseConnectCode', () => {
  it('accepts a well-formed code', () => {
    const code = newConnectCode();
    expect(parseConnectCode(code)).toBe(code);
  });

  it.each([
    ['empty', '', /non-empty/],
    ['not a string', 42, /non-empty string/],
    ['one character short', 'a'.repeat(CONNECT_CODE_LENGTH - 1), /malformed/],
    ['one character long', 'a'.repeat(CONNECT_CODE_LENGTH + 1), /malformed/],
    ['padded base64', `${'a'.repeat(CONNECT_CODE_LENGTH - 1)}=`, /malformed/],
    ['with a space', `${'a'.repeat(CONNECT_CODE_LENGTH - 1)} `, /malformed/],
    ['oversized', 'a'.repeat(10_000), /too long/],
  ])('refuses a code that is %s', (_what, value, message) => {
    expect(() => parseConnectCode(value)).toThrow(message);
  });

  it('never quotes the value it refuses (it could be a real code, mistyped)', () => {
    const almost = `${newConnectCode()}x`;
    expect(() => parseConnectCode(almost)).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining(almost) }),
    );
  });
});

describe('Function: parseCompleteRequest', () => {
  it('takes a code and an app user id, and refuses anything else', () => {
    const code = newConnectCode();
    expect(parseCompleteRequest({ connectCode: code, appUserId: 'u-1', extra: true })).toEqual({
      connectCode: code,
      appUserId: 'u-1',
    });
    expect(() => parseCompleteRequest(null)).toThrow(/connectCode/);
    expect(() => parseCompleteRequest({ connectCode: code })).toThrow(/appUserId/);
    expect(() => parseCompleteRequest({ connectCode: code, appUserId: 'x'.repeat(257) })).toThrow(/appUserId/);
  });
});

describe('Function: withConnectCode', () => {
  it("appends the code to the return URL's query without re-encoding the app's own parameters", () => {
    expect(withConnectCode('https://app.example.com/kroger/return?tab=a%20b&x=1#top', 'CODE')).toBe(
      'https://app.example.com/kroger/return?tab=a%20b&x=1&connect_code=CODE#top',
    );
    expect(withConnectCode('https://app.example.com/kroger/return', 'CODE')).toBe(
      'https://app.example.com/kroger/return?connect_code=CODE',
    );
  });

  it('is refused upstream for a return URL that already has a connect_code', () => {
    expect(carriesConnectCode('https://app.example.com/r?connect_code=x')).toBe(true);
    expect(carriesConnectCode('https://app.example.com/r?code=x')).toBe(false);
    expect(carriesConnectCode('not a url')).toBe(false);
  });
});

describe('Class: ConnectionRefusedError', () => {
  it.each([
    ['unknown', 'CONNECT_CODE_UNKNOWN', /not known/],
    ['used', 'CONNECT_CODE_USED', /already used/],
    ['expired', 'CONNECT_CODE_EXPIRED', /expired/],
    ['foreign', 'CONNECT_CODE_FOREIGN', /belongs to another app user/],
    ['cancelled', 'CONNECT_CODE_CANCELLED', /was cancelled/],
  ] as const)('says which refusal: %s', (reason, code, message) => {
    const error = new ConnectionRefusedError(reason);
    expect(error).toMatchObject({ reason, code, name: 'ConnectionRefusedError' });
    expect(error.message).toMatch(message);
    expect(ERROR_CODES).toContain(code);
  });
});

describe('Function: planLoginCookies', () => {
  const now = 1_000_000;
  const name = (i: number) => bindingCookieName(`state-${i}`);
  const plan = (ledger: string | undefined, i: number, at = now) =>
    planLoginCookies(ledger, { name: name(i), expiresAt: at + LOGIN_ATTEMPT_TTL_SECONDS }, at);

  it(`keeps the newest ${MAX_LIVE_LOGINS} logins and expires the oldest beyond them`, () => {
    let ledger: string | undefined;
    const evicted: string[] = [];
    for (let i = 0; i < MAX_LIVE_LOGINS + 3; i += 1) {
      const next = plan(ledger, i, now + i);
      evicted.push(...next.evict);
      ledger = next.ledger;
    }
    expect(evicted).toEqual([name(0), name(1), name(2)]);
    expect(ledger!.split('.')).toHaveLength(MAX_LIVE_LOGINS);
    expect(ledger!.split('.').at(-1)).toBe(
      `${name(MAX_LIVE_LOGINS + 2).slice(BINDING_COOKIE_PREFIX.length)}:${now + MAX_LIVE_LOGINS + 2 + LOGIN_ATTEMPT_TTL_SECONDS}`,
    );
  });

  it('forgets expired logins without expiring anything (their cookies are gone already)', () => {
    const old = plan(undefined, 1, now - LOGIN_ATTEMPT_TTL_SECONDS - 1);
    const next = plan(old.ledger, 2);
    expect(next.evict).toEqual([]);
    expect(next.ledger.split('.')).toHaveLength(1);
  });

  it.each([
    ['garbage', 'not a ledger'],
    ['oversized', 'A'.repeat(5000)],
    ['a forged entry with an odd name', 'x;Path=/:9999999999'],
  ])('treats a %s ledger as empty', (_what, ledger) => {
    const next = plan(ledger, 1);
    expect(next.evict).toEqual([]);
    expect(next.ledger).toBe(`${name(1).slice(BINDING_COOKIE_PREFIX.length)}:${now + LOGIN_ATTEMPT_TTL_SECONDS}`);
  });

  it('only ever names binding cookies to expire', () => {
    const forged = Array.from(
      { length: 20 },
      (_, i) => `${'B'.repeat(15)}${String.fromCharCode(65 + i)}:${now + 100}`,
    ).join('.');
    for (const evicted of plan(forged, 1).evict)
      expect(evicted).toMatch(new RegExp(`^${BINDING_COOKIE_PREFIX}[A-Za-z0-9_-]{16}$`));
  });
});

describe('Function: renderOutcome', () => {
  const render = (outcome: Outcome, context = CONTEXT) => {
    const { status, page } = renderOutcome(outcome, context);
    return { status, page, html: htmlPage(status, page).body };
  };

  it('gives every outcome a status, a title and words that name the app where it matters', () => {
    for (const kind of RESULT_KINDS) {
      const { status, page } = render({ kind, via: 'link', connectCode: newConnectCode() });
      expect(status).toBeGreaterThanOrEqual(200);
      expect(page.title.length).toBeGreaterThan(5);
      expect(page.brand).toBe('Acme Groceries · Kroger account connection');
    }
    expect(render({ kind: 'pending', via: 'link', connectCode: newConnectCode() }).page.title).toBe(
      'One more step: finish in Acme Groceries',
    );
    expect(render({ kind: 'link-bound', via: 'public' }).status).toBe(409);
    expect(render({ kind: 'public-off', via: 'public' }).status).toBe(403);
  });

  it('shows the pending code, and no way back that would lose it', () => {
    const code = newConnectCode();
    const { page, html } = render({
      kind: 'pending',
      via: 'link',
      connectCode: code,
      returnTo: 'https://app.example.com/kroger/return',
    });
    expect(page.code).toBe(code);
    expect(html).toContain(`<p class="code">${code}</p>`);
    expect(page.action).toBeUndefined();
  });

  it('offers "Return to <app>" only for an allow-listed return URL', () => {
    const back = render({ kind: 'cancelled', via: 'link', returnTo: 'https://app.example.com/kroger/return' });
    const offList = render({ kind: 'cancelled', via: 'link', returnTo: 'https://evil.example/' });
    expect(back.page.action).toEqual({
      href: 'https://app.example.com/kroger/return',
      label: 'Return to Acme Groceries',
    });
    expect(offList.page.action).toBeUndefined();
    expect(offList.html).not.toContain('evil.example');
  });

  it('offers "Start again" at /login after a public sign-in, unless public sign-in is off or it would repeat a refusal', () => {
    expect(render({ kind: 'unavailable', via: 'public' }).page.action).toEqual({
      href: 'https://broker.example.com/login',
      label: 'Start again',
    });
    expect(
      render({ kind: 'unavailable', via: 'public' }, { ...CONTEXT, publicLogin: false }).page.action,
    ).toBeUndefined();
    expect(render({ kind: 'link-bound', via: 'public' }).page.action).toBeUndefined();
    expect(render({ kind: 'unavailable', via: 'link' }).page.action).toBeUndefined();
    expect(render({ kind: 'code-refused', via: 'link' }).page.message).toContain('start again from Acme Groceries');
  });

  it('escapes the app name everywhere it appears', () => {
    const { html } = render({ kind: 'public-off', via: 'public' }, { ...CONTEXT, appName: '<b>Shop</b> & "Co"' });
    expect(html).not.toContain('<b>Shop</b>');
    expect(html).toContain('&#60;b&#62;Shop&#60;/b&#62; &#38; &#34;Co&#34;');
  });

  it('says "the app" and a plain brand line without APP_NAME', () => {
    const { page } = render({ kind: 'connected', via: 'public' }, { ...CONTEXT, appName: 'the app' });
    expect(page.brand).toBe('Kroger account connection');
    expect(page.message).toContain('The app can now use your Kroger account');
  });
});

describe('Function: encodeOutcome / decodeOutcome', () => {
  it('round-trips what the callback writes', () => {
    const outcome: Outcome = {
      kind: 'pending',
      via: 'link',
      connectCode: newConnectCode(),
      returnTo: 'https://app.example.com/kroger/return',
    };
    expect(decodeOutcome(encodeOutcome(outcome))).toEqual({ ...outcome, providerError: undefined });
  });

  const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

  it.each([
    ['an unknown kind', forged({ k: 'you-won', v: 'p' })],
    ['free text as the code', forged({ k: 'pending', v: 'l', c: 'Call 555-0100 to finish' })],
    ['a pending outcome without its code', forged({ k: 'pending', v: 'l' })],
    ['a non-string return URL', forged({ k: 'connected', v: 'p', r: { href: 'x' } })],
    ['not JSON', Buffer.from('{').toString('base64url')],
    ['not base64url', 'a b'],
    ['oversized', 'A'.repeat(5000)],
  ])('refuses a forged cookie with %s (the clean page then shows "nothing to show")', (_what, value) => {
    expect(decodeOutcome(value)).toBeUndefined();
  });

  it('keeps a provider error only as a key into fixed words', () => {
    expect(decodeOutcome(forged({ k: 'provider-error', v: 'p', p: 'login_required' }))?.providerError).toBe(
      'login_required',
    );
    expect(decodeOutcome(forged({ k: 'provider-error', v: 'p', p: 'Call us <now>' }))?.providerError).toBeUndefined();
  });
});

describe('Function: readFlowConfig (pages)', () => {
  it('reads APP_NAME and PUBLIC_LOGIN, defaulting to "the app" and on', () => {
    expect(readFlowConfig({})).toMatchObject({ appName: 'the app', publicLogin: true });
    expect(readFlowConfig({ APP_NAME: ' Acme ', PUBLIC_LOGIN: 'false' })).toMatchObject({
      appName: 'Acme',
      publicLogin: false,
    });
  });

  it.each([
    ['APP_NAME', 'x'.repeat(65), /APP_NAME must be at most 64 printable characters/],
    ['APP_NAME', 'Acme\nGroceries', /APP_NAME must be at most 64 printable characters/],
    ['PUBLIC_LOGIN', 'nope', /PUBLIC_LOGIN must be "true" or "false"/],
  ])('refuses %s=%j, naming it', (name, value, message) => {
    expect(() => readFlowConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => readFlowConfig({ [name]: value })).toThrow(message);
  });
});

describe('Function: createCompleteFunctionHandler', () => {
  it('needs only the store settings and the field key: no provider settings, no client secret', async () => {
    const handler = createCompleteFunctionHandler(
      // The field key seals the refresh token it stores; no KMS call is made at init.
      createServices({
        AWS_REGION: 'us-east-1',
        FIELD_KEY_ARN: 'arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555',
      }),
    );
    // A malformed request is answered before any I/O, without a token or a stack.
    expect(await handler({ connectCode: 'x', appUserId: 'u' })).toEqual({
      ok: false,
      code: 'BAD_REQUEST',
      message: expect.stringMatching(/malformed/),
    });
  });
});
