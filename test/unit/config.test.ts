import {
  isAllowedTarget,
  loginUrlFromRedirect,
  readIntSetting,
  readLogLevel,
  readPlaintextFieldPolicy,
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

describe('Function: readProviderConfig (every setting)', () => {
  it('trims values and reads the optional endpoints, the issuer and the timeout', () => {
    const config = readProviderConfig({
      CLIENT_ID: '  client  ',
      OAUTH2_BASE_URL: 'https://auth.example.com/oauth2//',
      API_BASE_URL: 'https://api.example.com/',
      REDIRECT_URL: 'https://broker.example.com/callback',
      OAUTH2_REVOCATION_URL: 'https://auth.example.com/revoke',
      OAUTH2_ISSUER: 'https://auth.example.com',
      PROVIDER_TIMEOUT_MS: '2000',
    });
    expect(config).toEqual({
      clientId: 'client',
      authorizeUrl: 'https://auth.example.com/oauth2/authorize',
      tokenUrl: 'https://auth.example.com/oauth2/token',
      revocationUrl: 'https://auth.example.com/revoke',
      profileUrl: 'https://api.example.com/v1/identity/profile',
      redirectUri: 'https://broker.example.com/callback',
      scopes: ['product.compact', 'cart.basic:write', 'profile.compact'],
      pkce: true,
      issuer: 'https://auth.example.com',
      timeoutMs: 2000,
      refreshTimeoutMs: 15000,
      allowInsecureHttp: false,
    });
  });

  it('has no revocation endpoint, no issuer and an 8 s timeout unless told', () => {
    const config = readProviderConfig(base);
    expect(config.revocationUrl).toBeUndefined();
    expect(config.issuer).toBeUndefined();
    expect(config.timeoutMs).toBe(8000);
  });

  it('treats a blank value as missing', () => {
    expect(() => readProviderConfig({ ...base, CLIENT_ID: '   ' })).toThrow(
      new ConfigError('CLIENT_ID environment variable is not set'),
    );
  });

  it.each([
    ['OAUTH2_REVOCATION_URL', 'http://auth.example.com/revoke'],
    ['OAUTH2_ISSUER', 'not a url'],
  ])('checks %s like the other URLs, naming it', (name, value) => {
    expect(() => readProviderConfig({ ...base, [name]: value })).toThrow(new RegExp(`^${name} must`));
  });

  it.each([
    ['true', true],
    ['1', true],
    ['TRUE', true],
    ['false', false],
    ['0', false],
  ])('reads PKCE=%s as %s', (raw, pkce) => {
    expect(readProviderConfig({ ...base, PKCE: raw }).pkce).toBe(pkce);
  });

  it('allows plain http on the IPv6 loopback, but no other scheme even on loopback', () => {
    expect(readProviderConfig({ ...base, REDIRECT_URL: 'http://[::1]:3000/callback' }).allowInsecureHttp).toBe(true);
    expect(() => readProviderConfig({ ...base, API_BASE_URL: 'ftp://localhost/api' })).toThrow(
      new ConfigError('API_BASE_URL must use https (plain http only on localhost), got "ftp://localhost/api"'),
    );
  });

  it('names the variable and the value in every URL complaint', () => {
    expect(() => readProviderConfig({ ...base, OAUTH2_BASE_URL: 'nope' })).toThrow(
      new ConfigError('OAUTH2_BASE_URL must be an absolute URL, got "nope"'),
    );
    expect(() => readProviderConfig({ ...base, API_BASE_URL: 'https://u:p@api.example.com' })).toThrow(
      new ConfigError('API_BASE_URL must not contain credentials'),
    );
    expect(() => readProviderConfig({ ...base, API_BASE_URL: 'https://u@api.example.com' })).toThrow(
      new ConfigError('API_BASE_URL must not contain credentials'),
    );
    expect(() => readProviderConfig({ ...base, REDIRECT_URL: 'https://b.example.com/callback#x' })).toThrow(
      new ConfigError('REDIRECT_URL must not have a fragment (RFC 6749 section 3.1.2)'),
    );
    expect(() => readProviderConfig({ ...base, REDIRECT_URL: 'http://broker.example.com/callback' })).toThrow(
      new ConfigError(
        'REDIRECT_URL must use https (plain http only on localhost), got "http://broker.example.com/callback"',
      ),
    );
    expect(() => readProviderConfig({ ...base, PKCE: 'yes' })).toThrow(
      new ConfigError('PKCE must be "true" or "false", got "yes"'),
    );
  });
});

describe('Function: parseScopes (messages)', () => {
  it('uses the default scopes when SCOPES is unset', () => {
    expect(parseScopes(undefined)).toEqual(['product.compact', 'cart.basic:write', 'profile.compact']);
  });
  it('says what is wrong', () => {
    expect(() => parseScopes(' ')).toThrow(new ConfigError('SCOPES must list at least one scope'));
    expect(() => parseScopes('profile.compact a\\b')).toThrow(new ConfigError('SCOPES has an invalid scope "a\\b"'));
    expect(() => parseScopes('cart.basic:write')).toThrow(
      new ConfigError('SCOPES must include "profile.compact": tokens are stored under the Kroger profile id'),
    );
  });
  it('accepts any profile scope and every printable character RFC 6749 allows', () => {
    expect(parseScopes('profile.full x!#[]~')).toEqual(['profile.full', 'x!#[]~']);
  });
});

describe('Function: readStoreConfig (every setting)', () => {
  it('reads the table names, the endpoint and the region', () => {
    expect(
      readStoreConfig({
        TOKENS_TABLE: 'my.tokens',
        SESSIONS_TABLE: 'my_sessions',
        DYNAMODB_ENDPOINT: 'http://localhost:8000',
        AWS_REGION: 'eu-west-1',
        AWS_DEFAULT_REGION: 'us-west-2',
      }),
    ).toEqual({
      tokensTable: 'my.tokens',
      sessionsTable: 'my_sessions',
      endpoint: 'http://localhost:8000/',
      region: 'eu-west-1',
    });
  });
  it('falls back to AWS_DEFAULT_REGION, then us-east-1, and has no endpoint unless told', () => {
    expect(readStoreConfig({ AWS_DEFAULT_REGION: 'us-west-2' }).region).toBe('us-west-2');
    expect(readStoreConfig({})).toEqual({
      tokensTable: 'kroger-tokens',
      sessionsTable: 'kroger-login-sessions',
      endpoint: undefined,
      region: 'us-east-1',
    });
  });
  it.each(['!!abc', 'abc!!', 'a'.repeat(256)])('refuses the table name %p, naming the variable', (name) => {
    expect(() => readStoreConfig({ SESSIONS_TABLE: name })).toThrow(
      new ConfigError(`SESSIONS_TABLE must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -), got "${name}"`),
    );
  });
  it('accepts a table name of 255 characters', () => {
    expect(readStoreConfig({ TOKENS_TABLE: 'a'.repeat(255) }).tokensTable).toBe('a'.repeat(255));
  });
  it('checks the endpoint like the other URLs', () => {
    expect(() => readStoreConfig({ DYNAMODB_ENDPOINT: 'http://dynamo.example.com' })).toThrow(
      /^DYNAMODB_ENDPOINT must/,
    );
  });
});

describe('Function: readSecretConfig (locally)', () => {
  it('takes CLIENT_SECRET as it is (not trimmed: a secret may end in a space)', () => {
    expect(readSecretConfig({ CLIENT_SECRET: ' s3cret ' })).toEqual({ kind: 'static', value: ' s3cret ' });
  });
});

describe('Function: readFlowConfig (every setting)', () => {
  it('reads the allow-list, separated by spaces or commas, and a SUCCESS_REDIRECT on it', () => {
    expect(
      readFlowConfig({
        RETURN_TO_ALLOWLIST: ' https://app.example.com/done, https://other.example.com\thttp://localhost:3000 ',
        SUCCESS_REDIRECT: 'https://app.example.com/done/ok',
      }),
    ).toEqual({
      appName: 'the app',
      publicLogin: true,
      returnToAllowlist: ['https://app.example.com/done', 'https://other.example.com/', 'http://localhost:3000/'],
      successRedirect: 'https://app.example.com/done/ok',
    });
  });
  it('has an empty allow-list and no SUCCESS_REDIRECT unless told', () => {
    expect(readFlowConfig({})).toEqual({ appName: 'the app', publicLogin: true, returnToAllowlist: [] });
  });
  it('refuses an allow-list entry that is not an https URL, naming the variable', () => {
    expect(() => readFlowConfig({ RETURN_TO_ALLOWLIST: 'https://ok.example.com http://evil.example.com' })).toThrow(
      new ConfigError(
        'RETURN_TO_ALLOWLIST must use https (plain http only on localhost), got "http://evil.example.com"',
      ),
    );
  });
  it('checks SUCCESS_REDIRECT as a URL first', () => {
    expect(() => readFlowConfig({ RETURN_TO_ALLOWLIST: 'https://a.example.com', SUCCESS_REDIRECT: 'nope' })).toThrow(
      new ConfigError('SUCCESS_REDIRECT must be an absolute URL, got "nope"'),
    );
  });
});

describe('Function: isAllowedTarget (origins)', () => {
  it('accepts anything on an origin allow-listed as a whole', () => {
    expect(isAllowedTarget('https://app.example.com/any/path', ['https://app.example.com/'])).toBe(true);
  });
  it('accepts the allow-listed prefix written with a trailing slash', () => {
    expect(isAllowedTarget('https://app.example.com/done/x', ['https://app.example.com/done/'])).toBe(true);
    expect(isAllowedTarget('https://app.example.com/donex', ['https://app.example.com/done/'])).toBe(false);
  });
  it('refuses text that is not a URL', () => {
    expect(isAllowedTarget('not a url', ['https://app.example.com/'])).toBe(false);
  });
});

describe('Function: loginUrlFromRedirect (paths)', () => {
  it('replaces only a trailing /callback segment', () => {
    expect(loginUrlFromRedirect('https://a.example.com/callbacks/callback')).toBe(
      'https://a.example.com/callbacks/login',
    );
    expect(loginUrlFromRedirect('https://a.example.com/callback/')).toBe('https://a.example.com/login');
  });
});

describe('Function: readLogLevel (trimming)', () => {
  it('trims the value', () => {
    expect(readLogLevel({ LOG_LEVEL: ' debug ' })).toBe('debug');
  });
});

describe('Function: readIntSetting (bounds)', () => {
  it('accepts both bounds and several digits', () => {
    expect(readIntSetting({ X: '10' }, 'X', 7, 1, 10)).toBe(10);
    expect(readIntSetting({ X: '1' }, 'X', 7, 1, 10)).toBe(1);
  });
  it('refuses a value below the minimum', () => {
    expect(() => readIntSetting({ X: '0' }, 'X', 7, 1, 10)).toThrow(
      new ConfigError('X must be a whole number between 1 and 10, got "0"'),
    );
  });
});

describe('Function: readPlaintextFieldPolicy', () => {
  it('accepts plaintext fields by default, so an upgrade signs nobody out', () => {
    expect(readPlaintextFieldPolicy({})).toBe('accept');
    expect(readPlaintextFieldPolicy({ FIELD_PLAINTEXT: ' ' })).toBe('accept');
  });

  it('reads FIELD_PLAINTEXT in any case', () => {
    expect(readPlaintextFieldPolicy({ FIELD_PLAINTEXT: 'Refuse' })).toBe('refuse');
    expect(readPlaintextFieldPolicy({ FIELD_PLAINTEXT: 'accept' })).toBe('accept');
  });

  it('refuses any other value, naming the variable and the choices', () => {
    expect(() => readPlaintextFieldPolicy({ FIELD_PLAINTEXT: 'strict' })).toThrow(ConfigError);
    expect(() => readPlaintextFieldPolicy({ FIELD_PLAINTEXT: 'strict' })).toThrow(
      'FIELD_PLAINTEXT must be one of accept, refuse, got "strict"',
    );
  });
});
