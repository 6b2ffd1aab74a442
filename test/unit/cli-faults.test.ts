/**
 * The tokens CLI when a dependency is temporarily unavailable (issue: faults survived, and said
 * clearly): exit 5, "nothing lost, try again", naming the dependency, never a raw AWS SDK error with
 * exit 1. DynamoDB is stubbed here (aws-sdk-client-mock) to fail every call on demand; the same exit
 * codes under real throttling of DynamoDB Local are in test/integration/faults.test.ts.
 */
import { DynamoDBClient, QueryCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { runCli } from '../../functions/reader/cli';

const dynamo = mockClient(DynamoDBClient);

const ENV = {
  DYNAMODB_ENDPOINT: 'http://127.0.0.1:9',
  TOKENS_TABLE: 'tokens',
  SESSIONS_TABLE: 'sessions',
  AWS_REGION: 'us-east-1',
};

async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, ENV, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err: err.join('\n') };
}

const awsError = (name: string, status: number, extra: object = {}) =>
  Object.assign(new Error(`${name}: the request said secret things`), {
    name,
    $metadata: { httpStatusCode: status },
    ...extra,
  });

beforeEach(() => {
  dynamo.reset();
});

describe('CLI: tokens when DynamoDB is unavailable', () => {
  it.each([
    [
      'throttled',
      awsError('ProvisionedThroughputExceededException', 400),
      /throttled \(ProvisionedThroughputExceededException\)/,
    ],
    ['failing', awsError('InternalServerError', 500), /unavailable \(InternalServerError\)/],
    [
      'unreachable',
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      /unavailable \(ECONNREFUSED\)/,
    ],
  ])('exits 5 when it is %s, naming the token store, saying nothing was lost', async (_, error, detail) => {
    dynamo.on(QueryCommand).rejects(error);
    dynamo.on(ScanCommand).rejects(error);

    const { code, out, err } = await cli(['list']);

    expect(code).toBe(5);
    expect(out).toEqual([]);
    expect(err).toMatch(/^error: the token store \(DynamoDB\) is unavailable: DynamoDB (Query|Scan) failed: /);
    expect(err).toMatch(detail);
    expect(err).toMatch(/Nothing was lost: try again (in 1 s|shortly) \(STORE_UNAVAILABLE\)$/);
    expect(err).not.toContain('secret things');
  });

  it('keeps exit 1 for a failure that is not temporary (access denied): trying again would not help', async () => {
    dynamo.on(QueryCommand).rejects(awsError('AccessDeniedException', 400));
    dynamo.on(ScanCommand).rejects(awsError('AccessDeniedException', 400));

    const { code, err } = await cli(['list']);

    expect(code).toBe(1);
    expect(err).not.toMatch(/try again/);
  });
});
