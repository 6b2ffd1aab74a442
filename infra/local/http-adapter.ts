/**
 * A small local stand-in for API Gateway HTTP API: turns a Node HTTP request into a payload 2.0
 * event, calls the same handler Lambda runs, and writes its structured result back. Only what the
 * broker's routes use is modelled (GET, query string, cookies, headers).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { HttpResult } from '../../functions/core/http';
import type { HttpHandler } from '../../functions/handlers';

/** Builds the event API Gateway would send for `req`. */
export function toEvent(req: IncomingMessage, routeKey: string): APIGatewayProxyEventV2 {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const cookies = req.headers.cookie
    ?.split(';')
    .map((c) => c.trim())
    .filter(Boolean);
  const query: Record<string, string> = {};
  // API Gateway joins repeated parameters with commas in queryStringParameters.
  for (const key of new Set(url.searchParams.keys())) query[key] = url.searchParams.getAll(key).join(',');
  const now = new Date();
  return {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    cookies,
    headers,
    queryStringParameters: Object.keys(query).length ? query : undefined,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'localhost',
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    isBase64Encoded: false,
  };
}

/** Writes a handler result the way API Gateway does (each cookie its own `Set-Cookie`). */
export function writeResult(res: ServerResponse, result: HttpResult): void {
  res.statusCode = result.statusCode;
  for (const [name, value] of Object.entries(result.headers)) res.setHeader(name, value);
  if (result.cookies?.length) res.setHeader('set-cookie', result.cookies);
  res.end(result.body);
}

/** A listener that answers 503 until {@link StartupGate.open} hands it the real one. */
export interface StartupGate {
  readonly listener: RequestListener;
  /** From now on every request goes to `listener`. */
  open(listener: RequestListener): void;
}

/**
 * The local server listens before its handlers exist (the port it got goes into `REDIRECT_URL`), so
 * a request that arrives meanwhile (a health poller, an early click) is answered at once with
 * `503 starting` and `Retry-After: 1` instead of being left without an answer.
 */
export function createStartupGate(): StartupGate {
  let ready: RequestListener | undefined;
  return {
    listener: (req, res) => {
      if (ready) return ready(req, res);
      // The body is not needed; drain it so the connection can be reused.
      req.resume();
      res
        .writeHead(503, {
          'content-type': 'text/plain; charset=utf-8',
          'retry-after': '1',
          'cache-control': 'no-store',
        })
        .end('starting');
    },
    open(listener) {
      ready = listener;
    },
  };
}

/**
 * A request listener routing `GET <path>` to handlers; anything else gets 404 or 405. A handler
 * that throws gets a plain 500, as API Gateway answers for a failed integration.
 */
export function createRouter(routes: Record<string, HttpHandler>): RequestListener {
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const handler = routes[path];
    if (!handler) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not Found');
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET' }).end('Method Not Allowed');
      return;
    }
    const fail = () => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('Internal Server Error');
    };
    // A result Node cannot write (an invalid header value) must answer 500, not crash the server.
    handler(toEvent(req, `GET ${path}`))
      .then((result) => writeResult(res, result))
      .catch(fail);
  };
}
