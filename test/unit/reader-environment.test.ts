/**
 * The published reader's environment: one ConfigError naming every missing variable and where to get
 * it, and the Lambda client settings for AWS and for the local stand-in.
 */
import { ConfigError } from '../../functions/core/errors';
import { createTokenReader } from '../../functions/reader/published';
import { lambdaClientSettings, requireReaderEnvironment } from '../../functions/reader/remote';

const AWS = { TOKENS_TABLE: 'tokens', REFRESH_FUNCTION_NAME: 'refresh', AWS_REGION: 'eu-west-1' };
const LOCAL = {
  ...AWS,
  DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000',
  AWS_ENDPOINT_URL_LAMBDA: 'http://127.0.0.1:9001',
  AWS_ACCESS_KEY_ID: 'LOCALKEY',
  AWS_SECRET_ACCESS_KEY: 'local-secret',
};

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('Function: requireReaderEnvironment', () => {
  it('accepts what addTokenReader sets in Lambda', () => {
    expect(() => requireReaderEnvironment({ ...AWS, AWS_LAMBDA_FUNCTION_NAME: 'cart' })).not.toThrow();
  });

  it('accepts what tokens env prints', () => {
    expect(() => requireReaderEnvironment(LOCAL)).not.toThrow();
  });

  it('names every missing variable in one error, with both ways to get them outside Lambda', () => {
    const error = configError(() => requireReaderEnvironment({}));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toMatch(
      /^the token reader's environment is incomplete: TOKENS_TABLE, REFRESH_FUNCTION_NAME, AWS_REGION are not set; /,
    );
    expect(error.message).toContain('broker.addTokenReader(fn)');
    expect(error.message).toContain('broker.grantReadTokens(role) plus broker.readerEnvironment');
    expect(error.message).toContain('eval "$(npm run --silent tokens -- env)"');
  });

  it('in Lambda, gives only the construct as the way to get them', () => {
    const error = configError(() =>
      requireReaderEnvironment({ AWS_REGION: 'eu-west-1', AWS_LAMBDA_FUNCTION_NAME: 'cart' }),
    );
    expect(error.message).toContain('TOKENS_TABLE, REFRESH_FUNCTION_NAME are not set');
    expect(error.message).toContain('broker.addTokenReader(fn)');
    expect(error.message).not.toContain('tokens -- env');
  });

  it('accepts AWS_DEFAULT_REGION for the region', () => {
    expect(() =>
      requireReaderEnvironment({ TOKENS_TABLE: 't-1', REFRESH_FUNCTION_NAME: 'r', AWS_DEFAULT_REGION: 'eu-west-1' }),
    ).not.toThrow();
  });

  it('locally, requires the stand-in and the local credentials, and points at tokens env only', () => {
    const error = configError(() => requireReaderEnvironment({ ...AWS, DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000' }));
    expect(error.message).toContain('AWS_ENDPOINT_URL_LAMBDA, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY are not set');
    expect(error.message).toContain('tokens -- env');
    expect(error.message).not.toContain('addTokenReader');
  });

  it('needs no function or stand-in when a refresh invoker is injected', () => {
    expect(() => requireReaderEnvironment({ TOKENS_TABLE: 't-1', AWS_REGION: 'eu-west-1' }, true)).not.toThrow();
    expect(() =>
      requireReaderEnvironment(
        { TOKENS_TABLE: 't-1', AWS_REGION: 'eu-west-1', DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000' },
        true,
      ),
    ).not.toThrow();
  });

  it('counts a blank value as missing', () => {
    const error = configError(() => requireReaderEnvironment({ ...AWS, TOKENS_TABLE: '  ' }));
    expect(error.message).toContain(': TOKENS_TABLE is not set;');
  });
});

describe('Function: lambdaClientSettings', () => {
  it('leaves endpoint and credentials to the SDK in AWS', () => {
    expect(lambdaClientSettings(AWS)).toEqual({ region: 'eu-west-1' });
  });

  it('points at the stand-in with the local credentials locally', () => {
    expect(lambdaClientSettings(LOCAL)).toEqual({
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:9001/',
      credentials: { accessKeyId: 'LOCALKEY', secretAccessKey: 'local-secret' },
    });
  });

  it('refuses a plain-http stand-in that is not on loopback', () => {
    const error = configError(() =>
      lambdaClientSettings({ ...LOCAL, AWS_ENDPOINT_URL_LAMBDA: 'http://lambda.example.com:9001' }),
    );
    expect(error.message).toMatch(/^AWS_ENDPOINT_URL_LAMBDA must use https/);
  });
});

describe('Function: createTokenReader (published)', () => {
  it('fails at creation, not at the first read, when the environment is incomplete', () => {
    const error = configError(() => createTokenReader({ env: { AWS_REGION: 'eu-west-1' } }));
    expect(error.message).toContain('TOKENS_TABLE, REFRESH_FUNCTION_NAME are not set');
  });

  it('never falls back to the in-process mode, even with the client secret and provider settings', () => {
    const error = configError(() =>
      createTokenReader({
        env: {
          AWS_REGION: 'eu-west-1',
          TOKENS_TABLE: 'tokens',
          CLIENT_ID: 'c',
          CLIENT_SECRET: 's',
          OAUTH2_BASE_URL: 'https://api.kroger.com/v1/connect/oauth2',
          API_BASE_URL: 'https://api.kroger.com',
          REDIRECT_URL: 'https://broker.example.com/callback',
        },
      }),
    );
    expect(error.message).toContain(': REFRESH_FUNCTION_NAME is not set;');
  });
});
