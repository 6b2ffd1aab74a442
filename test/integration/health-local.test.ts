/**
 * `GET /health` on the local stack (`npm start`), over real HTTP: the same handler as in Lambda,
 * reporting the package.json version, beside /login and /callback. The stack runs against the shared
 * DynamoDB Local with a provider URL nothing listens on: /health needs neither.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLocalStack, type LocalStack } from '../../infra/local/stack';

const VERSION: string = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')).version;

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({
    PORT: '0',
    DYNAMODB_ENDPOINT: process.env.DYNAMODB_ENDPOINT,
    TOKENS_TABLE: 'health-local-tokens',
    SESSIONS_TABLE: 'health-local-sessions',
    // A provider is configured (so no sandbox starts), and never called by /health.
    OAUTH2_BASE_URL: 'http://127.0.0.1:9/v1/connect/oauth2',
    CLIENT_ID: 'health-local',
    CLIENT_SECRET: 'health-local-secret',
    REFRESH_SCHEDULE_SECONDS: '0',
    LOG_LEVEL: 'error',
  });
});

afterAll(async () => {
  await stack?.stop();
});

describe('Local stack: GET /health', () => {
  it('answers 200 with status ok and the package.json version', async () => {
    const response = await fetch(`${stack.baseUrl}/health`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.json()).toEqual({ status: 'ok', version: VERSION });
  });

  it('answers only GET, as API Gateway routes only GET /health', async () => {
    const response = await fetch(`${stack.baseUrl}/health`, { method: 'POST' });
    expect(response.status).toBe(405);
  });

  it('takes BROKER_VERSION from the environment when one is given', async () => {
    const other = await startLocalStack({
      ...stack.env,
      PORT: '0',
      REDIRECT_URL: '',
      BROKER_VERSION: '9.9.9-local',
      CLIENT_SECRET: 'health-local-secret',
    });
    try {
      expect(await (await fetch(`${other.baseUrl}/health`)).json()).toEqual({ status: 'ok', version: '9.9.9-local' });
    } finally {
      await other.stop();
    }
  });
});
