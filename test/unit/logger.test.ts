import { createLogger, describeError } from '../../functions/adapters/logger';

function capture(level?: string) {
  const lines: string[] = [];
  const logger = createLogger({ level, write: (l) => lines.push(l), now: () => new Date(0) });
  return { logger, lines };
}

describe('Function: createLogger', () => {
  it('writes one JSON line with level, message and fields', () => {
    const { logger, lines } = capture();
    logger.child({ requestId: 'r1' }).info('hello', { userId: 'u1' });
    expect(JSON.parse(lines[0])).toEqual({
      level: 'INFO',
      timestamp: '1970-01-01T00:00:00.000Z',
      message: 'hello',
      requestId: 'r1',
      userId: 'u1',
    });
  });

  it('redacts credential-shaped keys at any depth', () => {
    const { logger, lines } = capture();
    logger.info('x', {
      accessToken: 'AT-SECRET',
      nested: { refresh_token: 'RT-SECRET', client_secret: 'CS', code: 'CODE-SECRET', codeVerifier: 'V' },
      headers: { Authorization: 'Basic abc', cookie: 'kb=1' },
    });
    expect(lines[0]).not.toMatch(/AT-SECRET|RT-SECRET|CS"|CODE-SECRET|"V"|Basic abc|kb=1/);
    expect(lines[0]).toContain('[redacted]');
  });

  it('drops entries below the level', () => {
    const { logger, lines } = capture('warn');
    logger.info('quiet');
    logger.warn('loud');
    expect(lines.map((l) => JSON.parse(l).message)).toEqual(['loud']);
  });
});

describe('Function: describeError', () => {
  it('keeps name, code and message but never arbitrary properties such as a response body', () => {
    const error = Object.assign(new Error('boom', { cause: { body: { access_token: 'AT' } } }), {
      code: 'X_CODE',
      body: 'AT',
    });
    const described = JSON.stringify(describeError(error));
    expect(described).toContain('X_CODE');
    expect(described).not.toContain('AT"');
  });
});
