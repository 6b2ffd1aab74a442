/**
 * CloudFormation logical IDs are a contract: a changed ID makes CloudFormation create a new resource
 * and delete the old one, and the retained tables, key, secret and log groups would be orphaned (the
 * data stays behind in a resource the stack no longer knows). Each configuration below is
 * synthesized and its (logical ID -> resource type) map compared, exactly, with the list committed in
 * `logical-ids.json`. An ID added or removed on purpose updates that list in the same commit, with the
 * reason in the commit message. No bundling: logical IDs do not depend on the code assets.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import { KrogerTokenBroker } from '../../infra/broker';
import { KrogerTokenBrokerStack } from '../../infra/stack';
import { newApp } from './support';

/** `logical-ids.json`: one (logical ID -> type) map per configuration. */
interface LogicalIdList {
  readonly takenAt: string;
  readonly configurations: Record<string, Record<string, string>>;
}

const EXPECTED: LogicalIdList = JSON.parse(fs.readFileSync(path.join(__dirname, 'logical-ids.json'), 'utf8'));

/** Every resource of the template as logical ID -> type, sorted by logical ID. */
function logicalIdTypes(template: Template): Record<string, string> {
  const resources = template.toJSON().Resources as Record<string, { Type: string }>;
  return Object.fromEntries(
    Object.entries(resources)
      .map(([logicalId, resource]): [string, string] => [logicalId, resource.Type])
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}

/** What `npx cdk synth -c clientId=...` deploys: the stack exactly as infra/app.ts creates it. */
function deployedStack(): Template {
  const app = newApp({ clientId: 'logical-ids-client' }, false);
  const stack = new KrogerTokenBrokerStack(app, 'KrogerTokenBroker', {
    description: 'Kroger OAuth2 token broker: hosted login, token storage and refresh',
  });
  return Template.fromStack(stack);
}

/**
 * The construct with every option that adds resources or changes which ones are created (an event
 * bus of its own, a custom redirect URL, reserved concurrency, an alarm action, an alarm e-mail, an
 * imported secret with its own key, another schedule), and every public grant used, as a consumer
 * stack would.
 */
function constructWithOptions(): Template {
  const stack = new Stack(newApp({}, false), 'LogicalIds', { env: { account: '123456789012', region: 'eu-west-1' } });
  const topic = new sns.Topic(stack, 'AlarmTopic');
  const broker = new KrogerTokenBroker(stack, 'Broker', {
    clientId: 'logical-ids-client',
    eventBus: new events.EventBus(stack, 'AppBus', { eventBusName: 'app-events' }),
    redirectUrl: 'https://auth.example.com/kroger/callback',
    returnToAllowlist: ['https://app.example.com/kroger'],
    successRedirect: 'https://app.example.com/kroger/done',
    issuer: 'https://api.kroger.com',
    revocationUrl: 'https://api.kroger.com/v1/connect/oauth2/revoke',
    clientSecret: secretsmanager.Secret.fromSecretAttributes(stack, 'ImportedSecret', {
      secretCompleteArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:kroger-AbCdEf',
      encryptionKey: kms.Key.fromKeyArn(
        stack,
        'SecretKey',
        'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555',
      ),
    }),
    refreshSchedule: events.Schedule.cron({ minute: '*/10' }),
    refreshWindow: Duration.minutes(20),
    refreshConcurrency: 4,
    refresherReservedConcurrency: 1,
    alarmAction: new actions.SnsAction(topic),
    alarmEmail: 'oncall@example.com',
    removalPolicy: RemovalPolicy.DESTROY,
    logRetention: logs.RetentionDays.ONE_WEEK,
    logLevel: 'DEBUG',
    pkce: false,
    apiThrottle: { rateLimit: 5, burstLimit: 10 },
  });
  const consumer = (id: string): lambda.Function =>
    new lambda.Function(stack, id, {
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => {};'),
    });
  broker.addTokenReader(consumer('Reader'));
  broker.addLoginLinkCreator(consumer('LinkCreator'));
  const role = new iam.Role(stack, 'AppRole', { assumedBy: new iam.AccountRootPrincipal() });
  broker.grantReadTokens(role);
  broker.grantCreateLoginLinks(role);
  new cloudwatch.Alarm(stack, 'ReauthAlarm', {
    metric: broker.metricRefresher('reauth'),
    threshold: 10,
    evaluationPeriods: 1,
  });
  return Template.fromStack(stack);
}

const CONFIGURATIONS: Record<string, () => Template> = { deployedStack, constructWithOptions };

describe('Construct: KrogerTokenBroker', () => {
  describe('Contract: CloudFormation logical IDs', () => {
    it('lists the same configurations as logical-ids.json', () => {
      expect(Object.keys(CONFIGURATIONS).sort()).toEqual(Object.keys(EXPECTED.configurations).sort());
    });

    it.each(Object.keys(CONFIGURATIONS))(
      'keeps every logical ID and resource type of the %s configuration (no resource replaced or orphaned)',
      (name) => {
        const actual = logicalIdTypes(CONFIGURATIONS[name]());
        const expected = EXPECTED.configurations[name];
        // Named first, so a failure says which IDs appeared, vanished or changed type.
        const differences = {
          added: Object.keys(actual).filter((id) => !(id in expected)),
          removed: Object.keys(expected).filter((id) => !(id in actual)),
          retyped: Object.keys(actual).filter((id) => id in expected && expected[id] !== actual[id]),
        };
        expect(differences).toEqual({ added: [], removed: [], retyped: [] });
        expect(actual).toEqual(expected);
      },
    );
  });
});
