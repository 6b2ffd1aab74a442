/**
 * `npm run tokens -- --stack <name>` (issue 14): the CLI reads a deployed stack's outputs
 * (CloudFormation DescribeStacks, stubbed with aws-sdk-client-mock: it has no local twin) and works on
 * the tables they name (DynamoDB Local standing in for the stack's tables) in the stack's region,
 * refreshing through the stack's refresh function (Lambda, stubbed) instead of holding a secret.
 */
import { CloudFormationClient, DescribeStacksCommand, type Output } from '@aws-sdk/client-cloudformation';
import { PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { runCli } from '../../functions/reader/cli';
import { seededItem } from '../support/seed';
import { createTestStores, type TestStores } from '../support/stores';

const STACK = 'KrogerTokenBroker-staging';
const STACK_ID = `arn:aws:cloudformation:eu-west-1:123456789012:stack/${STACK}/0b9d8a40-1111-2222-3333-444455556666`;
const FUNCTION_NAME = 'KrogerTokenBroker-staging-BrokerRefreshC838252E-AbCdEf';
const LOGIN_URL = 'https://auth-staging.example.com/kroger/login';

const cloudFormation = mockClient(CloudFormationClient);
const lambda = mockClient(LambdaClient);
let stores: TestStores;

function outputs(extra: Output[] = []): Output[] {
  return [
    { OutputKey: 'TokensTableName', OutputValue: stores.config.tokensTable },
    { OutputKey: 'SessionsTableName', OutputValue: stores.config.sessionsTable },
    { OutputKey: 'RefreshFunctionName', OutputValue: FUNCTION_NAME },
    { OutputKey: 'LoginUrl', OutputValue: LOGIN_URL },
    { OutputKey: 'ClientSecretArn', OutputValue: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf' },
    ...extra,
  ];
}

function stackAnswer(stackOutputs = outputs()) {
  return {
    Stacks: [
      {
        StackName: STACK,
        StackId: STACK_ID,
        StackStatus: 'UPDATE_COMPLETE',
        CreationTime: new Date(),
        Outputs: stackOutputs,
      },
    ],
  } as never;
}

/**
 * Runs the CLI as an operator's shell would: with settings that must NOT be used (a local endpoint,
 * a client secret, other table names), which `--stack` has to ignore.
 */
async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const shell = {
    DYNAMODB_ENDPOINT: 'http://127.0.0.1:9',
    TOKENS_TABLE: 'not-this-table',
    CLIENT_SECRET: 'a-secret-the-deployed-cli-must-not-use',
    AWS_REGION: 'us-east-1',
  };
  // The stack's tables live in DynamoDB Local here: hand the CLI a client for it.
  const code = await runCli(
    argv,
    shell,
    { out: (l) => out.push(l), err: (l) => err.push(l) },
    { dynamo: stores.client },
  );
  return { code, out, err };
}

beforeAll(async () => {
  stores = await createTestStores('clistack');
  const now = Math.floor(Date.now() / 1000);
  for (const userId of ['fresh-user', 'stale-user', 'leaving-user']) {
    const expiresAt = userId === 'stale-user' ? now + 30 : now + 1800;
    await stores.client.send(
      new PutItemCommand({
        TableName: stores.config.tokensTable,
        Item: seededItem(userId, { issuedAt: now - 60, expiresAt }, userId),
      }),
    );
  }
});

afterAll(() => stores?.client.destroy());

beforeEach(() => {
  cloudFormation.reset();
  lambda.reset();
  cloudFormation.on(DescribeStacksCommand, { StackName: STACK }).resolves(stackAnswer());
});

describe('CLI: tokens --stack', () => {
  it('get reads the token from the table the stack outputs name, in one DescribeStacks call', async () => {
    const { code, out, err } = await cli('--stack', STACK, 'get', 'fresh-user');
    expect({ code, err }).toEqual({ code: 0, err: [] });
    expect(JSON.parse(out[0])).toMatchObject({ userId: 'fresh-user', accessToken: 'fresh-user-access' });
    expect(cloudFormation.commandCalls(DescribeStacksCommand).map((c) => c.args[0].input)).toEqual([
      { StackName: STACK },
    ]);
    // Fresh: no refresh needed, so the refresh function was not invoked.
    expect(lambda.calls()).toHaveLength(0);
  });

  it('refresh invokes the stack refresh function in the stack region, never refreshing in process with a secret', async () => {
    // The stand-in for the deployed refresh function stores a new token, as the real one would (the
    // CLI tells a refresh from a forced refresh the function declined by the token it reads after).
    lambda.on(InvokeCommand).callsFake(async () => {
      await stores.client.send(
        new UpdateItemCommand({
          TableName: stores.config.tokensTable,
          Key: { userId: { S: 'stale-user' } },
          UpdateExpression: 'SET accessToken = :new',
          ExpressionAttributeValues: { ':new': { S: 'stale-user-access-refreshed' } },
        }),
      );
      return {
        StatusCode: 200,
        Payload: new TextEncoder().encode(JSON.stringify({ ok: true, expiresAt: 1 })) as never,
      };
    });
    const { code, out } = await cli('refresh', 'stale-user', '--stack', STACK);
    expect(code).toBe(0);
    expect(JSON.parse(out[0])).toMatchObject({ userId: 'stale-user', refreshed: true });
    const invokes = lambda.commandCalls(InvokeCommand);
    expect(invokes).toHaveLength(1);
    expect(invokes[0].args[0].input.FunctionName).toBe(FUNCTION_NAME);
    expect(JSON.parse(String(invokes[0].args[0].input.Payload))).toMatchObject({
      userId: 'stale-user',
      forceRefresh: true,
    });
    // The region from the stack id (eu-west-1), not the shell's AWS_REGION (us-east-1).
    expect(await (invokes[0].thisValue as LambdaClient).config.region()).toBe('eu-west-1');
  });

  it('asks CloudFormation in the --region given', async () => {
    await cli('--stack', STACK, '--region', 'eu-west-1', 'list');
    const call = cloudFormation.commandCalls(DescribeStacksCommand)[0];
    expect(await (call.thisValue as CloudFormationClient).config.region()).toBe('eu-west-1');
  });

  it('list prints the users of the stack table', async () => {
    const { code, out } = await cli('--stack', STACK, 'list');
    expect(code).toBe(0);
    expect(out.map((line) => JSON.parse(line).userId).sort()).toEqual(['fresh-user', 'leaving-user', 'stale-user']);
  });

  it('disconnect deletes the tokens and says the grant was not revoked (the deployed CLI holds no secret)', async () => {
    const { code, out, err } = await cli('--stack', STACK, 'disconnect', 'leaving-user');
    expect(code).toBe(0);
    expect(JSON.parse(out[0])).toEqual({ userId: 'leaving-user', disconnected: true, revoked: false });
    expect(err.join('\n')).toMatch(/not revoked at the provider/);
    expect(await stores.tokens.get('leaving-user')).toBeUndefined();
  });

  it('link uses the LoginUrl output and checks --return-to against the ReturnToAllowlist output', async () => {
    cloudFormation
      .on(DescribeStacksCommand, { StackName: STACK })
      .resolves(
        stackAnswer(outputs([{ OutputKey: 'ReturnToAllowlist', OutputValue: 'https://app.example.com/done' }])),
      );
    const ok = await cli('--stack', STACK, 'link', 'app-user-1', '--return-to', 'https://app.example.com/done/ok');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out[0]).loginUrl).toMatch(new RegExp(`^${LOGIN_URL}\\?session=`));
    const refused = await cli('--stack', STACK, 'link', 'app-user-1', '--return-to', 'https://evil.example.com/');
    expect(refused.code).toBe(2);
  });

  it('exits 2 naming the stack and region when there is no such stack', async () => {
    cloudFormation
      .on(DescribeStacksCommand)
      .rejects(Object.assign(new Error('Stack with id Nope does not exist'), { name: 'ValidationError' }));
    const { code, err } = await cli('--stack', 'Nope', '--region', 'eu-west-1', 'list');
    expect(code).toBe(2);
    expect(err.join('\n')).toMatch(/no CloudFormation stack "Nope" in region eu-west-1/);
  });

  it('exits 1 naming the missing outputs when the stack is not a broker', async () => {
    cloudFormation.on(DescribeStacksCommand).resolves(stackAnswer([{ OutputKey: 'BucketName', OutputValue: 'b' }]));
    const { code, err } = await cli('--stack', 'SomethingElse', 'list');
    expect(code).toBe(1);
    expect(err.join('\n')).toMatch(
      /has no output "TokensTableName", "SessionsTableName", "RefreshFunctionName", "LoginUrl"/,
    );
  });

  it('exits 1 with what to do when there are no AWS credentials', async () => {
    cloudFormation
      .on(DescribeStacksCommand)
      .rejects(
        Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }),
      );
    const { code, err } = await cli('--stack', STACK, 'list');
    expect(code).toBe(1);
    expect(err.join('\n')).toMatch(/no AWS credentials for stack "KrogerTokenBroker-staging": configure them/);
  });

  it('exits 2 with usage when --stack has no value', async () => {
    const { code, err } = await cli('list', '--stack');
    expect(code).toBe(2);
    expect(err.join('\n')).toMatch(/--stack needs a value/);
    expect(cloudFormation.calls()).toHaveLength(0);
  });
});
