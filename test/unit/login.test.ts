import { createHash } from 'node:crypto';
import {
  BINDING_COOKIE_PREFIX,
  bindingCookieName,
  hashBinding,
  LOGIN_ATTEMPT_TTL_SECONDS,
  s256,
  secureRandom,
  startLogin,
} from '../../functions/core/login';

const config = {
  authorizeUrl: 'https://api.kroger.com/v1/connect/oauth2/authorize',
  clientId: 'my-client',
  redirectUri: 'https://broker.example.com/callback',
  scopes: ['product.compact', 'cart.basic:write', 'profile.compact'],
  pkce: true,
};

describe('Function: startLogin', () => {
  it('builds the authorization request with every parameter Kroger and RFC 7636 ask for', () => {
    const login = startLogin(config, { now: 1000 });
    const url = new URL(login.authorizationUrl);
    expect(url.origin + url.pathname).toBe(config.authorizeUrl);
    expect(url.searchParams.get('client_id')).toBe('my-client');
    expect(url.searchParams.get('redirect_uri')).toBe(config.redirectUri);
    expect(url.searchParams.get('response_type')).toBe('code');
    expect(url.searchParams.get('scope')).toBe('product.compact cart.basic:write profile.compact');
    expect(url.searchParams.get('state')).toBe(login.attempt.state);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toBe(s256(login.attempt.codeVerifier!));
  });

  it('uses at least 128 random bits for state, verifier and binding, fresh every time', () => {
    const a = startLogin(config, { now: 1000 });
    const b = startLogin(config, { now: 1000 });
    for (const value of [a.attempt.state, a.attempt.codeVerifier!, a.bindingValue]) {
      expect(Buffer.from(value, 'base64url').length * 8).toBeGreaterThanOrEqual(128);
    }
    expect(a.attempt.state).not.toBe(b.attempt.state);
    expect(a.bindingValue).not.toBe(b.bindingValue);
  });

  it('stores only a hash of the binding cookie, never the value', () => {
    const login = startLogin(config, { now: 1000 });
    expect(JSON.stringify(login.attempt)).not.toContain(login.bindingValue);
    expect(login.attempt.bindingHash).toBe(hashBinding(login.bindingValue));
  });

  it('expires the attempt after about ten minutes', () => {
    expect(startLogin(config, { now: 1000 }).attempt.expiresAt).toBe(1000 + LOGIN_ATTEMPT_TTL_SECONDS);
    expect(LOGIN_ATTEMPT_TTL_SECONDS).toBeLessThanOrEqual(900);
  });

  it('sends no PKCE parameters and stores no verifier when PKCE is turned off', () => {
    const login = startLogin({ ...config, pkce: false }, { now: 1000 });
    const url = new URL(login.authorizationUrl);
    expect(url.searchParams.has('code_challenge')).toBe(false);
    expect(url.searchParams.has('code_challenge_method')).toBe(false);
    expect(login.attempt.codeVerifier).toBeUndefined();
  });
});

describe('Function: s256', () => {
  it('matches the RFC 7636 appendix B example', () => {
    expect(s256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });
});

describe('Function: startLogin (encoding)', () => {
  it('encodes spaces in the scope as %20, as the tutorial does', () => {
    const { authorizationUrl } = startLogin(config, { now: 0 });
    expect(authorizationUrl).toContain('scope=product.compact%20cart.basic%3Awrite%20profile.compact');
    expect(authorizationUrl).not.toContain('+');
  });
  it('keeps query parameters already in the authorize URL', () => {
    const { authorizationUrl } = startLogin({ ...config, authorizeUrl: `${config.authorizeUrl}?tenant=x` }, { now: 0 });
    expect(new URL(authorizationUrl).searchParams.get('tenant')).toBe('x');
    expect(new URL(authorizationUrl).searchParams.get('client_id')).toBe('my-client');
  });
});

describe('Function: bindingCookieName', () => {
  it('is the prefix and 16 characters of the SHA-256 of the state, one per login attempt', () => {
    const hash = createHash('sha256').update('state-1').digest('base64url');
    expect(bindingCookieName('state-1')).toBe(`kroger_broker_login_${hash.slice(0, 16)}`);
    expect(BINDING_COOKIE_PREFIX).toBe('kroger_broker_login_');
    expect(bindingCookieName('state-2')).not.toBe(bindingCookieName('state-1'));
  });
});

describe('Function: hashBinding', () => {
  it('is the base64url SHA-256 of the cookie value', () => {
    expect(hashBinding('v')).toBe(createHash('sha256').update('v').digest('base64url'));
  });
});

describe('Function: startLogin (pinned randomness)', () => {
  it('draws 32 bytes each for state, binding value and verifier, in that order', () => {
    const asked: number[] = [];
    const values = ['S', 'B', 'V'];
    const login = startLogin(config, {
      now: 0,
      random: (bytes) => {
        asked.push(bytes);
        return values[asked.length - 1];
      },
      appUserId: 'app-1',
      returnTo: 'https://app.example.com/done',
    });
    expect(asked).toEqual([32, 32, 32]);
    expect(login.attempt).toEqual({
      state: 'S',
      codeVerifier: 'V',
      bindingHash: hashBinding('B'),
      appUserId: 'app-1',
      returnTo: 'https://app.example.com/done',
      expiresAt: LOGIN_ATTEMPT_TTL_SECONDS,
    });
    expect(login.bindingValue).toBe('B');
  });
  it('uses 256-bit values from the secure source by default', () => {
    expect(Buffer.from(secureRandom(32), 'base64url')).toHaveLength(32);
    expect(secureRandom(32)).toMatch(/^[\w-]{43}$/);
  });
});
