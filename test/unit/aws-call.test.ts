/**
 * The one seam every AWS call goes through (`adapters/aws-call.ts`) and the DynamoDB view the stores
 * use (`storeClient`): which SDK failures are a dependency's temporary unavailability (typed,
 * retryable) and which are left alone, and that no call outlives its limit or the request's
 * deadline. SDK errors are built as the SDK builds them (name, `$metadata`, `$retryable`, network
 * `code`); the same faults through real DynamoDB Local are in test/integration/faults.test.ts.
 */
import { ConditionalCheckFailedException, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { callAws, classifyAwsError, gateAttempts, hasAttemptGate } from '../../functions/adapters/aws-call';
import { limitMs, withDeadline } from '../../functions/adapters/deadline';
import { createDynamoClient, storeClient } from '../../functions/adapters/dynamo';
import { StoreUnavailableError } from '../../functions/core/errors';

/** An error shaped like the SDK's service exceptions. */
function sdkError(name: string, status?: number, extra: object = {}): Error {
  return Object.assign(new Error(`${name}: details that may quote a request`), {
    name,
    ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }),
    ...extra,
  });
}

/** A network error as Node raises it. */
const networkError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:8000`), { code });

describe('Function: classifyAwsError', () => {
  it.each([
    ['ProvisionedThroughputExceededException', 400],
    ['ThrottlingException', 400],
    ['RequestLimitExceeded', 400],
    ['TooManyRequestsException', 429],
    ['LimitExceededException', 400],
  ])('calls %s (%i) throttling, nothing landed, try again in 1 s', (name, status) => {
    expect(classifyAwsError(sdkError(name, status))).toEqual({
      throttled: true,
      outcomeUnknown: false,
      name,
      retryAfterSeconds: 1,
    });
  });

  it('calls a throttling after several attempts of unknown outcome: an earlier attempt may have timed out after it landed', () => {
    const error = sdkError('ProvisionedThroughputExceededException', 400, {
      $metadata: { httpStatusCode: 400, attempts: 3 },
    });
    expect(classifyAwsError(error)).toMatchObject({ throttled: true, outcomeUnknown: true });
    expect(classifyAwsError(sdkError('ThrottlingException', 400, { $metadata: { attempts: 1 } }))).toMatchObject({
      outcomeUnknown: false,
    });
  });

  it('calls any 429 throttling, whatever its name', () => {
    expect(classifyAwsError(sdkError('SomethingNew', 429))).toMatchObject({ throttled: true });
  });

  it.each([
    ['InternalServerError', 500],
    ['ServiceUnavailable', 503],
    ['KMSInternalException', 500],
    ['DependencyTimeoutException', 400],
    ['ServiceException', 500],
    ['AnythingElse', 502],
  ])('calls %s (%i) a failing service whose write may have landed', (name, status) => {
    expect(classifyAwsError(sdkError(name, status))).toEqual({ throttled: false, outcomeUnknown: true, name });
  });

  it.each(['TimeoutError', 'RequestTimeout', 'AbortError'])(
    'calls %s a timeout whose write may have landed',
    (name) => {
      expect(classifyAwsError(sdkError(name))).toEqual({ throttled: false, outcomeUnknown: true, name });
    },
  );

  it.each(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN'])('calls %s unreachable: nothing was sent', (code) => {
    expect(classifyAwsError(networkError(code))).toEqual({ throttled: false, outcomeUnknown: false, name: code });
  });

  it.each(['ECONNRESET', 'EPIPE', 'ETIMEDOUT'])('calls %s a lost connection: the request may have landed', (code) => {
    expect(classifyAwsError(networkError(code))).toEqual({ throttled: false, outcomeUnknown: true, name: code });
  });

  it('calls an answer the SDK marked retryable but could not read a failure of unknown outcome', () => {
    expect(classifyAwsError(sdkError('Error', undefined, { $retryable: {} }))).toMatchObject({ outcomeUnknown: true });
  });

  it.each([
    ['ConditionalCheckFailedException', 400],
    ['ValidationException', 400],
    ['AccessDeniedException', 400],
    ['ResourceNotFoundException', 400],
    ['DisabledException', 400],
    ['UnrecognizedClientException', 400],
  ])('leaves %s alone: not a temporary unavailability', (name, status) => {
    expect(classifyAwsError(sdkError(name, status))).toBeUndefined();
  });

  it("reads the name back from the SDK's wrapper of an error from another realm (a socket hang-up under jest)", () => {
    const wrapped = new Error('AWS SDK error wrapper for TimeoutError: socket hang up');
    expect(classifyAwsError(wrapped)).toEqual({ throttled: false, outcomeUnknown: true, name: 'TimeoutError' });
  });

  it('leaves what is not an Error alone', () => {
    expect(classifyAwsError('ThrottlingException')).toBeUndefined();
    expect(classifyAwsError(undefined)).toBeUndefined();
  });
});

describe('Function: callAws', () => {
  const typed = (fault: { name: string; outcomeUnknown: boolean }) =>
    Object.assign(new Error(`typed ${fault.name}`), { fault });

  it('returns what the call answers and passes it an abort signal that is not aborted', async () => {
    let seen: AbortSignal | undefined;
    const out = await callAws(
      1000,
      async ({ abortSignal }) => {
        seen = abortSignal;
        return 'answer';
      },
      typed,
    );
    expect(out).toBe('answer');
    expect(seen?.aborted).toBe(false);
  });

  it("turns a fault into the dependency's typed error, keeping the SDK's error as the cause", async () => {
    const cause = sdkError('ThrottlingException', 400);
    const error = await callAws(
      1000,
      async () => {
        throw cause;
      },
      (fault, c) => Object.assign(new Error('typed'), { fault, c }),
    ).catch((e: unknown) => e);
    expect(error).toMatchObject({ message: 'typed', fault: { throttled: true }, c: cause });
  });

  it('rethrows anything that is not a fault as it came', async () => {
    const refused = new ConditionalCheckFailedException({ message: 'no', $metadata: {} });
    await expect(
      callAws(
        1000,
        async () => {
          throw refused;
        },
        typed,
      ),
    ).rejects.toBe(refused);
  });

  it('gives up at its limit, aborts the SDK work (so nothing is sent late) and calls it a timeout of unknown outcome', async () => {
    let signal: AbortSignal | undefined;
    const started = Date.now();
    const error = await callAws(
      50,
      ({ abortSignal }) => {
        signal = abortSignal;
        return new Promise(() => undefined);
      },
      typed,
    ).catch((e: unknown) => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(signal?.aborted).toBe(true);
    expect(error).toMatchObject({ fault: { name: 'TimeoutError', outcomeUnknown: true } });
  });

  it('is cut to what is left of the request deadline, and sends nothing once it has passed', async () => {
    const send = jest.fn(async () => 'sent');
    const error = await withDeadline(Date.now() - 1, () => callAws(10_000, send, typed)).catch((e: unknown) => e);
    expect(send).not.toHaveBeenCalled();
    expect(error).toMatchObject({ fault: { outcomeUnknown: false } });

    const started = Date.now();
    await withDeadline(Date.now() + 40, () => callAws(10_000, () => new Promise(() => undefined), typed)).catch(
      () => undefined,
    );
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('Function: limitMs', () => {
  it('is the call’s own limit outside a deadline, and the smaller of the two inside one', async () => {
    expect(limitMs(3000, 1_000)).toBe(3000);
    await withDeadline(10_000, async () => {
      expect(limitMs(3000, 1_000)).toBe(3000);
      expect(limitMs(3000, 8_000)).toBe(2000);
      expect(limitMs(3000, 12_000)).toBe(0);
    });
  });

  it('keeps each request’s deadline to itself across concurrent requests', async () => {
    const seen = await Promise.all([
      withDeadline(5_000, async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return limitMs(60_000, 0);
      }),
      withDeadline(9_000, async () => limitMs(60_000, 0)),
    ]);
    expect(seen).toEqual([5_000, 9_000]);
  });
});

describe('Function: storeClient', () => {
  it('turns a throttled DynamoDB call into StoreUnavailableError naming the operation, retryable', async () => {
    const client = { send: jest.fn().mockRejectedValue(sdkError('ProvisionedThroughputExceededException', 400)) };
    const error = await storeClient(client as never)
      .send(new GetItemCommand({ TableName: 't', Key: { id: { S: 'u' } } }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error).toMatchObject({
      code: 'STORE_UNAVAILABLE',
      dependency: 'dynamodb',
      operation: 'GetItem',
      retryable: true,
      retryAfterSeconds: 1,
      outcomeUnknown: false,
      message: 'DynamoDB GetItem failed: throttled (ProvisionedThroughputExceededException)',
    });
  });

  it('says a write that timed out may have landed', async () => {
    const client = { send: jest.fn().mockRejectedValue(sdkError('TimeoutError')) };
    const error = await storeClient(client as never)
      .send(new UpdateItemCommand({ TableName: 't', Key: { id: { S: 'u' } } }))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ operation: 'UpdateItem', outcomeUnknown: true, retryable: true });
  });

  it('leaves a refused condition as the SDK raised it, for the store to read', async () => {
    const refused = new ConditionalCheckFailedException({ message: 'no', $metadata: {} });
    const client = { send: jest.fn().mockRejectedValue(refused) };
    await expect(
      storeClient(client as never).send(new GetItemCommand({ TableName: 't', Key: { id: { S: 'u' } } })),
    ).rejects.toBe(refused);
  });

  it("passes the caller's options on with its own abort signal, and keeps them", async () => {
    const client = { send: jest.fn().mockResolvedValue({ Item: undefined }) };
    await storeClient(client as never).send(new GetItemCommand({ TableName: 't', Key: { id: { S: 'u' } } }), {
      requestTimeout: 5,
    } as never);
    const options = client.send.mock.calls[0][1] as { abortSignal: AbortSignal; requestTimeout: number };
    expect(options.requestTimeout).toBe(5);
    expect(options.abortSignal).toBeInstanceOf(AbortSignal);
  });
});

describe('Function: gateAttempts', () => {
  /** A DynamoDB client whose every request is answered "throttled", counting what reaches the wire. */
  function throttledClient() {
    const sent: number[] = [];
    const requestHandler = {
      handle: async () => {
        sent.push(Date.now());
        return {
          response: {
            statusCode: 400,
            headers: { 'content-type': 'application/x-amz-json-1.0' },
            body: Buffer.from(
              JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException' }),
            ),
          },
        };
      },
    };
    const client = new DynamoDBClient({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      maxAttempts: 5,
      retryMode: 'standard',
      cacheMiddleware: true,
      requestHandler,
    });
    return { client, sent };
  }

  it('sends no attempt after the call gave up: the SDK’s retry after back-off is refused before the wire', async () => {
    const { client, sent } = throttledClient();
    gateAttempts(client);

    // A call that passes no abort signal in its send options (what keeps the SDK's middleware cache),
    // limited to 30 ms: the throttling back-off before the SDK's retry is up to 1 s.
    const limited = await callAws(
      30,
      () => client.send(new GetItemCommand({ TableName: 't', Key: { id: { S: 'u' } } })),
      (fault, cause) => Object.assign(new Error('typed'), { fault, cause }),
    ).catch((e: unknown) => e);
    const sentByLimited = sent.length;
    // Standard retries come back within 1 s after a throttle (up to 1 s of back-off): wait past that.
    await new Promise((resolve) => setTimeout(resolve, 1500));

    expect(limited).toMatchObject({ fault: { name: 'TimeoutError', outcomeUnknown: true } });
    // Nothing more reached the wire after the limited call gave up, though the SDK had retries left.
    expect(sent.length).toBe(sentByLimited);
    client.destroy();
  });

  it('marks the broker’s own clients, so their store calls keep the SDK’s middleware cache (no send options)', async () => {
    const own = createDynamoClient({
      region: 'us-east-1',
      tokensTable: 't',
      sessionsTable: 's',
      endpoint: 'http://127.0.0.1:9',
    });
    expect(hasAttemptGate(own)).toBe(true);
    expect(hasAttemptGate(new DynamoDBClient({ region: 'us-east-1' }))).toBe(false);
    const send = jest.spyOn(own, 'send').mockResolvedValue({} as never);
    await storeClient(own).send(new GetItemCommand({ TableName: 't', Key: { id: { S: 'u' } } }));
    expect(send.mock.calls[0]).toHaveLength(1);
    own.destroy();
  });
});
