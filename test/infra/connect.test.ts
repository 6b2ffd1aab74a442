/**
 * Connect links in the construct (issue 11): the complete function and who may invoke it, what the
 * link creator's grant allows (nothing that reveals a refresh token), that readers get nothing on
 * pending connections, and the `publicLogin` / `appName` settings from props and CDK context.
 * IAM as readable lines per role. No bundling: none of this depends on the code assets.
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LINK_KEY_PREFIX } from '../../functions/core/schema';
import { KrogerTokenBroker, type KrogerTokenBrokerProps } from '../../infra/broker';
import { KrogerTokenBrokerStack } from '../../infra/stack';
import { environmentOf, logicalIdOf, newApp, policyLinesForRole, propertiesOf, roleOfFunction } from './support';

const BUS = 'arn:aws:events:eu-west-1:123456789012:event-bus/default';

function synth(props: Partial<KrogerTokenBrokerProps> = {}) {
  const stack = new Stack(newApp({}, false), 'ConnectTest', { env: { account: '123456789012', region: 'eu-west-1' } });
  const broker = new KrogerTokenBroker(stack, 'Broker', { clientId: 'connect-client', ...props });
  const consumer = (id: string) =>
    new lambda.Function(stack, id, {
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => {};'),
    });
  broker.addLoginLinkCreator(consumer('AppBackend'));
  broker.addTokenReader(consumer('Reader'));
  const role = new iam.Role(stack, 'AppRole', { assumedBy: new iam.AccountRootPrincipal() });
  broker.grantCreateLoginLinks(role);
  return { broker, template: Template.fromStack(stack) };
}

describe('Construct: KrogerTokenBroker (connect links)', () => {
  const { broker, template } = synth();

  describe('the complete function', () => {
    it('may close pending connections, open their sealed tokens, store grants (sealed), publish events and log: no reads, no secret', () => {
      expect(policyLinesForRole(template, roleOfFunction(template, 'Broker/Complete'))).toEqual([
        'dynamodb:UpdateItem -> Broker/SessionsTable.Arn',
        'dynamodb:UpdateItem -> Broker/TokensTable.Arn',
        `events:PutEvents -> ${BUS}`,
        'kms:Decrypt -> Broker/FieldKey.Arn if {"StringEquals":{"kms:EncryptionContext:purpose":"sessions"}}',
        'kms:Decrypt,kms:Encrypt,kms:GenerateDataKey -> Broker/TableKey.Arn',
        'kms:GenerateDataKey -> Broker/FieldKey.Arn if {"StringEquals":{"kms:EncryptionContext:purpose":"tokens"}}',
        'logs:CreateLogStream,logs:PutLogEvents -> Broker/CompleteLogs.Arn',
      ]);
    });

    it('gets only the tables, the bus, the field key, the log level and the refresh policy: no provider settings, no secret', () => {
      expect(environmentOf(template, 'Broker/Complete')).toEqual({
        FIELD_KEY_ARN: 'Broker/FieldKey.Arn',
        LOG_LEVEL: 'INFO',
        SESSIONS_TABLE: 'Broker/SessionsTable',
        TOKENS_TABLE: 'Broker/TokensTable',
        EVENT_BUS_NAME: BUS,
        // It stores grants, so it schedules them as the other writers do.
        REFRESH_POLICY: 'eager',
        KEEP_ALIVE_SECONDS: '604800',
      });
    });

    it('runs the complete entry with a 10 s timeout, and is reachable by invocation only (no route)', () => {
      expect(propertiesOf(template, 'Broker/Complete/Resource')).toMatchObject({ Timeout: 10, MemorySize: 256 });
      const completeArn = logicalIdOf(template, 'Broker/Complete/Resource');
      const integrations = Object.values(template.findResources('AWS::ApiGatewayV2::Integration'));
      expect(JSON.stringify(integrations)).not.toContain(completeArn);
      expect(Stack.of(broker).resolve(broker.completeFunction.functionName)).toEqual({ Ref: completeArn });
    });

    it('has its own errors and throttles alarms', () => {
      expect(propertiesOf(template, 'Broker/CompleteErrorsAlarm/Resource')).toMatchObject({
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalIdOf(template, 'Broker/Complete/Resource') } }],
      });
      expect(propertiesOf(template, 'Broker/CompleteThrottlesAlarm/Resource')).toMatchObject({
        MetricName: 'Throttles',
      });
    });
  });

  describe("the link creator's grant", () => {
    const expected = [
      `dynamodb:PutItem -> Broker/SessionsTable.Arn if ${JSON.stringify({
        'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${LINK_KEY_PREFIX}*`] },
        StringEqualsIfExists: { 'dynamodb:ReturnValues': 'NONE' },
      })}`,
      'kms:Decrypt,kms:Encrypt,kms:GenerateDataKey -> Broker/TableKey.Arn',
      'lambda:InvokeFunction -> Broker/Complete.Arn',
    ];

    it('covers creating links (link keys only, returning nothing) and invoking the complete function', () => {
      expect(policyLinesForRole(template, logicalIdOf(template, 'AppBackend/ServiceRole/Resource'))).toEqual(expected);
      expect(policyLinesForRole(template, logicalIdOf(template, 'AppRole/Resource'))).toEqual(expected);
    });

    it('reveals no refresh token: no read of either table, nothing on tokens, the secret or the refresh function', () => {
      for (const line of policyLinesForRole(template, logicalIdOf(template, 'AppBackend/ServiceRole/Resource'))) {
        expect(line).not.toMatch(/dynamodb:(GetItem|BatchGetItem|Query|Scan|UpdateItem|DeleteItem)/);
        expect(line).not.toMatch(/TokensTable|ClientSecret|secretsmanager|Broker\/Refresh\b/);
      }
    });

    it('gives the backend COMPLETE_FUNCTION_NAME with the link settings', () => {
      expect(environmentOf(template, 'AppBackend')).toEqual({
        SESSIONS_TABLE: 'Broker/SessionsTable',
        LOGIN_URL: 'Broker/Api.ApiEndpoint/login',
        COMPLETE_FUNCTION_NAME: 'Broker/Complete',
      });
      expect(Object.keys(broker.loginLinkEnvironment).sort()).toEqual([
        'COMPLETE_FUNCTION_NAME',
        'LOGIN_URL',
        'SESSIONS_TABLE',
      ]);
    });
  });

  it('gives token readers nothing on the sessions table, where pending connections are', () => {
    const lines = policyLinesForRole(template, logicalIdOf(template, 'Reader/ServiceRole/Resource'));
    expect(lines.filter((line) => line.includes('SessionsTable'))).toEqual([]);
    expect(lines.filter((line) => line.includes('Broker/Complete'))).toEqual([]);
  });

  it('lets login read a link before consuming it, and the callback write a pending connection', () => {
    expect(policyLinesForRole(template, roleOfFunction(template, 'Broker/Login'))).toContain(
      'dynamodb:DeleteItem,dynamodb:GetItem,dynamodb:PutItem -> Broker/SessionsTable.Arn',
    );
    expect(policyLinesForRole(template, roleOfFunction(template, 'Broker/Callback'))).toContain(
      'dynamodb:DeleteItem,dynamodb:PutItem -> Broker/SessionsTable.Arn',
    );
  });

  describe('publicLogin and appName', () => {
    it('serve the public /login by default and name no app: PUBLIC_LOGIN=true on login and callback only', () => {
      for (const name of ['Login', 'Callback']) {
        expect(environmentOf(template, `Broker/${name}`).PUBLIC_LOGIN).toBe('true');
        expect(environmentOf(template, `Broker/${name}`)).not.toHaveProperty('APP_NAME');
      }
      for (const name of ['Refresh', 'Refresher', 'Complete']) {
        expect(environmentOf(template, `Broker/${name}`)).not.toHaveProperty('PUBLIC_LOGIN');
      }
    });

    it('pass publicLogin: false and appName from props to login and callback', () => {
      const { template: t } = synth({ publicLogin: false, appName: 'Acme Groceries' });
      for (const name of ['Login', 'Callback']) {
        expect(environmentOf(t, `Broker/${name}`)).toMatchObject({ PUBLIC_LOGIN: 'false', APP_NAME: 'Acme Groceries' });
      }
    });

    it('refuses an appName the pages cannot show, naming the prop', () => {
      expect(() => synth({ appName: 'x'.repeat(65) })).toThrow(/invalid "appName": APP_NAME must be at most 64/);
    });

    it('read the context keys publicLogin and appName', () => {
      const app = newApp({ clientId: 'ctx', publicLogin: 'false', appName: 'Acme' }, false);
      const t = Template.fromStack(new KrogerTokenBrokerStack(app, 'LinksOnly'));
      expect(environmentOf(t, 'Broker/Login')).toMatchObject({ PUBLIC_LOGIN: 'false', APP_NAME: 'Acme' });
      expect(t.toJSON().Outputs.CompleteFunctionName.Value).toEqual({ Ref: expect.stringMatching(/^BrokerComplete/) });
    });

    it('refuses a context publicLogin that is not true or false, naming the key', () => {
      const app = newApp({ clientId: 'ctx', publicLogin: 'sometimes' }, false);
      expect(() => new KrogerTokenBrokerStack(app, 'Bad')).toThrow(/context "publicLogin" must be true or false/);
    });
  });
});
