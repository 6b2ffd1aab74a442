/**
 * `GET /health` (issue 14): a fixed JSON answer with the broker version, built once at init from the
 * login function's configuration; no table, no secret, nothing but status and version in the body.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { ConfigError } from '../../functions/core/errors';
import { healthResult, readBrokerVersion } from '../../functions/core/health';
import { createHealthHandler, createLoginFunctionHandler } from '../../functions/handlers';
import { createServices } from '../../functions/services';
import { captureLogger } from '../support/logs';
import { createTestFieldKey } from '../support/stores';

const ENV = {
  CLIENT_ID: 'client-id-value',
  CLIENT_SECRET: 'secret-value-never-shown',
  OAUTH2_BASE_URL: 'https://api.kroger.com/v1/connect/oauth2',
  API_BASE_URL: 'https://api.kroger.com',
  REDIRECT_URL: 'https://broker.example.com/callback',
  AWS_REGION: 'us-east-1',
  // Nothing listens on port 9: a handler that touched DynamoDB would fail.
  DYNAMODB_ENDPOINT: 'http://127.0.0.1:9',
  BROKER_VERSION: '1.4.2',
  // The login flow encrypts the code verifier it stores (a local key stands in for KMS).
  FIELD_KEY_FILE: createTestFieldKey('health').file,
};

const event = (routeKey: string) =>
  ({
    routeKey,
    rawPath: routeKey.split(' ')[1],
    rawQueryString: '',
    headers: {},
    requestContext: { requestId: 'r1', http: { method: 'GET' } },
  }) as unknown as APIGatewayProxyEventV2;

describe('Function: readBrokerVersion', () => {
  it('reads BROKER_VERSION', () => {
    expect(readBrokerVersion({ BROKER_VERSION: '0.2.0-rc.1+build.5' })).toBe('0.2.0-rc.1+build.5');
  });

  it('answers "unknown" when it is not set: the version informs, it does not gate the start', () => {
    expect(readBrokerVersion({})).toBe('unknown');
    expect(readBrokerVersion({ BROKER_VERSION: '  ' })).toBe('unknown');
  });

  it.each(['1.0 beta', '<script>', 'v'.repeat(65)])('throws a ConfigError naming BROKER_VERSION for %j', (value) => {
    expect(() => readBrokerVersion({ BROKER_VERSION: value })).toThrow(ConfigError);
    expect(() => readBrokerVersion({ BROKER_VERSION: value })).toThrow(/^BROKER_VERSION must be a version/);
  });
});

describe('Function: healthResult', () => {
  it('is a 200 JSON body with exactly status and version, never cached', () => {
    const result = healthResult('1.4.2');
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body)).toEqual({ status: 'ok', version: '1.4.2' });
    expect(result.headers).toMatchObject({
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    expect(result.cookies).toBeUndefined();
  });
});

describe('Function: createHealthHandler', () => {
  it('answers every call from memory, without DynamoDB or the secret', async () => {
    const health = createHealthHandler(createServices(ENV));
    for (let i = 0; i < 3; i++) {
      const result = await health(event('GET /health'));
      expect(JSON.parse(result.body)).toEqual({ status: 'ok', version: '1.4.2' });
    }
  });

  it('puts no configuration value in the answer', async () => {
    const result = await createHealthHandler(createServices(ENV))(event('GET /health'));
    for (const value of [ENV.CLIENT_ID, ENV.CLIENT_SECRET, ENV.REDIRECT_URL, ENV.DYNAMODB_ENDPOINT]) {
      expect(JSON.stringify(result)).not.toContain(value);
    }
  });
});

describe('Function: createLoginFunctionHandler', () => {
  it('answers GET /health from the login function without touching the sessions table', async () => {
    const log = captureLogger();
    const handler = createLoginFunctionHandler(createServices(ENV, { logger: log.logger }));
    const result = await handler(event('GET /health'));
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body)).toEqual({ status: 'ok', version: '1.4.2' });
    expect(log.lines).toEqual([]);
  });

  it('sends every other route to the login flow (which needs the table: here unreachable, so a 500 page)', async () => {
    const log = captureLogger();
    const handler = createLoginFunctionHandler(createServices(ENV, { logger: log.logger }));
    const result = await handler(event('GET /login'));
    expect(result.statusCode).toBe(500);
    expect(result.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(log.text()).toContain('"route":"login"');
  });

  it('cannot be created with a bad login configuration: /health never says ok for a broken /login', () => {
    const env: Record<string, string> = { ...ENV };
    delete env.CLIENT_ID;
    expect(() => createLoginFunctionHandler(createServices(env))).toThrow(
      new ConfigError('CLIENT_ID environment variable is not set'),
    );
  });
});
