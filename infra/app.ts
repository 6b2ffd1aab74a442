/**
 * CDK app entry (`cdk.json` runs it with tsx). Synth needs no AWS credentials and no network:
 * without an account and region the stack is environment-agnostic and deploys wherever the CLI's
 * credentials point. cdk-nag's AwsSolutions checks run on every synth; an unacknowledged finding
 * fails it (every acknowledgment sits next to the resource it concerns, with its reason).
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { KrogerTokenBrokerStack } from './stack';

const app = new App();

const account: string | undefined = app.node.tryGetContext('account') ?? process.env.CDK_DEFAULT_ACCOUNT;
const region: string | undefined = app.node.tryGetContext('region') ?? process.env.CDK_DEFAULT_REGION;

new KrogerTokenBrokerStack(app, app.node.tryGetContext('stackName') ?? 'KrogerTokenBroker', {
  description: 'Kroger OAuth2 token broker: hosted login, token storage and refresh',
  env: account || region ? { account, region } : undefined,
});

Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
