/**
 * The deployable stack: outputs, configuration from context, an imported secret, and cdk-nag
 * (AwsSolutions) passing with every acknowledgment carrying a reason. The last test runs the real
 * `cdk synth` from cdk.json, without AWS credentials.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';
import { KrogerTokenBrokerStack } from '../../infra/stack';
import {
  PROJECT_ROOT,
  SYNTH_TIMEOUT_MS,
  environmentOf,
  newApp,
  policyLinesForRole,
  roleOfFunction,
  tempDir,
} from './support';

/** Synthesizes the stack with AwsSolutions checks, as infra/app.ts does; throws on a finding. */
function synthWithNag(app: App, stack: KrogerTokenBrokerStack): Template {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return Template.fromJSON(app.synth().getStackByName(stack.stackName).template);
}

describe('Stack: KrogerTokenBrokerStack', () => {
  describe('with the default configuration and cdk-nag', () => {
    let app: App;
    let stack: KrogerTokenBrokerStack;
    let template: Template;

    beforeAll(() => {
      // cdk-nag reads the template, not the code: no bundling here (the `cdk synth` test below bundles).
      app = newApp({ clientId: 'ctx-client-id' }, false);
      stack = new KrogerTokenBrokerStack(app, 'KrogerTokenBroker');
      template = synthWithNag(app, stack);
    }, SYNTH_TIMEOUT_MS);

    it('outputs the login and callback URLs, what token readers need, and the secret', () => {
      const outputs = template.toJSON().Outputs;
      const endpoint = { 'Fn::GetAtt': [expect.stringMatching(/^BrokerApi/), 'ApiEndpoint'] };
      expect(outputs.LoginUrl.Value).toEqual({ 'Fn::Join': ['', [endpoint, '/login']] });
      expect(outputs.CallbackUrl.Value).toEqual({ 'Fn::Join': ['', [endpoint, '/callback']] });
      expect(outputs.TokensTableName.Value).toEqual({ Ref: expect.stringMatching(/^BrokerTokensTable/) });
      expect(outputs.SessionsTableName.Value).toEqual({ Ref: expect.stringMatching(/^BrokerSessionsTable/) });
      expect(outputs.RefreshFunctionName.Value).toEqual({ Ref: expect.stringMatching(/^BrokerRefresh/) });
      expect(outputs.ClientSecretArn.Value).toEqual({ Ref: expect.stringMatching(/^BrokerClientSecret/) });
      expect(outputs.TableKeyArn.Value).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^BrokerTableKey/), 'Arn'] });
      expect(outputs.RefresherFunctionName.Value).toEqual({ Ref: expect.stringMatching(/^BrokerRefresher/) });
      expect(JSON.stringify(outputs.EventBusArn.Value)).toContain(':event-bus/default');
    });

    it('takes the client id from context', () => {
      expect(environmentOf(template, 'Broker/Login').CLIENT_ID).toBe('ctx-client-id');
    });

    it('passes the AwsSolutions checks (synth throws on any unacknowledged finding)', () => {
      // Reaching here means app.synth() did not throw; the report shows the AwsSolutions pack ran
      // (a missing report or a missing pack fails here) and passed.
      const reportFile = path.join(app.outdir, 'validation-report.json');
      expect(fs.existsSync(reportFile)).toBe(true);
      const report = JSON.parse(fs.readFileSync(reportFile, 'utf8'));
      const nag = (report.pluginReports ?? []).filter((r: { pluginName: string }) => r.pluginName === 'AwsSolutions');
      expect(nag.map((r: { conclusion: string }) => r.conclusion)).toEqual(['success']);
    });

    it('acknowledges only the findings that are design decisions, each with a specific reason', () => {
      const acknowledged: Array<[string, string, string]> = [];
      const visit = (node: IConstruct): void => {
        for (const entry of node.node.metadata) {
          if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
          for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
            acknowledged.push([node.node.path, id, reason]);
          }
        }
        node.node.children.forEach(visit);
      };
      visit(stack);
      expect(acknowledged.map(([where, id]) => `${id} @ ${where}`).sort()).toEqual([
        'AwsSolutions::AwsSolutions-APIG4 @ KrogerTokenBroker/Broker/Api/GET--callback',
        'AwsSolutions::AwsSolutions-APIG4 @ KrogerTokenBroker/Broker/Api/GET--health',
        'AwsSolutions::AwsSolutions-APIG4 @ KrogerTokenBroker/Broker/Api/GET--login',
        'AwsSolutions::AwsSolutions-SMG4 @ KrogerTokenBroker/Broker/ClientSecret',
      ]);
      for (const [, , reason] of acknowledged) expect(reason.length).toBeGreaterThan(60);
    });
  });

  describe('cdk-nag', () => {
    it('fails synth on an unacknowledged finding', () => {
      const app = newApp({ clientId: 'x' }, false);
      const stack = new KrogerTokenBrokerStack(app, 'NagFails');
      // A role with an AWS managed policy: AwsSolutions-IAM4, deliberately not acknowledged.
      new iam.Role(stack, 'Careless', {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaBasicExecutionRole')],
      });
      expect(() => synthWithNag(app, stack)).toThrow(/AwsSolutions-IAM4/);
    });
  });

  describe('configuration', () => {
    it('reads scopes, URLs, the allow-list and the removal policy from context strings', () => {
      const app = newApp(
        {
          clientId: 'ctx-id',
          scopes: 'product.compact profile.compact',
          oauth2BaseUrl: 'https://auth.example.com/oauth2',
          apiBaseUrl: 'https://api.example.com',
          returnToAllowlist: 'https://app.example.com/done https://other.example.com',
          successRedirect: 'https://app.example.com/done/ok',
          pkce: 'false',
          removalPolicy: 'destroy',
        },
        false,
      );
      const template = Template.fromStack(new KrogerTokenBrokerStack(app, 'FromContext'));
      expect(environmentOf(template, 'Broker/Login')).toMatchObject({
        CLIENT_ID: 'ctx-id',
        SCOPES: 'product.compact profile.compact',
        OAUTH2_BASE_URL: 'https://auth.example.com/oauth2',
        API_BASE_URL: 'https://api.example.com',
        RETURN_TO_ALLOWLIST: 'https://app.example.com/done https://other.example.com',
        SUCCESS_REDIRECT: 'https://app.example.com/done/ok',
        PKCE: 'false',
      });
      template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
      template.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Delete' });
    });

    it('reads the refresh schedule and window (minutes), concurrency and event bus name from context', () => {
      const app = newApp(
        {
          clientId: 'x',
          refreshSchedule: '15',
          refreshWindow: '20',
          refreshConcurrency: '4',
          eventBusName: 'team-bus',
        },
        false,
      );
      const template = Template.fromStack(
        new KrogerTokenBrokerStack(app, 'RefresherContext', { env: { account: '123456789012', region: 'eu-west-1' } }),
      );
      const busArn = 'arn:aws:events:eu-west-1:123456789012:event-bus/team-bus';
      template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(15 minutes)' });
      expect(environmentOf(template, 'Broker/Refresher')).toMatchObject({
        REFRESH_WINDOW_SECONDS: '1200',
        REFRESH_CONCURRENCY: '4',
        EVENT_BUS_NAME: busArn,
      });
      expect(policyLinesForRole(template, roleOfFunction(template, 'Broker/Refresher'))).toContain(
        `events:PutEvents -> ${busArn}`,
      );
      expect(JSON.stringify(template.toJSON())).not.toContain('event-bus/default');
    });

    it('reserves refresher concurrency only when the context asks for it', () => {
      const reserved = Template.fromStack(
        new KrogerTokenBrokerStack(newApp({ clientId: 'x', refresherReservedConcurrency: '1' }, false), 'Reserved'),
      );
      reserved.hasResourceProperties('AWS::Lambda::Function', {
        Description: Match.stringLikeRegexp('scheduled refresher'),
        ReservedConcurrentExecutions: 1,
      });
      const fromJson = Template.fromStack(
        new KrogerTokenBrokerStack(newApp({ clientId: 'x', refresherReservedConcurrency: 2 }, false), 'ReservedJson'),
      );
      fromJson.resourcePropertiesCountIs('AWS::Lambda::Function', { ReservedConcurrentExecutions: 2 }, 1);
      const unreserved = Template.fromStack(new KrogerTokenBrokerStack(newApp({ clientId: 'x' }, false), 'Unreserved'));
      unreserved.resourcePropertiesCountIs(
        'AWS::Lambda::Function',
        { ReservedConcurrentExecutions: Match.anyValue() },
        0,
      );
    });

    it('takes numbers from cdk.json as numbers', () => {
      const app = newApp({ clientId: 'x', refreshSchedule: 10, refreshWindow: 30, refreshConcurrency: 2 }, false);
      const template = Template.fromStack(new KrogerTokenBrokerStack(app, 'NumbersContext'));
      template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(10 minutes)' });
      expect(environmentOf(template, 'Broker/Refresher')).toMatchObject({
        REFRESH_WINDOW_SECONDS: '1800',
        REFRESH_CONCURRENCY: '2',
      });
    });

    it('lets explicit props win over context', () => {
      const app = newApp({ clientId: 'from-context' }, false);
      const stack = new KrogerTokenBrokerStack(app, 'PropsWin', { broker: { clientId: 'from-props' } });
      expect(environmentOf(Template.fromStack(stack), 'Broker/Login').CLIENT_ID).toBe('from-props');
    });

    it('imports an existing secret by name and grants GetSecretValue on that name only', () => {
      const app = newApp({ clientId: 'x', clientSecretName: 'shared/kroger' }, false);
      const template = Template.fromStack(new KrogerTokenBrokerStack(app, 'Imported'));
      template.resourceCountIs('AWS::SecretsManager::Secret', 0);
      expect(environmentOf(template, 'Broker/Callback').CLIENT_SECRET_ARN).toBe('shared/kroger');
      expect(policyLinesForRole(template, roleOfFunction(template, 'Broker/Callback'))).toContainEqual(
        expect.stringMatching(/^secretsmanager:GetSecretValue -> arn:.*:secret:shared\/kroger-\?{6}$/),
      );
    });

    it.each([
      [{ removalPolicy: 'keep' }, /context "removalPolicy" must be "retain" or "destroy", got "keep"/],
      [{ pkce: 'yes' }, /context "pkce" must be true or false/],
      [{ scopes: 42 }, /context "scopes" must be a space-separated string or a list of strings/],
      [{ refreshSchedule: '5m' }, /context "refreshSchedule" must be a whole number between 1 and 1440, got "5m"/],
      [{ refreshSchedule: 0 }, /context "refreshSchedule" must be a whole number between 1 and 1440, got 0/],
      [{ refreshWindow: '1.5' }, /context "refreshWindow" must be a whole number/],
      [{ refreshConcurrency: '100' }, /context "refreshConcurrency" must be a whole number between 1 and 64/],
      [
        { refresherReservedConcurrency: '0' },
        /context "refresherReservedConcurrency" must be a whole number of at least 1, got "0"/,
      ],
    ])('rejects bad context %j with a message naming the key', (context, message) => {
      const app = newApp({ clientId: 'x', ...context }, false);
      expect(() => new KrogerTokenBrokerStack(app, 'BadContext')).toThrow(message);
    });
  });

  describe('the app entry (cdk.json)', () => {
    it(
      'synthesizes with `cdk synth` and no AWS credentials, cdk-nag included',
      () => {
        const outdir = tempDir('broker-cdk-synth-');
        const env = { ...process.env };
        for (const name of Object.keys(env)) {
          if (/^(AWS_(?!CA_BUNDLE)|CDK_DEFAULT_)/.test(name)) delete env[name];
        }
        const result = spawnSync('npx', ['cdk', 'synth', '--quiet', '--output', outdir, '-c', 'clientId=app-test'], {
          cwd: PROJECT_ROOT,
          env: { ...env, AWS_EC2_METADATA_DISABLED: 'true' },
          encoding: 'utf8',
          timeout: SYNTH_TIMEOUT_MS,
        });
        expect(result.stderr).not.toMatch(/AwsSolutions-/);
        expect(result.status).toBe(0);
        const template = JSON.parse(fs.readFileSync(path.join(outdir, 'KrogerTokenBroker.template.json'), 'utf8'));
        expect(Object.keys(template.Outputs).sort()).toEqual([
          'ApiId',
          'CallbackUrl',
          'ClientSecretArn',
          'CompleteFunctionName',
          'EventBusArn',
          'FieldKeyArn',
          'HealthUrl',
          'LoginUrl',
          'RefreshFunctionName',
          'RefresherFunctionName',
          'SessionsTableName',
          'TableKeyArn',
          'TokensTableName',
        ]);
        // The client id from the command line reaches every function that talks to Kroger.
        const clientIds = Object.values<any>(template.Resources)
          .filter((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Environment?.Variables?.CLIENT_ID)
          .map((r) => r.Properties.Environment.Variables.CLIENT_ID);
        expect(clientIds).toEqual(['app-test', 'app-test', 'app-test', 'app-test']);
        const rules = Object.values<any>(template.Resources).filter((r) => r.Type === 'AWS::Events::Rule');
        expect(rules.map((r) => r.Properties.ScheduleExpression)).toEqual(['rate(5 minutes)']);
      },
      SYNTH_TIMEOUT_MS,
    );
  });
});
