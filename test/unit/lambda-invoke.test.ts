/**
 * The local stand-in of the Lambda Invoke API, driven by the real AWS SDK Lambda client: what it
 * answers, how the SDK reads it, and who may invoke.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  accessKeyIdOf,
  type InvokableHandler,
  type LambdaInvokeHandle,
  parseFunctionName,
  startLambdaInvoke,
} from '../../infra/local/lambda-invoke';

const KEY = { accessKeyId: 'LOCALTESTKEY0001', secretAccessKey: 'local-test-secret' };
let standIn: LambdaInvokeHandle;
const received: unknown[] = [];
const logged: string[] = [];

const functions: Record<string, InvokableHandler> = {
  echo: async (event) => {
    received.push(event);
    return { ok: true, expiresAt: 1234 };
  },
  crash: async () => {
    throw new TypeError('boom');
  },
};

function client(credentials = KEY): LambdaClient {
  return new LambdaClient({ region: 'us-east-1', endpoint: standIn.endpoint, credentials, maxAttempts: 1 });
}

async function invoke(functionName: string, payload: unknown = {}, credentials = KEY) {
  const c = client(credentials);
  try {
    return await c.send(new InvokeCommand({ FunctionName: functionName, Payload: JSON.stringify(payload) }));
  } finally {
    c.destroy();
  }
}

beforeAll(async () => {
  standIn = await startLambdaInvoke({
    functions,
    accessKeyId: KEY.accessKeyId,
    region: 'us-east-1',
    log: (line) => logged.push(line),
  });
});

afterAll(() => standIn.stop());

beforeEach(() => {
  received.length = 0;
  logged.length = 0;
});

describe('Function: startLambdaInvoke', () => {
  it('listens on loopback only', () => {
    expect(standIn.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('runs the handler with the JSON payload and answers its result as the payload', async () => {
    const out = await invoke('echo', { userId: 'u1', marginSeconds: 60 });

    expect(out.StatusCode).toBe(200);
    expect(out.FunctionError).toBeUndefined();
    expect(out.ExecutedVersion).toBe('$LATEST');
    expect(JSON.parse(new TextDecoder().decode(out.Payload))).toEqual({ ok: true, expiresAt: 1234 });
    expect(received).toEqual([{ userId: 'u1', marginSeconds: 60 }]);
  });

  it('accepts the function by ARN and with the $LATEST qualifier', async () => {
    await invoke('arn:aws:lambda:us-east-1:123456789012:function:echo');
    await invoke('echo:$LATEST');
    expect(received).toHaveLength(2);
  });

  it('answers a crash as Lambda does: 200 with X-Amz-Function-Error and the error type', async () => {
    const out = await invoke('crash');

    expect(out.StatusCode).toBe(200);
    expect(out.FunctionError).toBe('Unhandled');
    expect(JSON.parse(new TextDecoder().decode(out.Payload))).toEqual({ errorType: 'TypeError', errorMessage: 'boom' });
    expect(logged).toEqual(['lambda crash: unhandled TypeError']);
  });

  it('answers an unknown function with ResourceNotFoundException, running nothing', async () => {
    await expect(invoke('nope')).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
      $metadata: { httpStatusCode: 404 },
      message: 'Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope',
    });
    expect(received).toEqual([]);
  });

  it('answers another version than $LATEST with ResourceNotFoundException', async () => {
    await expect(invoke('echo:7')).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    expect(received).toEqual([]);
  });

  it('refuses a request signed with another access key id, as AWS refuses an unknown key', async () => {
    await expect(invoke('echo', {}, { ...KEY, accessKeyId: 'SOMEONEELSE' })).rejects.toMatchObject({
      name: 'UnrecognizedClientException',
      $metadata: { httpStatusCode: 403 },
    });
    expect(received).toEqual([]);
  });

  it('refuses an unsigned request', async () => {
    const res = await fetch(`${standIn.endpoint}/2015-03-31/functions/echo/invocations`, {
      method: 'POST',
      body: '{}',
    });
    expect(res.status).toBe(403);
    expect(res.headers.get('x-amzn-errortype')).toBe('UnrecognizedClientException');
    expect(received).toEqual([]);
  });

  it('answers a payload that is not JSON with InvalidRequestContentException', async () => {
    const c = client();
    try {
      await expect(
        c.send(new InvokeCommand({ FunctionName: 'echo', Payload: new TextEncoder().encode('{not json') })),
      ).rejects.toMatchObject({ name: 'InvalidRequestContentException', $metadata: { httpStatusCode: 400 } });
    } finally {
      c.destroy();
    }
    expect(received).toEqual([]);
  });

  it('answers a dry run with 204 without running the handler', async () => {
    const c = client();
    try {
      const out = await c.send(new InvokeCommand({ FunctionName: 'echo', InvocationType: 'DryRun' }));
      expect(out.StatusCode).toBe(204);
    } finally {
      c.destroy();
    }
    expect(received).toEqual([]);
  });

  it('answers other operations with 404', async () => {
    const res = await fetch(`${standIn.endpoint}/2015-03-31/functions/echo`, { method: 'GET' });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-amzn-errortype')).toBe('UnknownOperationException');
  });

  it('is reached by a Lambda client configured only through AWS_ENDPOINT_URL_LAMBDA', async () => {
    // What a service's own SDK client does with the variable `tokens env` prints.
    const saved = process.env.AWS_ENDPOINT_URL_LAMBDA;
    process.env.AWS_ENDPOINT_URL_LAMBDA = standIn.endpoint;
    const c = new LambdaClient({ region: 'us-east-1', credentials: KEY, maxAttempts: 1 });
    try {
      const out = await c.send(new InvokeCommand({ FunctionName: 'echo', Payload: '{"userId":"env"}' }));
      expect(out.StatusCode).toBe(200);
      expect(received).toEqual([{ userId: 'env' }]);
    } finally {
      c.destroy();
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_LAMBDA;
      else process.env.AWS_ENDPOINT_URL_LAMBDA = saved;
    }
  });
});

describe('Function: accessKeyIdOf', () => {
  it('reads the key id of a SigV4 Authorization header', () => {
    expect(
      accessKeyIdOf(
        'AWS4-HMAC-SHA256 Credential=LOCALABC/20261127/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00',
      ),
    ).toBe('LOCALABC');
  });

  it('reads nothing from a missing or other header', () => {
    expect(accessKeyIdOf(undefined)).toBeUndefined();
    expect(accessKeyIdOf('Bearer LOCALABC')).toBeUndefined();
  });
});

describe('Function: parseFunctionName', () => {
  it.each([
    ['echo', { name: 'echo', qualifier: undefined }],
    ['echo:$LATEST', { name: 'echo', qualifier: '$LATEST' }],
    ['123456789012:function:echo', { name: 'echo', qualifier: undefined }],
    ['arn:aws:lambda:eu-west-1:123456789012:function:echo:live', { name: 'echo', qualifier: 'live' }],
  ])('reads %s', (raw, expected) => {
    expect(parseFunctionName(raw)).toEqual(expected);
  });
});
