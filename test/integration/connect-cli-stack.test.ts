/**
 * `npm run tokens -- --stack <name> complete <code> <app-user-id>`: against a deployed stack the CLI
 * completes through the stack's complete function (from its `CompleteFunctionName` output, in the
 * stack's region), never with table writes of its own. CloudFormation and Lambda are stubbed with
 * aws-sdk-client-mock (no local twin); the answer shapes are the complete function's own.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { newConnectCode } from '../../functions/core/connect';
import { runCli } from '../../functions/reader/cli';

const STACK = 'KrogerTokenBroker-staging';
const STACK_ID = `arn:aws:cloudformation:eu-west-1:123456789012:stack/${STACK}/0b9d8a40-1111-2222-3333-444455556666`;
const COMPLETE = 'KrogerTokenBroker-staging-BrokerCompleteDC17720D-AbCdEf';

const cloudFormation = mockClient(CloudFormationClient);
const lambda = mockClient(LambdaClient);

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  // A local endpoint in the shell that --stack must ignore: completion goes to the function.
  const code = await runCli(
    argv,
    { DYNAMODB_ENDPOINT: 'http://127.0.0.1:9', AWS_REGION: 'us-east-1' },
    {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
    },
  );
  return { code, out, err };
}

const answer = (body: unknown) => ({ Payload: new TextEncoder().encode(JSON.stringify(body)) }) as never;

beforeEach(() => {
  cloudFormation.reset();
  lambda.reset();
  cloudFormation.on(DescribeStacksCommand).resolves({
    Stacks: [
      {
        StackName: STACK,
        StackId: STACK_ID,
        StackStatus: 'UPDATE_COMPLETE',
        CreationTime: new Date(),
        Outputs: [
          { OutputKey: 'TokensTableName', OutputValue: 'tokens-table' },
          { OutputKey: 'SessionsTableName', OutputValue: 'sessions-table' },
          { OutputKey: 'RefreshFunctionName', OutputValue: 'refresh-fn' },
          { OutputKey: 'LoginUrl', OutputValue: 'https://auth.example.com/login' },
          { OutputKey: 'CompleteFunctionName', OutputValue: COMPLETE },
        ],
      },
    ],
  } as never);
});

describe('CLI: tokens --stack complete', () => {
  it("invokes the stack's complete function in the stack's region and prints its ids (exit 0)", async () => {
    const code = newConnectCode();
    lambda.on(InvokeCommand).resolves(answer({ ok: true, userId: 'app-1', profileId: 'kroger-1' }));

    const result = await cli('--stack', STACK, 'complete', code, 'app-1');

    expect(result).toMatchObject({ code: 0, err: [] });
    expect(JSON.parse(result.out[0])).toEqual({ userId: 'app-1', profileId: 'kroger-1' });
    const calls = lambda.commandCalls(InvokeCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0].args[0].input.FunctionName).toBe(COMPLETE);
    const payload = calls[0].args[0].input.Payload;
    expect(JSON.parse(typeof payload === 'string' ? payload : new TextDecoder().decode(payload as Uint8Array))).toEqual(
      {
        connectCode: code,
        appUserId: 'app-1',
      },
    );
    expect(await lambda.call(0).thisValue.config.region()).toBe('eu-west-1');
  });

  it("exits 6 with the function's refusal, saying which", async () => {
    lambda
      .on(InvokeCommand)
      .resolves(answer({ ok: false, code: 'CONNECT_CODE_FOREIGN', message: 'the broker said so' }));

    const result = await cli('--stack', STACK, 'complete', newConnectCode(), 'app-2');

    expect(result.code).toBe(6);
    expect(result.out).toEqual([]);
    expect(result.err.join('\n')).toMatch(/belongs to another app user/);
  });

  it('exits 2 for a malformed code without invoking anything', async () => {
    const result = await cli('--stack', STACK, 'complete', 'not-a-code', 'app-3');

    expect(result.code).toBe(2);
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
  });
});
