/**
 * The deployable stack: one {@link KrogerTokenBroker} configured from props or CDK context, and the
 * outputs a person needs after `cdk deploy`.
 */
import { Annotations, CfnOutput, Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { KrogerTokenBroker, KrogerTokenBrokerProps } from './broker';

/**
 * Used when no client id is configured, so `cdk synth` works on a fresh checkout. The stack warns
 * about it; deploy with `-c clientId=...`.
 */
export const PLACEHOLDER_CLIENT_ID = 'set-me';

/** Broker settings a stack takes; anything omitted is read from CDK context. */
export interface BrokerSettings extends Partial<Omit<KrogerTokenBrokerProps, 'clientSecret'>> {
  /**
   * Name of an existing Secrets Manager secret holding the client secret.
   * @default - the broker creates one
   */
  readonly clientSecretName?: string;
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
   * `clientId` also falls back to the `CLIENT_ID` environment variable. In context,
   * `refreshSchedule` and `refreshWindow` are whole minutes, `refresherReservedConcurrency` is a
   * whole number, `eventBusName` names the bus, and `publicLogin=false` turns the public /login off.
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
    const { clientSecretName, eventBusName, ...brokerProps } = settings;

    let clientId = brokerProps.clientId ?? process.env.CLIENT_ID;
    if (!clientId) {
      clientId = PLACEHOLDER_CLIENT_ID;
      Annotations.of(this).addWarningV2(
        'kroger-token-broker:clientId',
        `no Kroger client id configured; deploy with "-c clientId=<your client id>" (using "${PLACEHOLDER_CLIENT_ID}" so synth works)`,
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
    new CfnOutput(this, 'ClientSecretArn', {
      value: this.broker.clientSecret.secretArn,
      description: 'Put the Kroger client secret here (aws secretsmanager put-secret-value)',
    });
  }
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
    returnToAllowlist: list('returnToAllowlist'),
    successRedirect: str('successRedirect'),
    pkce: bool('pkce'),
    publicLogin: bool('publicLogin'),
    appName: str('appName'),
    removalPolicy: removal === undefined ? undefined : removalPolicies[removal],
    refreshSchedule: refreshEvery === undefined ? undefined : events.Schedule.rate(refreshEvery),
    refreshWindow: minutes('refreshWindow'),
    refreshConcurrency: wholeNumber('refreshConcurrency', 64),
    refresherReservedConcurrency: wholeNumber('refresherReservedConcurrency'),
    eventBusName: str('eventBusName'),
  });
}

function definedOnly<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
