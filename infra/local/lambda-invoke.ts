/**
 * A local stand-in for the Lambda Invoke API, so a service on this machine can take the production
 * path against `npm start`: its reader refreshes through the broker's refresh function (the real
 * handler, built from the local stack's services) instead of holding the client secret. The AWS SDK's
 * Lambda client reaches it through `AWS_ENDPOINT_URL_LAMBDA` (`npm run tokens -- env` prints it).
 *
 * Only what the reader uses is modelled: `POST /2015-03-31/functions/{name}/invocations`,
 * synchronous (and dry-run) invocations, answers and errors shaped as Lambda's. It listens on
 * 127.0.0.1 only and does not check SigV4 signatures, but serves only requests signed with the
 * local stack's per-run access key id: another local process that does not know it gets the
 * 403 an unknown key gets from AWS.
 * @see https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

/** A function the stand-in can invoke: the handler Lambda would run. */
export type InvokableHandler = (event: unknown) => Promise<unknown>;

/** Options of {@link startLambdaInvoke}. */
export interface LambdaInvokeOptions {
  /** The functions by name. */
  readonly functions: Readonly<Record<string, InvokableHandler>>;
  /** Only requests whose SigV4 credential names this access key id are served. */
  readonly accessKeyId: string;
  /** For the ARNs in error messages. */
  readonly region: string;
  /**
   * Port on 127.0.0.1.
   * @default 0 - a free port chosen by the system
   */
  readonly port?: number;
  /** Receives a line per failed invocation (the error's name, never its payload). */
  readonly log?: (line: string) => void;
}

/** A running stand-in. */
export interface LambdaInvokeHandle {
  /** `http://127.0.0.1:PORT`: the value of `AWS_ENDPOINT_URL_LAMBDA`. */
  readonly endpoint: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Lambda's limit for a synchronous invocation's request payload. */
export const MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

/** A Lambda service error: status, `x-amzn-ErrorType` and a JSON body, as the SDK parses them. */
function sendError(res: ServerResponse, status: number, type: string, message: string): void {
  res
    .writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': type })
    .end(JSON.stringify({ Type: 'User', message }));
}

/** The access key id in a SigV4 `Authorization` header (`Credential=<key id>/<date>/...`). */
export function accessKeyIdOf(authorization: string | undefined): string | undefined {
  return /\bCredential=([^/,\s]+)\//.exec(authorization ?? '')?.[1];
}

function sameKey(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The function name and qualifier of a `FunctionName` path parameter: a name, `name:qualifier`, a
 * partial ARN (`<account>:function:<name>`) or a full ARN, as Lambda accepts them.
 */
export function parseFunctionName(raw: string): { name: string; qualifier?: string } {
  const parts = raw.split(':');
  const at = parts.indexOf('function');
  const [name, qualifier] = at >= 0 ? parts.slice(at + 1) : parts;
  return { name, qualifier };
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_PAYLOAD_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Starts the stand-in; resolves once it listens. */
export async function startLambdaInvoke(options: LambdaInvokeOptions): Promise<LambdaInvokeHandle> {
  const log = options.log ?? (() => undefined);
  const arn = (name: string) => `arn:aws:lambda:${options.region}:000000000000:function:${name}`;

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const match = INVOKE_PATH.exec(url.pathname);
      if (req.method !== 'POST' || !match) {
        return sendError(res, 404, 'UnknownOperationException', 'only Invoke is served here');
      }
      if (!sameKey(accessKeyIdOf(req.headers.authorization), options.accessKeyId)) {
        // What AWS answers for a key it does not know.
        return sendError(
          res,
          403,
          'UnrecognizedClientException',
          'The security token included in the request is invalid.',
        );
      }
      const { name, qualifier = url.searchParams.get('Qualifier') ?? undefined } = parseFunctionName(
        decodeURIComponent(match[1]),
      );
      const handler = Object.hasOwn(options.functions, name) ? options.functions[name] : undefined;
      if (!handler || (qualifier !== undefined && qualifier !== '$LATEST')) {
        return sendError(
          res,
          404,
          'ResourceNotFoundException',
          `Function not found: ${arn(name)}${qualifier ? `:${qualifier}` : ''}`,
        );
      }
      const body = await readBody(req);
      if (body === undefined) {
        return sendError(
          res,
          413,
          'RequestTooLargeException',
          `Request must be smaller than ${MAX_PAYLOAD_BYTES} bytes`,
        );
      }
      let event: unknown = {};
      if (body.length) {
        try {
          event = JSON.parse(body.toString('utf8'));
        } catch {
          return sendError(res, 400, 'InvalidRequestContentException', 'Could not parse request body into json');
        }
      }
      const type = req.headers['x-amz-invocation-type'] ?? 'RequestResponse';
      if (type === 'DryRun') return void res.writeHead(204).end();
      if (type !== 'RequestResponse') {
        return sendError(res, 400, 'InvalidParameterValueException', `unsupported invocation type "${type}"`);
      }
      const headers = { 'content-type': 'application/json', 'x-amz-executed-version': '$LATEST' };
      try {
        const result = await handler(event);
        res.writeHead(200, headers).end(JSON.stringify(result ?? null));
      } catch (error) {
        // A crash: Lambda answers 200 with X-Amz-Function-Error and the error's type and message.
        const { name: errorType = 'Error', message: errorMessage = '' } = (error ?? {}) as Error;
        log(`lambda ${name}: unhandled ${errorType}`);
        res
          .writeHead(200, { ...headers, 'x-amz-function-error': 'Unhandled' })
          .end(JSON.stringify({ errorType, errorMessage }));
      }
    })().catch(() => {
      if (!res.headersSent) sendError(res, 500, 'ServiceException', 'the local Lambda stand-in failed');
      else res.destroy();
    });
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(`LAMBDA_LOCAL_PORT ${options.port} is in use: set LAMBDA_LOCAL_PORT to another port (0 for any)`)
          : error,
      ),
    );
    // Loopback only: nothing beyond this machine can invoke the refresh function.
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
