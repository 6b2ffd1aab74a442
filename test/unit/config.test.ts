import {
  isAllowedTarget,
  loginUrlFromRedirect,
  readIntSetting,
  readLogLevel,
  parseScopes,
  readFlowConfig,
  readProviderConfig,
  readSecretConfig,
  readStoreConfig,
} from '../../functions/core/config';
import { ConfigError } from '../../functions/core/errors';

const base = {
  CLIENT_ID: 'client',
  OAUTH2_BASE_URL: 'https://api.kroger.com/v1/connect/oauth2',
  API_BASE_URL: 'https://api.kroger.com',
  REDIRECT_URL: 'https://broker.example.com/callback',
};

describe('Function: readProviderConfig', () => {
  it("derives Kroger's endpoints from the tutorial's variables", () => {
    const config = readProviderConfig(base);
    expect(config.authorizeUrl).toBe('https://api.kroger.com/v1/connect/oauth2/authorize');
    expect(config.tokenUrl).toBe('https://api.kroger.com/v1/connect/oauth2/token');
    expect(config.profileUrl).toBe('https://api.kroger.com/v1/identity/profile');
    expect(config.scopes).toEqual(['product.compact', 'cart.basic:write', 'profile.compact']);
    expect(config.pkce).toBe(true);
    expect(config.allowInsecureHttp).toBe(false);
  });

  it.each(['CLIENT_ID', 'OAUTH2_BASE_URL', 'API_BASE_URL', 'REDIRECT_URL'])(
    'fails naming %s when it is missing',
    (name) => {
      expect(() => readProviderConfig({ ...base, [name]: undefined })).toThrow(
        new ConfigError(`${name} environment variable is not set`),
      );
    },
  );

  it.each([
    ['OAUTH2_BASE_URL', 'not a url', /OAUTH2_BASE_URL must be an absolute URL/],
    ['OAUTH2_BASE_URL', 'http://api.kroger.com/v1/connect/oauth2', /OAUTH2_BASE_URL must use https/],
    ['REDIRECT_URL', 'https://b.example.com/callback#frag', /REDIRECT_URL must not have a fragment/],
    ['API_BASE_URL', 'https://user:pw@api.kroger.com', /API_BASE_URL must not contain credentials/],
    ['PKCE', 'maybe', /PKCE must be "true" or "false"/],
    ['PROVIDER_TIMEOUT_MS', '10001', /PROVIDER_TIMEOUT_MS must be a whole number between 1 and 10000/],
    ['SCOPES', 'product.compact', /SCOPES must include "profile.compact"/],
    ['SCOPES', 'profile.compact bad"scope', /SCOPES has an invalid scope/],
  ])('fails naming %s when it is %p', (name, value, message) => {
    expect(() => readProviderConfig({ ...base, [name]: value })).toThrow(message);
  });

  it('allows plain http only on loopback hosts', () => {
    const config = readProviderConfig({
      ...base,
      OAUTH2_BASE_URL: 'http://localhost:4000/v1/connect/oauth2',
      REDIRECT_URL: 'http://127.0.0.1:3000/callback',
    });
    expect(config.allowInsecureHttp).toBe(true);
  });

  it('turns PKCE off only when told to', () => {
    expect(readProviderConfig({ ...base, PKCE: 'false' }).pkce).toBe(false);
  });
});

describe('Function: parseScopes', () => {
  it('splits on any whitespace and drops duplicates', () => {
    expect(parseScopes(' profile.compact  cart.basic:write\tprofile.compact ')).toEqual([
      'profile.compact',
      'cart.basic:write',
    ]);
  });
  it('refuses an empty list', () => {
    expect(() => parseScopes('   ')).toThrow(/at least one scope/);
  });
});

describe('Function: readStoreConfig', () => {
  it('has defaults for local runs', () => {
    expect(readStoreConfig({})).toMatchObject({ tokensTable: 'kroger-tokens', sessionsTable: 'kroger-login-sessions' });
  });
  it('refuses a table name DynamoDB would refuse', () => {
    expect(() => readStoreConfig({ TOKENS_TABLE: 'ab' })).toThrow(/TOKENS_TABLE must be a DynamoDB table name/);
  });
});

describe('Function: readSecretConfig', () => {
  it('prefers Secrets Manager when CLIENT_SECRET_ARN is set', () => {
    expect(readSecretConfig({ CLIENT_SECRET_ARN: 'arn:x', CLIENT_SECRET: 'local' })).toEqual({
      kind: 'secrets-manager',
      secretId: 'arn:x',
    });
  });
  it('names both variables when neither is set', () => {
    expect(() => readSecretConfig({})).toThrow(/CLIENT_SECRET environment variable is not set \(or CLIENT_SECRET_ARN/);
  });
});

describe('Function: isAllowedTarget', () => {
  const allow = ['https://app.example.com/done'];
  it('accepts the allow-listed path and below it', () => {
    expect(isAllowedTarget('https://app.example.com/done', allow)).toBe(true);
    expect(isAllowedTarget('https://app.example.com/done/here?x=1', allow)).toBe(true);
  });
  it.each([
    'https://app.example.com.evil.test/done',
    'https://evil.test/?https://app.example.com/done',
    'https://app.example.com/donee',
    'http://app.example.com/done',
    '//evil.test/done',
    'javascript:alert(1)',
    'https://user@app.example.com/done',
  ])('refuses %s (no open redirect)', (target) => {
    expect(isAllowedTarget(target, allow)).toBe(false);
  });
  it('refuses everything when the allow-list is empty', () => {
    expect(isAllowedTarget('https://app.example.com/done', [])).toBe(false);
  });
});

describe('Function: readFlowConfig', () => {
  it('requires SUCCESS_REDIRECT to be on the allow-list', () => {
    expect(() => readFlowConfig({ SUCCESS_REDIRECT: 'https://app.example.com/x' })).toThrow(
      /SUCCESS_REDIRECT must be on RETURN_TO_ALLOWLIST/,
    );
  });
});

describe('Function: loginUrlFromRedirect', () => {
  it('serves /login beside /callback, on the same host and path prefix', () => {
    expect(loginUrlFromRedirect('https://auth.example.com/kroger/callback')).toBe(
      'https://auth.example.com/kroger/login',
    );
    expect(loginUrlFromRedirect('http://localhost:3000/callback?x=1')).toBe('http://localhost:3000/login');
  });
});

describe('Function: readLogLevel', () => {
  it('accepts the four levels in any case and defaults to info', () => {
    expect(readLogLevel({ LOG_LEVEL: 'WARN' })).toBe('warn');
    expect(readLogLevel({})).toBe('info');
  });
  it('refuses anything else, naming the variable', () => {
    expect(() => readLogLevel({ LOG_LEVEL: 'verbose' })).toThrow(/LOG_LEVEL must be one of debug, info, warn, error/);
  });
});

describe('Function: readIntSetting', () => {
  it.each(['abc', '-5', '1.5', '70000'])('refuses %p, naming the variable and the range', (raw) => {
    expect(() => readIntSetting({ PORTISH: raw }, 'PORTISH', 1, 0, 65535)).toThrow(
      new ConfigError(`PORTISH must be a whole number between 0 and 65535, got "${raw}"`),
    );
  });
  it('takes the fallback when unset and the value otherwise', () => {
    expect(readIntSetting({}, 'X', 7, 0, 10)).toBe(7);
    expect(readIntSetting({ X: '0' }, 'X', 7, 0, 10)).toBe(0);
  });
});
