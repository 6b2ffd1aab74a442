/**
 * The local stand-in for API Gateway: the events it builds must look like the real service's
 * (payload 2.0), or the handlers would be tested against something Lambda never sends.
 */
import { createServer, type Server } from 'node:http';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { createRouter } from '../../infra/local/http-adapter';

let server: Server;
let base: string;
let seen: APIGatewayProxyEventV2[];

beforeAll(async () => {
  seen = [];
  server = createServer(
    createRouter({
      '/echo': async (event) => {
        seen.push(event);
        return { statusCode: 200, headers: { 'content-type': 'text/plain' }, cookies: ['a=1', 'b=2'], body: 'ok' };
      },
      '/bad-header': async () => ({
        statusCode: 302,
        headers: { location: 'https://x.test/\r\nset-cookie: x=1' },
        body: '',
      }),
      '/throws': async () => {
        throw new Error('boom');
      },
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('Function: createRouter', () => {
  it('builds a payload 2.0 event: raw query string kept as sent, cookies split, route key set', async () => {
    const response = await fetch(`${base}/echo?code=a%2Bb&state=s&state=t`, { headers: { cookie: 'x=1; y=2' } });

    expect(response.status).toBe(200);
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    const event = seen[0];
    expect(event).toMatchObject({
      version: '2.0',
      routeKey: 'GET /echo',
      rawPath: '/echo',
      rawQueryString: 'code=a%2Bb&state=s&state=t',
      cookies: ['x=1', 'y=2'],
      // API Gateway joins repeated parameters with commas.
      queryStringParameters: { code: 'a+b', state: 's,t' },
    });
    expect(event.requestContext.http.method).toBe('GET');
    expect(event.requestContext.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers 404 for an unknown path and 405 for another method', async () => {
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    const post = await fetch(`${base}/echo`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
  });

  it('answers 500, and keeps serving, when a handler throws or returns a header Node cannot send', async () => {
    expect((await fetch(`${base}/throws`)).status).toBe(500);
    expect((await fetch(`${base}/bad-header`, { redirect: 'manual' })).status).toBe(500);
    expect((await fetch(`${base}/echo`)).status).toBe(200);
  });
});
