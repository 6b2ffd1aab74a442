/** API Gateway HTTP API (payload 2.0) events as the real service sends them, for handler tests. */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';

export function getEvent(path: string, rawQueryString = '', cookies?: string[]): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: `GET ${path}`,
    rawPath: path,
    rawQueryString,
    cookies,
    headers: { host: 'broker.test' },
    requestContext: {
      accountId: 'test',
      apiId: 'test',
      domainName: 'broker.test',
      domainPrefix: 'broker',
      http: { method: 'GET', path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'jest' },
      requestId: 'req-1',
      routeKey: `GET ${path}`,
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
    isBase64Encoded: false,
  };
}

/** The `name=value` part of a Set-Cookie value, as a browser would send it back. */
export function cookiePair(setCookie: string | undefined): string {
  if (!setCookie) throw new Error('no Set-Cookie in the response');
  return setCookie.split(';')[0];
}
