/**
 * The deployable stack: one {@link KrogerTokenBroker} configured from props or CDK context, and the
 * outputs a person needs after `cdk deploy`.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, StackProps, Token } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { KrogerTokenBroker, KrogerTokenBrokerProps } from './broker';
import {
  PLAINTEXT_FIELD_POLICIES,
  type PlaintextFieldPolicy,
  REFRESH_POLICIES,
  REFRESH_POLICY_SETTINGS,
  type RefreshPolicyName,
} from '../functions/core/schema';

/** Broker settings a stack takes; anything omitted is read from CDK context. */
export interface BrokerSettings extends Partial<Omit<KrogerTokenBrokerProps, 'clientSecret'>> {
  /**
   * Name of an existing Secrets Manager secret holding the client secret, for example the
   * `<stack name>/kroger-client-secret` a deploy before 0.2 created and retained (docs/deploy.md,
   * upgrade notes).
   * @default - the broker creates one, named by CloudFormation
   */
  readonly clientSecretName?: string;
  /**
   * ARN of an existing SNS topic (in the stack's region) every alarm notifies, on alarm and on OK;
   * an `alarmTopic` prop wins over it.
   * @default - no existing topic
   */
  readonly alarmTopicArn?: string;
  /**
   * Name of an existing event bus (in the stack's account and region) for lifecycle events; an
   * `eventBus` prop wins over it.
   * @default - the account's default bus
   */
  readonly eventBusName?: string;
}

/** Properties of {@link KrogerTokenBrokerStack}. */
export interface KrogerTokenBrokerStackProps extends StackProps {
  /**
   * Broker settings. Each one omitted falls back to the context key of the same name
   * (`cdk deploy -c clientId=... -c scopes="a b"`, or cdk.json), then to the broker's default;
   * `clientId` also falls back to the `CLIENT_ID` environment variable, and synth fails without
   * one. In context,
   * `refreshSchedule` and `refreshWindow` are whole minutes, `refresherReservedConcurrency` is a
   * whole number, `logRetention` is days, `eventBusName` names the bus, `publicLogin=false` turns the
   * public /login off, `refreshPolicy` is `eager` or `on-read` and `keepAlive` (the `keepAliveInterval`
   * of `on-read`) is whole days, 1 to 30, `plaintextFields` is `accept` or `refuse`.
   * @default - everything from context
   */
  readonly broker?: BrokerSettings;
}

/** The Kroger token broker, ready for `cdk deploy`. */
export class KrogerTokenBrokerStack extends Stack {
  public readonly broker: KrogerTokenBroker;

  constructor(scope: Construct, id: string, props: KrogerTokenBrokerStackProps = {}) {
    super(scope, id, props);
    const settings = { ...settingsFromContext(this), ...definedOnly(props.broker ?? {}) };
    const { clientSecretName, eventBusName, alarmTopicArn, ...brokerProps } = settings;

    // No placeholder: a broker deployed without its client id sends people to Kroger with a client
    // id Kroger does not know, and the deploy would look like it worked.
    const clientId = brokerProps.clientId ?? process.env.CLIENT_ID?.trim();
    if (!clientId) {
      throw new Error(
        `KrogerTokenBrokerStack "${id}": no Kroger client id: set the "clientId" context key ` +
          '(cdk deploy -c clientId=<client id of your Kroger application>), the CLIENT_ID environment variable, ' +
          'or the broker.clientId prop',
      );
    }

    this.broker = new KrogerTokenBroker(this, 'Broker', {
      ...brokerProps,
      clientId,
      clientSecret: clientSecretName
        ? secretsmanager.Secret.fromSecretNameV2(this, 'ImportedClientSecret', clientSecretName)
        : undefined,
      eventBus:
        brokerProps.eventBus ??
        (eventBusName ? events.EventBus.fromEventBusName(this, 'ImportedEventBus', eventBusName) : undefined),
      alarmTopic:
        brokerProps.alarmTopic ??
        (alarmTopicArn
          ? sns.Topic.fromTopicArn(this, 'ImportedAlarmTopic', checkedTopicArn(this, alarmTopicArn))
          : undefined),
    });

    new CfnOutput(this, 'LoginUrl', {
      value: this.broker.loginUrl,
      description: 'Open this to connect a Kroger account (on the host of CallbackUrl)',
    });
    new CfnOutput(this, 'CallbackUrl', {
      value: this.broker.redirectUrl,
      description: 'Register this exact URL as a redirect URI of your Kroger application',
    });
    new CfnOutput(this, 'TokensTableName', {
      value: this.broker.tokensTable.tableName,
      description: 'TOKENS_TABLE for token readers',
    });
    new CfnOutput(this, 'SessionsTableName', {
      value: this.broker.sessionsTable.tableName,
      description: 'SESSIONS_TABLE for an app backend that creates connect links (with LOGIN_URL = LoginUrl)',
    });
    new CfnOutput(this, 'RefreshFunctionName', {
      value: this.broker.refreshFunction.functionName,
      description: 'REFRESH_FUNCTION_NAME for token readers',
    });
    new CfnOutput(this, 'CompleteFunctionName', {
      value: this.broker.completeFunction.functionName,
      description: 'COMPLETE_FUNCTION_NAME for an app backend that completes connect links (completeConnection)',
    });
    new CfnOutput(this, 'RefresherFunctionName', {
      value: this.broker.refresherFunction.functionName,
      description: 'The scheduled refresher; invoke it with {} to run it now',
    });
    new CfnOutput(this, 'EventBusArn', {
      value: this.broker.eventBus.eventBusArn,
      description: 'Lifecycle events (source kroger-token-broker) arrive on this bus',
    });
    new CfnOutput(this, 'TableKeyArn', {
      value: this.broker.tableKey.keyArn,
      description: 'Token readers in other apps need kms:Decrypt on this key',
    });
    new CfnOutput(this, 'FieldKeyArn', {
      value: this.broker.fieldKey.keyArn,
      description: 'Encrypts refresh tokens and code verifiers; only the broker functions may use it (FIELD_KEY_ARN)',
    });
    new CfnOutput(this, 'ClientSecretArn', {
      value: this.broker.clientSecret.secretArn,
      description: 'Put the Kroger client secret here (aws secretsmanager put-secret-value)',
    });
    new CfnOutput(this, 'HealthUrl', {
      value: this.broker.healthUrl,
      description: 'GET it from an uptime check: 200 {"status":"ok","version":...} while the login function starts',
    });
    new CfnOutput(this, 'ApiId', {
      value: this.broker.api.apiId,
      description: 'The HTTP API, for an API mapping on a custom domain (docs/deploy.md)',
    });
    if (this.broker.alarmTopic) {
      new CfnOutput(this, 'AlarmTopicArn', {
        value: this.broker.alarmTopic.topicArn,
        description: 'Every alarm notifies this topic on alarm and on OK; subscribe more endpoints to it',
      });
    }
    if (brokerProps.returnToAllowlist?.length) {
      new CfnOutput(this, 'ReturnToAllowlist', {
        value: brokerProps.returnToAllowlist.join(' '),
        description: 'RETURN_TO_ALLOWLIST for connect-link creators (the tokens CLI reads it with --stack)',
      });
    }
  }
}

/** An SNS topic ARN from context, checked here so a typo is named before anything is created. */
function checkedTopicArn(scope: Construct, arn: string): string {
  if (Token.isUnresolved(arn)) return arn;
  if (!/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]{1,256}$/.test(arn)) {
    throw new Error(
      `KrogerTokenBrokerStack "${scope.node.id}": "alarmTopicArn" must be the ARN of an SNS topic (arn:aws:sns:<region>:<account>:<name>), got "${arn}"`,
    );
  }
  return arn;
}

/**
 * Reads broker settings from CDK context. Values given with `-c` arrive as strings, values in
 * cdk.json keep their JSON type; lists accept both a JSON array and a space-separated string.
 */
export function settingsFromContext(scope: Construct): BrokerSettings {
  const get = (key: string): unknown => scope.node.tryGetContext(key);
  const str = (key: string): string | undefined => {
    const value = get(key);
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string') throw new Error(`context "${key}" must be a string, got ${JSON.stringify(value)}`);
    return value;
  };
  const list = (key: string): string[] | undefined => {
    const value = get(key);
    if (value === undefined || value === null || value === '') return undefined;
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
    if (typeof value === 'string') return value.split(/\s+/).filter(Boolean);
    throw new Error(`context "${key}" must be a space-separated string or a list of strings`);
  };
  const bool = (key: string): boolean | undefined => {
    const value = get(key);
    if (value === undefined || value === null || value === '') return undefined;
    if (value === true || value === 'true') return true;
    if (value === false || value === 'false') return false;
    throw new Error(`context "${key}" must be true or false, got ${JSON.stringify(value)}`);
  };
  const wholeNumber = (key: string, max?: number): number | undefined => {
    const value = get(key);
    if (value === undefined || value === null || value === '') return undefined;
    const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || (max !== undefined && n > max)) {
      const range = max === undefined ? 'of at least 1' : `between 1 and ${max}`;
      throw new Error(`context "${key}" must be a whole number ${range}, got ${JSON.stringify(value)}`);
    }
    return n;
  };
  const minutes = (key: string): Duration | undefined => {
    const value = wholeNumber(key, 1440);
    return value === undefined ? undefined : Duration.minutes(value);
  };
  const refreshEvery = minutes('refreshSchedule');
  const retentionDays = wholeNumber('logRetention');
  const allowedRetention = Object.values(logs.RetentionDays).filter((v): v is number => typeof v === 'number');
  if (retentionDays !== undefined && !allowedRetention.includes(retentionDays)) {
    throw new Error(
      `context "logRetention" must be a number of days CloudWatch Logs offers (${allowedRetention.join(', ')}; ${logs.RetentionDays.INFINITE} keeps logs forever), got ${retentionDays}`,
    );
  }
  const policy = str('refreshPolicy');
  if (policy !== undefined && !(REFRESH_POLICIES as readonly string[]).includes(policy)) {
    throw new Error(`context "refreshPolicy" must be one of ${REFRESH_POLICIES.join(', ')}, got "${policy}"`);
  }
  const plaintext = str('plaintextFields');
  if (plaintext !== undefined && !(PLAINTEXT_FIELD_POLICIES as readonly string[]).includes(plaintext)) {
    throw new Error(
      `context "plaintextFields" must be one of ${PLAINTEXT_FIELD_POLICIES.join(', ')}, got "${plaintext}"`,
    );
  }
  const keepAliveDays = wholeNumber('keepAlive', REFRESH_POLICY_SETTINGS.KEEP_ALIVE_SECONDS.max / 86_400);
  const removal = str('removalPolicy');
  const removalPolicies: Record<string, RemovalPolicy> = {
    retain: RemovalPolicy.RETAIN,
    destroy: RemovalPolicy.DESTROY,
  };
  if (removal !== undefined && !(removal in removalPolicies)) {
    throw new Error(`context "removalPolicy" must be "retain" or "destroy", got "${removal}"`);
  }
  return definedOnly({
    clientId: str('clientId'),
    scopes: list('scopes'),
    oauth2BaseUrl: str('oauth2BaseUrl'),
    apiBaseUrl: str('apiBaseUrl'),
    issuer: str('issuer'),
    revocationUrl: str('revocationUrl'),
    redirectUrl: str('redirectUrl'),
    clientSecretName: str('clientSecretName'),
    alarmTopicArn: str('alarmTopicArn'),
    alarmEmail: str('alarmEmail'),
    returnToAllowlist: list('returnToAllowlist'),
    successRedirect: str('successRedirect'),
    pkce: bool('pkce'),
    publicLogin: bool('publicLogin'),
    plaintextFields: plaintext as PlaintextFieldPolicy | undefined,
    appName: str('appName'),
    removalPolicy: removal === undefined ? undefined : removalPolicies[removal],
    refreshSchedule: refreshEvery === undefined ? undefined : events.Schedule.rate(refreshEvery),
    refreshWindow: minutes('refreshWindow'),
    refreshConcurrency: wholeNumber('refreshConcurrency', 64),
    refreshPolicy: policy as RefreshPolicyName | undefined,
    keepAliveInterval: keepAliveDays === undefined ? undefined : Duration.days(keepAliveDays),
    refresherReservedConcurrency: wholeNumber('refresherReservedConcurrency'),
    eventBusName: str('eventBusName'),
    logRetention: retentionDays as logs.RetentionDays | undefined,
  });
}

function definedOnly<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
