/**
 * The fault-injection proxy (test/support/fault-proxy.ts) against the run's DynamoDB Local, through
 * the real SDK client: without rules it changes nothing; each fault reaches the SDK as DynamoDB's own
 * would (the names the broker's fault handling will switch on); faults injected before forwarding
 * leave nothing in the table and `drop-after-forward` leaves the write landed; rules aim by
 * operation, body, share and limit, and the same seed faults the same requests. Every client makes
 * one attempt per call (`maxAttempts: 1`), so the proxy's counts are exact.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  InternalServerError,
  ListTablesCommand,
  ProvisionedThroughputExceededException,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { FAULT_KINDS, startFaultProxy, type FaultKind, type FaultProxy, type FaultRule } from '../support/fault-proxy';

const THROTTLE_MESSAGE =
  'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.';
const KEY = 'local';

/** What the tests read of an SDK rejection. */
type SdkError = Error & { code?: string; $fault?: string; $metadata?: { httpStatusCode?: number } };

let endpoint: string;
let direct: DynamoDBClient;
let table: string;
const cleanups: (() => Promise<void> | void)[] = [];

const sdkClient = (url: string) =>
  new DynamoDBClient({
    endpoint: url,
    region: process.env.AWS_REGION ?? 'us-east-1',
    credentials: { accessKeyId: KEY, secretAccessKey: KEY },
    maxAttempts: 1,
  });

/** A proxy with `rules` and a one-attempt client through it, both closed after the test. */
async function through(
  rules: readonly FaultRule[] = [],
  seed = 1,
): Promise<{ proxy: FaultProxy; client: DynamoDBClient }> {
  const proxy = await startFaultProxy({ target: endpoint, seed, rules });
  const client = sdkClient(proxy.url);
  cleanups.push(
    () => client.destroy(),
    () => proxy.stop(),
  );
  return { proxy, client };
}

const id = (name: string) => `${name}-${randomBytes(4).toString('hex')}`;
const put = (itemId: string, extra: Record<string, { S: string }> = {}) =>
  new PutItemCommand({ TableName: table, Item: { id: { S: itemId }, ...extra } });
const get = (itemId: string) =>
  new GetItemCommand({ TableName: table, Key: { id: { S: itemId } }, ConsistentRead: true });

/** The item as DynamoDB Local holds it, read without the proxy. */
const stored = async (itemId: string) => (await direct.send(get(itemId))).Item;

/** The rejection of `promise` (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<SdkError> {
  try {
    await promise;
  } catch (error) {
    return error as SdkError;
  }
  throw new Error('expected a rejection, got an answer');
}

/** One raw POST (own connection), for what the SDK does not show: exact status, headers and body. */
function rawPost(
  url: string,
  operation: string,
  body: unknown,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${url}/`,
      {
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': `DynamoDB_20120810.${operation}`,
          // DynamoDB Local keys its database by the access key in the credential scope.
          authorization: `AWS4-HMAC-SHA256 Credential=${KEY}/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-target, Signature=00`,
          'x-amz-date': '20250101T000000Z',
          'content-length': Buffer.byteLength(payload),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * A connection cut without an answer, as the SDK reports it inside jest: no HTTP status, no service
 * fault, Node's "socket hang up". In plain Node the SDK names it `TimeoutError` with code
 * `ECONNRESET` (see "what the SDK reports in plain Node" below); inside jest its retry step does not
 * recognise Node's error across jest's sandbox (`instanceof Error` fails) and wraps it in a plain
 * `Error` that keeps only the text: "AWS SDK error wrapper for TimeoutError: socket hang up".
 */
function expectConnectionError(error: SdkError): void {
  expect(error.$metadata?.httpStatusCode).toBeUndefined();
  expect(error.$fault).toBeUndefined();
  expect(error.message).toMatch(/socket hang up/);
}

/** Sends one PutItem per id through `url` from a plain Node process (no jest sandbox), one attempt each. */
const PLAIN_NODE_PUTS = `
const { DynamoDBClient, PutItemCommand } = require('@aws-sdk/client-dynamodb');
const [url, region, key, table, ...ids] = process.argv.slice(1);
(async () => {
  const client = new DynamoDBClient({ endpoint: url, region, maxAttempts: 1, credentials: { accessKeyId: key, secretAccessKey: key } });
  const seen = [];
  for (const id of ids) {
    try {
      await client.send(new PutItemCommand({ TableName: table, Item: { id: { S: id } } }));
      seen.push({ name: 'answered' });
    } catch (e) {
      seen.push({ name: e.name, code: e.code ?? null, status: e.$metadata?.httpStatusCode ?? null, fault: e.$fault ?? null });
    }
  }
  client.destroy();
  process.stdout.write(JSON.stringify(seen));
})();
`;

/** What a plain Node process's SDK reports for each PutItem (async: this process's proxy must answer meanwhile). */
async function putsInPlainNode(url: string, ids: readonly string[]): Promise<Record<string, unknown>[]> {
  const region = process.env.AWS_REGION ?? 'us-east-1';
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['-e', PLAIN_NODE_PUTS, url, region, KEY, table, ...ids],
    {
      cwd: join(__dirname, '..', '..'),
      timeout: 20_000,
    },
  );
  return JSON.parse(stdout) as Record<string, unknown>[];
}

const noFaults = (): Record<FaultKind, number> =>
  Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>;
const faults = (counts: Partial<Record<FaultKind, number>>) => ({ ...noFaults(), ...counts });

beforeAll(async () => {
  if (!process.env.DYNAMODB_ENDPOINT) throw new Error('DYNAMODB_ENDPOINT is not set: run through jest (global setup)');
  endpoint = process.env.DYNAMODB_ENDPOINT;
  direct = sdkClient(endpoint);
  table = id('fault-proxy');
  await direct.send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(() => direct.destroy());

describe('Fault proxy: no rules', () => {
  it('passes every operation through unchanged, a failed condition included', async () => {
    const { proxy, client } = await through();
    const ownTable = id('fault-proxy-own');

    await client.send(
      new CreateTableCommand({
        TableName: ownTable,
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    const described = await direct.send(new DescribeTableCommand({ TableName: ownTable }));
    await client.send(new PutItemCommand({ TableName: ownTable, Item: { id: { S: 'a' }, v: { S: 'one' } } }));
    const got = await client.send(
      new GetItemCommand({ TableName: ownTable, Key: { id: { S: 'a' } }, ConsistentRead: true }),
    );
    const conflict = await rejection(
      client.send(
        new PutItemCommand({
          TableName: ownTable,
          Item: { id: { S: 'a' }, v: { S: 'two' } },
          ConditionExpression: 'attribute_not_exists(id)',
        }),
      ),
    );
    const held = await direct.send(
      new GetItemCommand({ TableName: ownTable, Key: { id: { S: 'a' } }, ConsistentRead: true }),
    );

    expect(described.Table?.TableName).toBe(ownTable);
    expect(got.Item).toEqual({ id: { S: 'a' }, v: { S: 'one' } });
    expect(conflict).toBeInstanceOf(ConditionalCheckFailedException);
    expect(conflict.name).toBe('ConditionalCheckFailedException');
    expect(conflict.$metadata?.httpStatusCode).toBe(400);
    expect(held.Item?.v).toEqual({ S: 'one' });
    expect(proxy.stats()).toEqual({
      CreateTable: { requests: 1, forwarded: 1, faults: noFaults() },
      PutItem: { requests: 2, forwarded: 2, faults: noFaults() },
      GetItem: { requests: 1, forwarded: 1, faults: noFaults() },
    });
  });

  it('answers with DynamoDB Local status, headers and body as they are', async () => {
    const { proxy } = await through();
    await direct.send(put('raw', { v: { S: 'x' } }));
    const request = { TableName: table, Key: { id: { S: 'raw' } }, ConsistentRead: true };

    const viaProxy = await rawPost(proxy.url, 'GetItem', request);
    const straight = await rawPost(endpoint, 'GetItem', request);
    const missingViaProxy = await rawPost(proxy.url, 'GetItem', { TableName: `${table}-missing`, Key: request.Key });
    const missingStraight = await rawPost(endpoint, 'GetItem', { TableName: `${table}-missing`, Key: request.Key });

    expect(viaProxy.status).toBe(200);
    expect(viaProxy.body).toBe(straight.body);
    expect(JSON.parse(viaProxy.body)).toEqual({ Item: { id: { S: 'raw' }, v: { S: 'x' } } });
    for (const header of ['content-type', 'content-length', 'x-amz-crc32']) {
      expect([header, viaProxy.headers[header]]).toEqual([header, straight.headers[header]]);
    }
    expect(missingViaProxy.status).toBe(400);
    expect(missingViaProxy.body).toBe(missingStraight.body);
  });
});

describe('Fault proxy: faults injected before forwarding', () => {
  it('throttles PutItem as DynamoDB does: the SDK sees ProvisionedThroughputExceededException, nothing lands, GetItem passes', async () => {
    const { proxy, client } = await through([{ operations: ['PutItem'], share: 1, fault: 'throttle' }]);
    const itemId = id('throttled');
    await direct.send(put('present', { v: { S: 'p' } }));

    const error = await rejection(client.send(put(itemId)));
    const read = await client.send(get('present'));

    expect(error).toBeInstanceOf(ProvisionedThroughputExceededException);
    expect(error.name).toBe('ProvisionedThroughputExceededException');
    expect(error.message).toBe(THROTTLE_MESSAGE);
    expect(error.$metadata?.httpStatusCode).toBe(400);
    expect(error.$fault).toBe('client');
    expect(await stored(itemId)).toBeUndefined();
    expect(read.Item?.v).toEqual({ S: 'p' });
    expect(proxy.stats()).toEqual({
      PutItem: { requests: 1, forwarded: 0, faults: faults({ throttle: 1 }) },
      GetItem: { requests: 1, forwarded: 1, faults: noFaults() },
    });
  });

  it('answers a throttle with the headers and body DynamoDB sends', async () => {
    const { proxy } = await through([{ share: 1, fault: 'throttle' }]);

    const answer = await rawPost(proxy.url, 'GetItem', { TableName: table, Key: { id: { S: 'x' } } });

    expect(answer.status).toBe(400);
    expect(answer.headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(answer.headers['x-amzn-requestid']).toMatch(/^[0-9A-Z]{32}$/);
    expect(answer.body).toBe(
      JSON.stringify({
        __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
        message: THROTTLE_MESSAGE,
      }),
    );
  });

  it('answers server-error with a 500 the SDK names InternalServerError, and nothing lands', async () => {
    const { proxy, client } = await through([{ operations: ['PutItem'], share: 1, fault: 'server-error' }]);
    const itemId = id('server-error');

    const error = await rejection(client.send(put(itemId)));

    expect(error).toBeInstanceOf(InternalServerError);
    expect(error.name).toBe('InternalServerError');
    expect(error.$metadata?.httpStatusCode).toBe(500);
    expect(error.$fault).toBe('server');
    expect(await stored(itemId)).toBeUndefined();
    expect(proxy.stats().PutItem).toEqual({ requests: 1, forwarded: 0, faults: faults({ 'server-error': 1 }) });
  });

  it('drops the connection without an answer: the SDK sees a connection reset, and nothing lands', async () => {
    const { proxy, client } = await through([{ operations: ['PutItem'], share: 1, fault: 'drop' }]);
    const itemId = id('dropped');

    const error = await rejection(client.send(put(itemId)));

    expectConnectionError(error);
    expect(await stored(itemId)).toBeUndefined();
    expect(proxy.stats().PutItem).toEqual({ requests: 1, forwarded: 0, faults: faults({ drop: 1 }) });
  });
});

describe('Fault proxy: faults that forward', () => {
  it('drop-after-forward: the client gets a connection error for a PutItem that landed', async () => {
    const { proxy, client } = await through([{ operations: ['PutItem'], share: 1, fault: 'drop-after-forward' }]);
    const itemId = id('landed');

    const error = await rejection(client.send(put(itemId, { v: { S: 'landed' } })));

    expectConnectionError(error);
    expect(await stored(itemId)).toEqual({ id: { S: itemId }, v: { S: 'landed' } });
    expect(proxy.stats().PutItem).toEqual({ requests: 1, forwarded: 1, faults: faults({ 'drop-after-forward': 1 }) });
  });

  it('latency holds the request for at least latencyMs, then forwards it (the write lands)', async () => {
    const latencyMs = 250;
    const { proxy, client } = await through([{ operations: ['PutItem'], share: 1, fault: 'latency', latencyMs }]);
    const itemId = id('slow');

    const fastStart = performance.now();
    await client.send(get(itemId));
    const fast = performance.now() - fastStart;
    const slowStart = performance.now();
    await client.send(put(itemId));
    const slow = performance.now() - slowStart;

    expect(slow).toBeGreaterThanOrEqual(latencyMs);
    expect(slow).toBeGreaterThan(fast);
    expect(await stored(itemId)).toEqual({ id: { S: itemId } });
    expect(proxy.stats().PutItem).toEqual({ requests: 1, forwarded: 1, faults: faults({ latency: 1 }) });
  });
});

describe('Fault proxy: aiming', () => {
  it('stops a rule after `limit` faults', async () => {
    const { proxy, client } = await through([{ operations: ['GetItem'], share: 1, fault: 'throttle', limit: 2 }]);

    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(
        await client.send(get('any')).then(
          () => 'ok',
          (error: Error) => error.name,
        ),
      );
    }

    expect(outcomes).toEqual([
      'ProvisionedThroughputExceededException',
      'ProvisionedThroughputExceededException',
      'ok',
      'ok',
    ]);
    expect(proxy.stats().GetItem).toEqual({ requests: 4, forwarded: 2, faults: faults({ throttle: 2 }) });
  });

  it('aims at one UpdateItem by its UpdateExpression while other UpdateItems pass', async () => {
    const itemId = id('aimed');
    await direct.send(put(itemId));
    const { proxy, client } = await through([
      {
        operations: ['UpdateItem'],
        match: (body) => body.UpdateExpression === 'SET b = :v',
        share: 1,
        fault: 'throttle',
      },
    ]);
    const update = (expression: string) =>
      client.send(
        new UpdateItemCommand({
          TableName: table,
          Key: { id: { S: itemId } },
          UpdateExpression: expression,
          ExpressionAttributeValues: { ':v': { S: 'set' } },
        }),
      );

    await update('SET a = :v');
    const error = await rejection(update('SET b = :v'));
    await update('SET c = :v');

    expect(error.name).toBe('ProvisionedThroughputExceededException');
    expect(await stored(itemId)).toEqual({ id: { S: itemId }, a: { S: 'set' }, c: { S: 'set' } });
    expect(proxy.stats().UpdateItem).toEqual({ requests: 3, forwarded: 2, faults: faults({ throttle: 1 }) });
  });

  it('lets the first matching rule decide, and turns faults on and off at run time', async () => {
    const { proxy, client } = await through([
      { operations: ['GetItem'], share: 0, fault: 'drop' },
      { share: 1, fault: 'server-error' },
    ]);

    const getWithShareZero = await client.send(get('any')).then(() => 'ok');
    const listed = await rejection(client.send(new ListTablesCommand({})));
    proxy.setRules([]);
    const listedAfterOff = await client.send(new ListTablesCommand({}));

    // The GetItem rule matched and drew "no fault": the catch-all after it was never asked.
    expect(getWithShareZero).toBe('ok');
    expect(listed.name).toBe('InternalServerError');
    expect(listedAfterOff.TableNames).toContain(table);
  });

  it('refuses a rule whose share is not in 0..1 or whose latency is missing', async () => {
    const { proxy } = await through();

    expect(() => proxy.setRules([{ share: 1.5, fault: 'throttle' }])).toThrow(RangeError);
    expect(() => proxy.setRules([{ share: 1, fault: 'latency' }])).toThrow(/latencyMs/);
  });

  it('fails stop() when a rule match threw (its request was dropped)', async () => {
    const proxy = await startFaultProxy({
      target: endpoint,
      seed: 1,
      rules: [
        {
          share: 1,
          fault: 'throttle',
          match: () => {
            throw new Error('broken rule');
          },
        },
      ],
    });
    const client = sdkClient(proxy.url);

    const error = await rejection(client.send(get('any')));
    client.destroy();
    const stopped = await proxy.stop().then(
      () => 'stopped',
      (failure: Error) => failure.message,
    );

    expectConnectionError(error);
    expect(stopped).toMatch(/a rule's "match" threw on 1 request/);
  });
});

describe('Fault proxy: what the SDK reports in plain Node (as in Lambda)', () => {
  it('names each fault: the two DynamoDB errors by their type, both dropped connections TimeoutError/ECONNRESET', async () => {
    const { proxy } = await through([
      { operations: ['PutItem'], share: 1, fault: 'throttle', limit: 1 },
      { operations: ['PutItem'], share: 1, fault: 'server-error', limit: 1 },
      { operations: ['PutItem'], share: 1, fault: 'drop', limit: 1 },
      { operations: ['PutItem'], share: 1, fault: 'drop-after-forward', limit: 1 },
    ]);
    const ids = ['throttled', 'failed', 'dropped', 'landed', 'plain'].map((name) => id(`plain-${name}`));

    const seen = await putsInPlainNode(proxy.url, ids);

    expect(seen).toEqual([
      { name: 'ProvisionedThroughputExceededException', code: null, status: 400, fault: 'client' },
      { name: 'InternalServerError', code: null, status: 500, fault: 'server' },
      { name: 'TimeoutError', code: 'ECONNRESET', status: null, fault: null },
      { name: 'TimeoutError', code: 'ECONNRESET', status: null, fault: null },
      { name: 'answered' },
    ]);
    const landed = await Promise.all(ids.map(async (itemId) => (await stored(itemId)) !== undefined));
    expect(landed).toEqual([false, false, false, true, true]);
  });
});

describe('Fault proxy: determinism', () => {
  /** Which of 40 sequential GetItems a share-0.5 throttle hits; `between` runs before each one. */
  async function pattern(seed: number, between?: (client: DynamoDBClient) => Promise<unknown>): Promise<string> {
    const { client } = await through([{ operations: ['GetItem'], share: 0.5, fault: 'throttle' }], seed);
    let hits = '';
    for (let i = 0; i < 40; i++) {
      if (between) await between(client);
      hits += await client.send(get(`item-${i}`)).then(
        () => '.',
        (error: Error) => (error.name === 'ProvisionedThroughputExceededException' ? 'T' : '?'),
      );
    }
    return hits;
  }

  it('faults the same requests for the same seed, and others for another seed', async () => {
    const first = await pattern(42);
    const again = await pattern(42);
    const otherSeed = await pattern(43);

    expect(first).toMatch(/^[.T]{40}$/);
    expect(first).toContain('T');
    expect(first).toContain('.');
    expect(again).toBe(first);
    expect(otherSeed).not.toBe(first);
  });

  it('draws nothing for requests no rule matches', async () => {
    const plain = await pattern(7);
    const withPutsBetween = await pattern(7, (client) => client.send(put('between')));

    expect(withPutsBetween).toBe(plain);
  });
});

describe('Fault proxy: stats', () => {
  it('counts requests, forwards and faults per operation and kind, and resets', async () => {
    const { proxy, client } = await through([
      { operations: ['GetItem'], share: 1, fault: 'throttle', limit: 1 },
      { operations: ['PutItem'], share: 1, fault: 'server-error', limit: 1 },
      { operations: ['PutItem'], share: 1, fault: 'drop', limit: 1 },
    ]);
    const settle = (promise: Promise<unknown>) => promise.catch(() => undefined);

    await settle(client.send(get('s')));
    await settle(client.send(get('s')));
    await settle(client.send(put(id('stats'))));
    await settle(client.send(put(id('stats'))));
    await settle(client.send(put(id('stats'))));
    await settle(rawPost(proxy.url, 'ListTables', {}));
    const before = proxy.stats();
    proxy.resetStats();
    await client.send(new ListTablesCommand({}));

    expect(before).toEqual({
      GetItem: { requests: 2, forwarded: 1, faults: faults({ throttle: 1 }) },
      PutItem: { requests: 3, forwarded: 1, faults: faults({ 'server-error': 1, drop: 1 }) },
      ListTables: { requests: 1, forwarded: 1, faults: noFaults() },
    });
    expect(proxy.stats()).toEqual({ ListTables: { requests: 1, forwarded: 1, faults: noFaults() } });
  });
});
