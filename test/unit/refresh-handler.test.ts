/**
 * The refresh function's input checks: it is invoked by other services, so a malformed request
 * gets a typed answer and touches nothing.
 */
type Handler = (event: unknown) => Promise<{ ok: boolean; code?: string }>;

function loadHandler(): Handler {
  let handler: Handler | undefined;
  jest.isolateModules(() => {
    process.env = {
      ...process.env,
      CLIENT_ID: 'c',
      CLIENT_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:x',
      OAUTH2_BASE_URL: 'https://api.kroger.com/v1/connect/oauth2',
      API_BASE_URL: 'https://api.kroger.com',
      REDIRECT_URL: 'https://broker.example.com/callback',
      TOKENS_TABLE: 'kroger-tokens',
      AWS_REGION: 'us-east-1',
    };
    handler = (require('../../functions/refresh') as { handler: Handler }).handler;
  });
  return handler!;
}

describe('Handler: refresh', () => {
  const saved = process.env;
  afterAll(() => {
    process.env = saved;
  });

  it.each([
    ['no event', null],
    ['no userId', {}],
    ['a numeric userId', { userId: 42 }],
    ['an empty userId', { userId: '' }],
    ['an oversized userId', { userId: 'u'.repeat(257) }],
    ['a negative margin', { userId: 'u', marginSeconds: -1 }],
    ['a margin over an hour', { userId: 'u', marginSeconds: 3601 }],
  ])('answers BAD_REQUEST for %s', async (_name, event) => {
    await expect(loadHandler()(event)).resolves.toMatchObject({ ok: false, code: 'BAD_REQUEST' });
  });
});
