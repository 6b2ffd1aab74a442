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

describe('Method: metrics', () => {
  it('writes the EMF metadata intact, whatever its depth, even when the level would drop info', () => {
    const { logger, lines } = capture('error');
    const aws = {
      Timestamp: 0,
      CloudWatchMetrics: [{ Namespace: 'N', Dimensions: [['function']], Metrics: [{ Name: 'due', Unit: 'Count' }] }],
    };

    logger.child({ function: 'f' }).metrics('run', { due: 3, _aws: aws });

    expect(JSON.parse(lines[0])).toMatchObject({ level: 'INFO', message: 'run', due: 3, function: 'f', _aws: aws });
  });

  it('still redacts credential-shaped fields beside the metrics', () => {
    const { logger, lines } = capture();
    logger.metrics('run', { accessToken: 'AT-SECRET', _aws: {} });
    expect(lines[0]).not.toContain('AT-SECRET');
  });

  it('does not let an ordinary entry smuggle an _aws block', () => {
    const { logger, lines } = capture();
    logger.info('x', { _aws: { CloudWatchMetrics: [] } });
    expect(JSON.parse(lines[0])._aws).toBeUndefined();
  });
});
