/**
 * `npm run tokens -- --stack <name>`: the configuration of a deployed broker, read from its
 * CloudFormation outputs (`DescribeStacks`), so an operator does not assemble variables by hand.
 *
 * The result points the CLI at the stack's tables and refresh function, in the stack's region, and
 * at nothing else: no provider settings and no client secret, so a refresh goes through the
 * deployed refresh function (the reader's remote path), as any other token reader's does.
 * The CloudFormation client is imported on first use: the CLI alone needs it, never a Lambda bundle.
 */
import type { Env } from '../core/config';
import { ArgumentError, ConfigError } from '../core/errors';

/** Stack outputs (infra/stack.ts) the CLI reads, and the variable each one becomes. */
export const STACK_OUTPUT_VARIABLES = {
  TokensTableName: 'TOKENS_TABLE',
  SessionsTableName: 'SESSIONS_TABLE',
  RefreshFunctionName: 'REFRESH_FUNCTION_NAME',
  LoginUrl: 'LOGIN_URL',
  /** `tokens complete` through the deployed complete function (absent on stacks from before it). */
  CompleteFunctionName: 'COMPLETE_FUNCTION_NAME',
  /** Present only when the broker has an allow-list (`tokens link --return-to` checks it). */
  ReturnToAllowlist: 'RETURN_TO_ALLOWLIST',
} as const;

/** Outputs every broker stack has; a stack without them is not a broker (or not deployed yet). */
const REQUIRED_OUTPUTS = ['TokensTableName', 'SessionsTableName', 'RefreshFunctionName', 'LoginUrl'] as const;

/** Which stack to read, and where. */
export interface StackTarget {
  readonly stackName: string;
  /** @default the AWS SDK's own choice (`AWS_REGION`, the profile's region) */
  readonly region?: string;
}

/**
 * The environment the CLI runs with against a deployed stack: the mapped outputs, `AWS_REGION` (the
 * stack's own, from its id), and `LOG_LEVEL` from `env`. Nothing else from `env` is kept: a local
 * `DYNAMODB_ENDPOINT` or `CLIENT_SECRET` must not mix into a deployed stack's configuration.
 * @throws {ArgumentError} no such stack in that region (exit code 2)
 * @throws {ConfigError} the stack lacks a broker output
 */
export async function envFromStack(target: StackTarget, env: Env): Promise<Record<string, string>> {
  const sdk = await import('@aws-sdk/client-cloudformation');
  const client = new sdk.CloudFormationClient(target.region ? { region: target.region } : {});
  let stack: import('@aws-sdk/client-cloudformation').Stack | undefined;
  try {
    const out = await client.send(new sdk.DescribeStacksCommand({ StackName: target.stackName }));
    stack = out.Stacks?.[0];
  } catch (error) {
    // CloudFormation answers an unknown stack name with a ValidationError "... does not exist".
    if ((error as Error).name === 'ValidationError' && /does not exist/.test((error as Error).message)) {
      stack = undefined;
    } else {
      throw error;
    }
  } finally {
    client.destroy();
  }
  const where = target.region ? ` in region ${target.region}` : '';
  if (!stack?.StackId) {
    throw new ArgumentError(
      `no CloudFormation stack "${target.stackName}"${where}: --stack takes the name of a deployed broker stack (--region picks its region)`,
    );
  }
  const outputs = new Map((stack.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
  const missing = REQUIRED_OUTPUTS.filter((key) => !outputs.get(key));
  if (missing.length > 0) {
    throw new ConfigError(
      `stack "${target.stackName}" (${stack.StackStatus ?? 'unknown status'}) has no output ${missing.map((m) => `"${m}"`).join(', ')}: is it a Kroger token broker stack, deployed?`,
    );
  }
  const result: Record<string, string> = {};
  for (const [output, variable] of Object.entries(STACK_OUTPUT_VARIABLES)) {
    const value = outputs.get(output);
    if (value) result[variable] = value;
  }
  // arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>: the tables and the
  // function live in the stack's region, whatever the shell's default region is.
  result.AWS_REGION = stack.StackId.split(':')[3] || target.region || '';
  if (env.LOG_LEVEL) result.LOG_LEVEL = env.LOG_LEVEL;
  return result;
}
