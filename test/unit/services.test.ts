/**
 * The composition root and the handler factories: services are built once, from the environment
 * object given (never process.env implicitly), and a bad setting fails when the handler is created,
 * naming the variable.
 */
import { ConfigError } from '../../functions/core/errors';
import {
  createCallbackHandler,
  createLoginHandler,
  createRefreshFunctionHandler,
  createScheduledRefresherHandler,
} from '../../functions/handlers';
import { createServices, providerClient, sessionStore, tokenRefresher, tokenStore } from '../../functions/services';

const ENV = {
  CLIENT_ID: 'client',
  CLIENT_SECRET: 'secret',
  OAUTH2_BASE_URL: 'https://api.kroger.com/v1/connect/oauth2',
  API_BASE_URL: 'https://api.kroger.com',
  REDIRECT_URL: 'https://broker.example.com/callback',
  AWS_REGION: 'us-east-1',
  FIELD_KEY_ARN: 'arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555',
};

describe('Function: createServices', () => {
  it('builds each service once', () => {
    const services = createServices(ENV);
    expect(tokenStore(services)).toBe(tokenStore(services));
    expect(sessionStore(services)).toBe(sessionStore(services));
    expect(providerClient(services)).toBe(providerClient(services));
    expect(tokenRefresher(services)).toBe(tokenRefresher(services));
  });

  it('reads the environment object it is given, not process.env', () => {
    const services = createServices({ ...ENV, TOKENS_TABLE: 'from-the-object' });
    expect(services.storeConfig.tokensTable).toBe('from-the-object');
    expect(process.env.TOKENS_TABLE).toBeUndefined();
  });

  it('fails at once on a malformed store setting, naming it', () => {
    expect(() => createServices({ ...ENV, TOKENS_TABLE: 'x' })).toThrow(/TOKENS_TABLE must be a DynamoDB table name/);
  });
});

describe('Function: create*Handler', () => {
  it.each([
    ['login', createLoginHandler, 'CLIENT_ID'],
    ['callback', createCallbackHandler, 'REDIRECT_URL'],
    ['refresh function', createRefreshFunctionHandler, 'OAUTH2_BASE_URL'],
    ['scheduled refresher', createScheduledRefresherHandler, 'API_BASE_URL'],
  ] as const)('fails creating the %s handler without %s, naming it', (_name, create, missing) => {
    const env: Record<string, string> = { ...ENV };
    delete env[missing];
    expect(() => create(createServices(env))).toThrow(new ConfigError(`${missing} environment variable is not set`));
  });

  it.each([
    ['callback', createCallbackHandler],
    ['refresh function', createRefreshFunctionHandler],
    ['scheduled refresher', createScheduledRefresherHandler],
  ] as const)('fails creating the %s handler without a client secret setting', (_name, create) => {
    const { CLIENT_SECRET: _secret, ...env } = ENV;
    expect(() => create(createServices(env))).toThrow(/CLIENT_SECRET environment variable is not set/);
  });

  it('creates the login handler without any client secret setting: it never needs the secret', () => {
    const { CLIENT_SECRET: _secret, ...env } = ENV;
    expect(typeof createLoginHandler(createServices(env))).toBe('function');
  });

  it('refuses a scheduled refresher window outside its range, naming the variable', () => {
    expect(() => createScheduledRefresherHandler(createServices({ ...ENV, REFRESH_WINDOW_SECONDS: '0' }))).toThrow(
      /REFRESH_WINDOW_SECONDS must be a whole number between 1 and 86400/,
    );
  });
});
