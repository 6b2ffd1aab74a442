/**
 * The broker as one L3 construct: an HTTP API with `GET /login` and `GET /callback`, a refresh
 * function other services invoke, a scheduled refresher that keeps tokens fresh, two DynamoDB tables
 * under a customer-managed KMS key, the client secret in Secrets Manager, lifecycle events on
 * EventBridge, and alarms. Every function gets only the actions it uses, and the environment variable
 * naming a resource is set by the same call that grants access to it.
 */
import * as path from 'node:path';
import { Annotations, Duration, Fn, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as apigwv1 from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import {
  DEFAULT_SCOPES,
  isAllowedTarget,
  loginUrlFromRedirect,
  parseScopes,
  parseUrlSetting,
} from '../functions/core/config';
import {
  DUE_INDEX,
  type KeyAttribute,
  METRICS_DIMENSION,
  METRICS_NAMESPACE,
  READER_ATTRIBUTES,
  REFRESHER_SETTINGS,
  type RefresherMetricName,
  SESSIONS_TABLE,
  type TableSchema,
  TOKENS_TABLE,
} from '../functions/core/schema';

/** Kroger's OAuth2 endpoints live under this base (`/authorize`, `/token`). */
export const DEFAULT_OAUTH2_BASE_URL = 'https://api.kroger.com/v1/connect/oauth2';
/** Kroger's API base (`/v1/identity/profile`). */
export const DEFAULT_API_BASE_URL = 'https://api.kroger.com';

/** The repository root: entry files and the lock file are resolved from here, not from the cwd. */
const PROJECT_ROOT = path.join(__dirname, '..');

/** Lambda entry files; each exports `handler`. A synth test fails if either side drifts. */
export const ENTRY_FILES = {
  login: path.join(PROJECT_ROOT, 'functions', 'login.ts'),
  callback: path.join(PROJECT_ROOT, 'functions', 'callback.ts'),
  refresh: path.join(PROJECT_ROOT, 'functions', 'refresh-function.ts'),
  refresher: path.join(PROJECT_ROOT, 'functions', 'scheduled-refresher.ts'),
} as const;

export type { RefresherMetricName };

/** The exported function name every entry file provides. */
export const HANDLER_EXPORT = 'handler';

/** Log levels the handlers understand (`LOG_LEVEL`); the handlers' own logger is the only filter. */
export type BrokerLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** Properties of {@link KrogerTokenBroker}. */
export interface KrogerTokenBrokerProps {
  /** The Kroger application's client id (developer portal). Not a secret. */
  readonly clientId: string;
  /**
   * Scopes requested at /login. Must include a `profile.*` scope: tokens are stored under the
   * Kroger profile id.
   * @default - `product.compact cart.basic:write profile.compact`
   */
  readonly scopes?: readonly string[];
  /**
   * Base of the authorization server's `/authorize` and `/token` endpoints.
   * @default - `https://api.kroger.com/v1/connect/oauth2`
   */
  readonly oauth2BaseUrl?: string;
  /**
   * Base of the Kroger API (the profile lookup).
   * @default - `https://api.kroger.com`
   */
  readonly apiBaseUrl?: string;
  /**
   * Expected `iss` authorization response parameter (RFC 9207).
   * @default - `iss` is not checked (a single authorization server, see RFC 9700 section 4.4)
   */
  readonly issuer?: string;
  /**
   * RFC 7009 token revocation endpoint.
   * @default - tokens are not revoked at the provider
   */
  readonly revocationUrl?: string;
  /**
   * The exact redirect URI registered with Kroger, e.g. on a custom domain in front of the API. Its
   * path must end in `/callback`; {@link KrogerTokenBroker.loginUrl} is then the same URL with
   * `/login` instead, so the login and the callback share a host (the browser-binding cookie set at
   * /login must come back to /callback).
   * @default - the API's own `${apiEndpoint}/callback`
   */
  readonly redirectUrl?: string;
  /**
   * An existing secret holding the client secret as a plain SecretString.
   * @default - a new secret named `<stack name>/kroger-client-secret` with a generated placeholder
   * value; put the real client secret into it after the first deploy
   */
  readonly clientSecret?: secretsmanager.ISecret;
  /**
   * URL prefixes a `returnTo` may point at after a successful login.
   * @default - none: the callback shows its own success page
   */
  readonly returnToAllowlist?: readonly string[];
  /**
   * Where to send the browser after a successful login; must be on `returnToAllowlist`.
   * @default - the callback's own success page
   */
  readonly successRedirect?: string;
  /**
   * What happens to the tables, their KMS key, the secret and the log groups when the stack is
   * deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * How often the scheduled refresher looks for tokens that are due. Keep the period shorter than
   * `refreshWindow`, or a token can expire between two runs (readers then refresh it on demand). A
   * rate schedule also sets the period of the refresher's metric alarms.
   * @default - every 5 minutes
   */
  readonly refreshSchedule?: events.Schedule;
  /**
   * Each run refreshes the tokens that expire within this window (and grants not refreshed for a
   * day). Longer than the schedule period, and well below the access-token lifetime (about 30
   * minutes at Kroger), or every run refreshes every user. Whole seconds, at most one day.
   * @default Duration.minutes(10)
   */
  readonly refreshWindow?: Duration;
  /**
   * How many users one refresher run refreshes at once (1 to 64).
   * @default 8
   */
  readonly refreshConcurrency?: number;
  /**
   * Reserved concurrency of the scheduled refresher, e.g. 1 for one run at a time. Reserving takes
   * that much from the account's unreserved concurrency, and deploying fails when less than 100
   * would remain: accounts at the default limit of 10 concurrent executions cannot reserve any.
   * @default - none: overlapping runs are safe, each user is single-flight through a DynamoDB lease
   */
  readonly refresherReservedConcurrency?: number;
  /**
   * The bus lifecycle events (`token.connected`, `token.refresh_failed`, `token.reauth_required`,
   * `token.recovered`, source `kroger-token-broker`) are put on. A bus in another account needs a
   * resource policy there that lets this account put events.
   * @default - the account's default event bus
   */
  readonly eventBus?: events.IEventBus;
  /**
   * Retention of the function and API access log groups.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Level of the handlers' logs (`LOG_LEVEL`).
   * @default 'INFO'
   */
  readonly logLevel?: BrokerLogLevel;
  /**
   * Send PKCE S256 (RFC 7636); turn off only for a provider that rejects it.
   * @default true
   */
  readonly pkce?: boolean;
  /**
   * Default-route throttling of the HTTP API stage; /login and /callback are public.
   * @default - 20 requests per second, bursts of 40
   */
  readonly apiThrottle?: apigwv2.ThrottleSettings;
  /**
   * An action (e.g. an SNS topic) every alarm notifies.
   * @default - alarms have no action; add one through `alarms`
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
}

/** What a token reader (another service) needs in its environment. */
export interface TokenReaderEnvironment {
  readonly TOKENS_TABLE: string;
  readonly REFRESH_FUNCTION_NAME: string;
}

/** What an app backend creating connect links (`createLoginLink`) needs in its environment. */
export interface LoginLinkEnvironment {
  readonly SESSIONS_TABLE: string;
  /** The broker's `/login` ({@link KrogerTokenBroker.loginUrl}); a link is this URL plus `?session=`. */
  readonly LOGIN_URL: string;
  /**
   * Set only when the broker has a `returnToAllowlist`: `createLoginLink` checks a `returnTo`
   * against it before writing the link (/login checks it again).
   */
  readonly RETURN_TO_ALLOWLIST?: string;
}

/**
 * A serverless OAuth2 token broker for the Kroger API.
 *
 * @example
 * const broker = new KrogerTokenBroker(this, 'Broker', { clientId: 'my-app-123' });
 * // GetItem on tokens, kms:Decrypt, lambda:InvokeFunction on refresh; sets TOKENS_TABLE and
 * // REFRESH_FUNCTION_NAME. For a role or user: broker.grantReadTokens(role) + broker.readerEnvironment.
 * broker.addTokenReader(myServiceFunction);
 * // PutItem on sessions and the table key; sets SESSIONS_TABLE and LOGIN_URL (createLoginLink).
 * broker.addLoginLinkCreator(myBackendFunction);
 */
export class KrogerTokenBroker extends Construct {
  /** The HTTP API serving /login and /callback. */
  public readonly api: apigwv2.HttpApi;
  /** The `$default` stage (access logs, throttling). */
  public readonly stage: apigwv2.HttpStage;
  /**
   * Where a person starts the login: `redirectUrl` with its trailing `/callback` replaced by
   * `/login`, so the browser-binding cookie set here is sent to the callback.
   */
  public readonly loginUrl: string;
  /** The callback; register this exact URL with Kroger as the redirect URI. */
  public readonly callbackUrl: string;
  /** The redirect URI sent to Kroger (`callbackUrl` unless overridden). */
  public readonly redirectUrl: string;
  /** One item per user: the tokens. Readers get `GetItem` only, through {@link grantReadTokens}. */
  public readonly tokensTable: dynamodb.Table;
  /** Login attempts and connect links; token readers are never granted this table. */
  public readonly sessionsTable: dynamodb.Table;
  /** The customer-managed key encrypting both tables. */
  public readonly tableKey: kms.Key;
  /** The client secret (a plain SecretString). */
  public readonly clientSecret: secretsmanager.ISecret;
  public readonly loginFunction: NodejsFunction;
  public readonly callbackFunction: NodejsFunction;
  /** Refreshes one user's tokens; invoked with `{"userId": "...", "force"?: boolean}`. */
  public readonly refreshFunction: NodejsFunction;
  /**
   * Refreshes every user that is due, on {@link refreshSchedule}. Runs may overlap (unless
   * `refresherReservedConcurrency` is set); each user is refreshed by one process at a time.
   */
  public readonly refresherFunction: NodejsFunction;
  /** The EventBridge rule that starts {@link refresherFunction}. */
  public readonly refreshRule: events.Rule;
  /** Where lifecycle events go (callback, refresh and refresher may put events here, nowhere else). */
  public readonly eventBus: events.IEventBus;
  /**
   * Errors and throttles of each function, the API's 5xx, and the refresher's persistent failures
   * and backlog.
   */
  public readonly alarms: readonly cloudwatch.Alarm[];
  /** The refresher's schedule. */
  public readonly refreshSchedule: events.Schedule;
  /** The environment a token reader needs: `TOKENS_TABLE` and `REFRESH_FUNCTION_NAME`. */
  public readonly readerEnvironment: TokenReaderEnvironment;
  /**
   * The environment an app backend creating connect links needs: `SESSIONS_TABLE`, `LOGIN_URL`
   * (and `RETURN_TO_ALLOWLIST` when the broker has one).
   */
  public readonly loginLinkEnvironment: LoginLinkEnvironment;

  private readonly logRetention: logs.RetentionDays;
  private readonly removalPolicy: RemovalPolicy;
  private readonly logLevel: BrokerLogLevel;

  constructor(scope: Construct, id: string, props: KrogerTokenBrokerProps) {
    super(scope, id);
    validateProps(props);

    this.removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    this.logLevel = props.logLevel ?? 'INFO';
    this.refreshSchedule = props.refreshSchedule ?? events.Schedule.rate(Duration.minutes(5));
    const refreshWindow = props.refreshWindow ?? Duration.seconds(REFRESHER_SETTINGS.REFRESH_WINDOW_SECONDS.default);
    const schedulePeriod = ratePeriod(this.refreshSchedule);
    if (
      schedulePeriod &&
      !refreshWindow.isUnresolved() &&
      schedulePeriod.toSeconds() > refreshWindow.toSeconds({ integral: false })
    ) {
      Annotations.of(this).addWarningV2(
        'kroger-token-broker:refreshWindow',
        `refreshWindow (${refreshWindow.toHumanString()}) is shorter than the refresh schedule period (${schedulePeriod.toHumanString()}): tokens can expire between two runs; readers then refresh them on demand`,
      );
    }
    // Without a bus prop, events go to the account's default bus (in the stack's region).
    this.eventBus = props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');

    this.tableKey = new kms.Key(this, 'TableKey', {
      description: 'Encrypts the Kroger token broker tables (tokens, login sessions)',
      enableKeyRotation: true,
      // Retaining a table while deleting its key would leave the table unreadable.
      removalPolicy: this.removalPolicy,
    });
    this.tokensTable = this.createTable('TokensTable', TOKENS_TABLE);
    this.sessionsTable = this.createTable('SessionsTable', SESSIONS_TABLE);
    this.clientSecret = props.clientSecret ?? this.createClientSecret();

    this.api = new apigwv2.HttpApi(this, 'Api', {
      description: 'Kroger token broker: hosted login and OAuth2 callback',
      // The stage is created below so it can carry access logs and throttling.
      createDefaultStage: false,
    });
    this.stage = this.createStage(props.apiThrottle ?? { rateLimit: 20, burstLimit: 40 });
    this.callbackUrl = `${this.api.apiEndpoint}/callback`;
    this.redirectUrl = props.redirectUrl ?? this.callbackUrl;
    // Login and callback on one host: the browser-binding cookie /login sets (host-only) must be
    // sent to the callback Kroger redirects to.
    this.loginUrl = props.redirectUrl ? loginUrlFor(props.redirectUrl) : `${this.api.apiEndpoint}/login`;

    const common: Record<string, string> = {
      CLIENT_ID: props.clientId,
      OAUTH2_BASE_URL: props.oauth2BaseUrl ?? DEFAULT_OAUTH2_BASE_URL,
      API_BASE_URL: props.apiBaseUrl ?? DEFAULT_API_BASE_URL,
      REDIRECT_URL: this.redirectUrl,
      SCOPES: (props.scopes ?? DEFAULT_SCOPES).join(' '),
      PKCE: String(props.pkce ?? true),
      LOG_LEVEL: this.logLevel,
      ...optionalEnv('OAUTH2_ISSUER', props.issuer),
      ...optionalEnv('OAUTH2_REVOCATION_URL', props.revocationUrl),
      ...optionalEnv('RETURN_TO_ALLOWLIST', props.returnToAllowlist?.join(' ')),
      ...optionalEnv('SUCCESS_REDIRECT', props.successRedirect),
    };

    this.loginFunction = this.createFunction('Login', {
      entry: ENTRY_FILES.login,
      description: 'Kroger token broker: GET /login (starts the authorization code flow)',
      // Only writes a login attempt and redirects: no provider call to wait for.
      timeout: Duration.seconds(5),
      memorySize: 256,
      environment: common,
    });
    // Writes the login attempt; deletes (consumes) a one-time connect link.
    this.grantSessions(this.loginFunction, 'dynamodb:PutItem', 'dynamodb:DeleteItem');
    // The handlers read their whole config at start, so login knows the tokens table's name, but it
    // is granted nothing on that table and nothing on the secret.
    this.loginFunction.addEnvironment('TOKENS_TABLE', this.tokensTable.tableName);

    this.callbackFunction = this.createFunction('Callback', {
      entry: ENTRY_FILES.callback,
      description: 'Kroger token broker: GET /callback (code exchange, profile lookup, token storage)',
      // Two provider calls of at most PROVIDER_TIMEOUT_MS (8 s) each, one after the other, plus the
      // secret on a cold start: 25 s fits them and stays inside API Gateway's 30 s limit.
      timeout: Duration.seconds(25),
      memorySize: 256,
      environment: common,
    });
    // The login attempt is consumed by a conditional delete, exactly once.
    this.grantSessions(this.callbackFunction, 'dynamodb:DeleteItem');
    this.grantTokens(this.callbackFunction, 'dynamodb:GetItem', 'dynamodb:UpdateItem');
    this.grantClientSecret(this.callbackFunction);
    // token.connected, token.recovered (a reconnect after reauth_required).
    this.grantPutEvents(this.callbackFunction);

    this.refreshFunction = this.createFunction('Refresh', {
      entry: ENTRY_FILES.refresh,
      description: 'Kroger token broker: refreshes one user\'s tokens ({"userId": "...", "forceRefresh"?: boolean})',
      // A caller may first wait up to 12 s for another process's refresh, then make one provider
      // call of at most 8 s: the function must outlive both.
      timeout: Duration.seconds(30),
      memorySize: 256,
      environment: common,
    });
    this.grantTokens(this.refreshFunction, 'dynamodb:GetItem', 'dynamodb:UpdateItem');
    this.grantClientSecret(this.refreshFunction);
    // token.refresh_failed, token.reauth_required, token.recovered.
    this.grantPutEvents(this.refreshFunction);
    // Name only (shared config reads it); refresh is granted nothing on the sessions table.
    this.refreshFunction.addEnvironment('SESSIONS_TABLE', this.sessionsTable.tableName);

    this.refresherFunction = this.createFunction('Refresher', {
      entry: ENTRY_FILES.refresher,
      description: 'Kroger token broker: scheduled refresher (refreshes every user due within the window)',
      // The handler stops starting users 45 s before the timeout and leaves them for the next run.
      timeout: Duration.minutes(5),
      memorySize: 512,
      // Not reserved unless asked for: reserving fails the deploy in accounts at the default limit
      // of 10 concurrent executions. Overlapping runs are safe: each user's refresh takes a
      // DynamoDB lease, so two runs never refresh one user twice; the second skips that user.
      reservedConcurrentExecutions: props.refresherReservedConcurrency,
      environment: {
        ...common,
        REFRESH_WINDOW_SECONDS: String(refreshWindow.toSeconds()),
        REFRESH_CONCURRENCY: String(props.refreshConcurrency ?? REFRESHER_SETTINGS.REFRESH_CONCURRENCY.default),
      },
    });
    // GetItem re-reads the due user; UpdateItem takes the lease, stores the refreshed tokens and
    // records failures. No Scan, no Query on the table: due users come from the index only.
    this.grantTokens(this.refresherFunction, 'dynamodb:GetItem', 'dynamodb:UpdateItem');
    this.grantDueIndex(this.refresherFunction);
    this.grantClientSecret(this.refresherFunction);
    this.grantPutEvents(this.refresherFunction);
    // Name only (shared config reads it); the refresher is granted nothing on the sessions table.
    this.refresherFunction.addEnvironment('SESSIONS_TABLE', this.sessionsTable.tableName);
    // A run that fails is not retried, and one that cannot start within a period (throttled) is
    // dropped: the next scheduled run does the same work, and retries would only stack up runs.
    const staleAfter = clampDuration(schedulePeriod ?? Duration.minutes(5), 60, 6 * 3600);
    this.refresherFunction.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: staleAfter });
    this.refreshRule = new events.Rule(this, 'RefreshSchedule', {
      description: 'Kroger token broker: starts the scheduled refresher',
      schedule: this.refreshSchedule,
      targets: [
        new targets.LambdaFunction(this.refresherFunction, {
          retryAttempts: 2,
          maxEventAge: staleAfter,
        }),
      ],
    });

    this.addRoute('/login', 'LoginIntegration', this.loginFunction);
    this.addRoute('/callback', 'CallbackIntegration', this.callbackFunction);

    this.readerEnvironment = {
      TOKENS_TABLE: this.tokensTable.tableName,
      REFRESH_FUNCTION_NAME: this.refreshFunction.functionName,
    };
    this.loginLinkEnvironment = {
      SESSIONS_TABLE: this.sessionsTable.tableName,
      LOGIN_URL: this.loginUrl,
      ...optionalEnv('RETURN_TO_ALLOWLIST', props.returnToAllowlist?.join(' ')),
    };
    this.alarms = this.createAlarms(props.alarmAction, clampDuration(schedulePeriod ?? Duration.minutes(5), 60, 3600));
  }

  /**
   * A count the refresher publishes once per run (Embedded Metric Format, no dimensions), summed
   * over `props.period` (default 5 minutes): for dashboards and alarms of your own, e.g. on `reauth`.
   */
  public metricRefresher(metricName: RefresherMetricName, props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      // The refresher's metric line carries its function name as the one dimension (the logger's
      // `function` field), so two broker stacks in one account and region never share an alarm.
      dimensionsMap: { [METRICS_DIMENSION]: this.refresherFunction.functionName },
      statistic: 'Sum',
      period: Duration.minutes(5),
      ...props,
    });
  }

  /**
   * Lets another service read tokens: `dynamodb:GetItem` on the tokens table, limited to the
   * attributes in `READER_ATTRIBUTES` (functions/adapters/token-store.ts: the access token and its
   * status, never the refresh token), `kms:Decrypt` on the table key, and `lambda:InvokeFunction` on
   * the refresh function (to refresh a token on demand). It grants nothing on the sessions table and
   * nothing on the client secret. Give the reader {@link readerEnvironment} (or use
   * {@link addTokenReader} for a Lambda function).
   *
   * A reader's GetItem must carry a ProjectionExpression naming only those attributes; one without
   * a projection asks for every attribute and is denied.
   * @see https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_dynamodb_attributes.html
   */
  public grantReadTokens(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:GetItem'],
      resourceArns: [this.tokensTable.tableArn],
      conditions: {
        // Every attribute the request names (key, projection) must be on the list...
        'ForAllValues:StringEquals': { 'dynamodb:Attributes': [...READER_ATTRIBUTES] },
        // ...and it must return only the projected ones.
        StringEqualsIfExists: { 'dynamodb:Select': 'SPECIFIC_ATTRIBUTES' },
      },
    })
      .combine(this.grantKey(grantee, 'kms:Decrypt'))
      .combine(
        iam.Grant.addToPrincipal({
          grantee,
          actions: ['lambda:InvokeFunction'],
          // The unqualified ARN only: readers invoke $LATEST, never a pinned version.
          resourceArns: [this.refreshFunction.functionArn],
        }),
      );
  }

  /** {@link grantReadTokens} plus the reader's environment (`TOKENS_TABLE`, `REFRESH_FUNCTION_NAME`). */
  public addTokenReader(fn: lambda.Function): iam.Grant {
    for (const [name, value] of Object.entries(this.readerEnvironment)) {
      fn.addEnvironment(name, value);
    }
    return this.grantReadTokens(fn);
  }

  /**
   * Lets an app backend create connect links (`createLoginLink`, which writes one item with a
   * conditional `PutItem`): `dynamodb:PutItem` on the sessions table and `kms:Decrypt`,
   * `kms:Encrypt`, `kms:GenerateDataKey` on the table key (DynamoDB uses the key on the caller's
   * behalf). Nothing else on the sessions table (it cannot read or consume links or login
   * attempts), nothing on the tokens table, nothing on the client secret. Give the backend
   * {@link loginLinkEnvironment} (or use {@link addLoginLinkCreator} for a Lambda function).
   */
  public grantCreateLoginLinks(grantee: iam.IGrantable): iam.Grant {
    return this.grantTable(grantee, this.sessionsTable, ['dynamodb:PutItem']);
  }

  /**
   * {@link grantCreateLoginLinks} plus the backend's environment (`SESSIONS_TABLE`, `LOGIN_URL`,
   * and `RETURN_TO_ALLOWLIST` when set).
   */
  public addLoginLinkCreator(fn: lambda.Function): iam.Grant {
    for (const [name, value] of Object.entries(this.loginLinkEnvironment)) {
      fn.addEnvironment(name, value);
    }
    return this.grantCreateLoginLinks(fn);
  }

  /**
   * A table from its schema (functions/core/schema.ts, which DynamoDB Local's tables come from too).
   * The tokens table's `due` index is sparse: only `active` users carry `refreshShard`, so the
   * refresher queries due items per shard instead of scanning. Keys only: the refresher reads the
   * item it refreshes through the lease update.
   */
  private createTable(id: string, schema: TableSchema): dynamodb.Table {
    const table = new dynamodb.Table(this, id, {
      partitionKey: cdkKey(schema.partitionKey),
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      // The sessions table's items live for minutes, so a restore is of little use there; it stays
      // tiny, so PITR costs next to nothing and both tables keep one backup posture (AwsSolutions-DDB3).
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.tableKey,
      timeToLiveAttribute: schema.ttlAttribute,
      removalPolicy: this.removalPolicy,
    });
    for (const index of schema.indexes) {
      table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: cdkKey(index.partitionKey),
        sortKey: index.sortKey && cdkKey(index.sortKey),
        projectionType: dynamodb.ProjectionType[index.projection],
      });
    }
    return table;
  }

  private createClientSecret(): secretsmanager.Secret {
    const secret = new secretsmanager.Secret(this, 'ClientSecret', {
      // Scoped by stack name so two stages can live in one account and region.
      secretName: `${Stack.of(this).stackName}/kroger-client-secret`,
      description: 'Kroger OAuth2 client secret (plain SecretString); replace the placeholder after deploy',
      // A random placeholder until the real value is put in; the value never appears in the template.
      generateSecretString: { excludePunctuation: true, passwordLength: 32 },
      removalPolicy: this.removalPolicy,
    });
    Validations.of(secret).acknowledge({
      id: 'AwsSolutions::AwsSolutions-SMG4',
      reason:
        'The value is a client secret issued by Kroger; it can only be rotated in the Kroger developer portal, so there is no rotation Lambda to schedule.',
    });
    return secret;
  }

  private createStage(throttle: apigwv2.ThrottleSettings): apigwv2.HttpStage {
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: this.logRetention,
      removalPolicy: this.removalPolicy,
    });
    return new apigwv2.HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      autoDeploy: true,
      throttle,
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        // routeKey, not the raw path or query: the query of /callback carries the one-time code
        // and state, which must never be logged.
        format: apigwv1.AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            requestTime: '$context.requestTime',
            ip: '$context.identity.sourceIp',
            userAgent: '$context.identity.userAgent',
            routeKey: '$context.routeKey',
            status: '$context.status',
            responseLength: '$context.responseLength',
            responseLatency: '$context.responseLatency',
            integrationStatus: '$context.integrationStatus',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
  }

  private createFunction(
    id: string,
    options: {
      entry: string;
      description: string;
      timeout: Duration;
      memorySize: number;
      reservedConcurrentExecutions?: number;
      environment: Record<string, string>;
    },
  ): NodejsFunction {
    const logGroup = new logs.LogGroup(this, `${id}Logs`, {
      retention: this.logRetention,
      removalPolicy: this.removalPolicy,
    });
    // An own role instead of AWSLambdaBasicExecutionRole: that managed policy allows writing to
    // every log group in the account; this one writes to the function's own log group only.
    const role = new iam.Role(this, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Kroger token broker ${id} function`,
    });
    iam.Grant.addToPrincipal({
      grantee: role,
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resourceArns: [logGroup.logGroupArn],
    });

    const fn = new NodejsFunction(this, id, {
      entry: options.entry,
      handler: HANDLER_EXPORT,
      description: options.description,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: options.memorySize,
      timeout: options.timeout,
      reservedConcurrentExecutions: options.reservedConcurrentExecutions,
      role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      // LOG_LEVEL, applied by the handlers' own logger, is the only filter. Lambda's filter drops
      // JSON lines by their `level` field, and would drop the refresher's metric line (written at
      // INFO whatever LOG_LEVEL is, so metrics never vanish) under a WARN filter. TRACE lets every
      // line through; leaving the level unset would not, as JSON format then filters at INFO and
      // drops the handlers' DEBUG lines.
      applicationLogLevelV2: lambda.ApplicationLogLevel.TRACE,
      environment: options.environment,
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      bundling: {
        // Local esbuild only: this must synth on a machine without Docker or network.
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        // The same bundle must run on nodejs22.x as well as the nodejs24.x it is deployed on.
        target: 'node22',
        // Prefer the SDK's ES module builds: they tree-shake much better.
        mainFields: ['module', 'main'],
        minify: true,
        sourceMap: true,
        // A .map file beside the bundle, for decoding a stack by hand. NODE_OPTIONS=--enable-source-maps
        // is deliberately not set: it costs about 20% of the import time at every cold start (measured
        // by `npm run bench`), and the logs carry error names and codes, not stacks.
        sourceMapMode: SourceMapMode.DEFAULT,
        sourcesContent: false,
        // Bundling the SDK v3 clients beats loading the runtime's copy at init, and pins the version
        // the tests ran against. The one exception is EventBridge: it is loaded only on the first
        // publish (a dynamic import), and a single-file bundle would parse its 55 KB at every cold
        // start anyway, so it comes from the runtime's own SDK v3 when it is needed.
        bundleAwsSDK: true,
        externalModules: ['@aws-sdk/client-eventbridge'],
        // Some CommonJS dependencies call require() for Node built-ins; give ESM output one.
        banner:
          "import { createRequire as __brokerCreateRequire } from 'node:module'; const require = __brokerCreateRequire(import.meta.url);",
      },
    });
    return fn;
  }

  /** Grants actions on the tokens table (and the table key) and sets `TOKENS_TABLE`. */
  private grantTokens(fn: lambda.Function, ...actions: string[]): void {
    this.grantTable(fn, this.tokensTable, actions);
    fn.addEnvironment('TOKENS_TABLE', this.tokensTable.tableName);
  }

  /** Grants actions on the sessions table (and the table key) and sets `SESSIONS_TABLE`. */
  private grantSessions(fn: lambda.Function, ...actions: string[]): void {
    this.grantTable(fn, this.sessionsTable, actions);
    fn.addEnvironment('SESSIONS_TABLE', this.sessionsTable.tableName);
  }

  private grantTable(grantee: iam.IGrantable, table: dynamodb.Table, actions: string[]): iam.Grant {
    // The table ARN only: Table.grant() would add `<table>/index/*`; only the refresher queries an
    // index, and it gets that one index alone (grantDueIndex).
    const grant = iam.Grant.addToPrincipal({ grantee, actions, resourceArns: [table.tableArn] });
    // DynamoDB uses the CMK on the caller's behalf: reads need Decrypt; writers get Encrypt and
    // GenerateDataKey as well, named explicitly instead of the `kms:GenerateDataKey*`/`ReEncrypt*`
    // wildcards of Table.grantWriteData().
    const writes = actions.some((action) => action !== 'dynamodb:GetItem');
    return grant.combine(
      writes
        ? this.grantKey(grantee, 'kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey')
        : this.grantKey(grantee, 'kms:Decrypt'),
    );
  }

  /**
   * `dynamodb:Query` on the `due` index only (not the table, not `index/*`). The function also needs
   * `kms:Decrypt` on the table key, which grantTokens gives.
   */
  private grantDueIndex(fn: lambda.Function): void {
    iam.Grant.addToPrincipal({
      grantee: fn,
      actions: ['dynamodb:Query'],
      resourceArns: [`${this.tokensTable.tableArn}/index/${DUE_INDEX}`],
    });
  }

  /**
   * `events:PutEvents` on the broker's bus only, and `EVENT_BUS_NAME`. The ARN, not the name, goes
   * into the variable: PutEvents takes either, and only the ARN reaches a bus in another account.
   */
  private grantPutEvents(fn: lambda.Function): void {
    iam.Grant.addToPrincipal({ grantee: fn, actions: ['events:PutEvents'], resourceArns: [this.eventBus.eventBusArn] });
    fn.addEnvironment('EVENT_BUS_NAME', this.eventBus.eventBusArn);
  }

  private grantKey(grantee: iam.IGrantable, ...actions: string[]): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions, resourceArns: [this.tableKey.keyArn] });
  }

  /**
   * `secretsmanager:GetSecretValue` on the client secret (and `kms:Decrypt` through Secrets Manager
   * when the secret has its own key), and `CLIENT_SECRET_ARN`. The value itself never goes into
   * the environment.
   */
  private grantClientSecret(fn: lambda.Function): void {
    const secret = this.clientSecret;
    iam.Grant.addToPrincipal({
      grantee: fn,
      actions: ['secretsmanager:GetSecretValue'],
      // An imported-by-name secret has no full ARN; its ARN then ends in a 6-character suffix.
      resourceArns: [secret.secretFullArn ?? `${secret.secretArn}-??????`],
    });
    if (secret.encryptionKey) {
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: [secret.encryptionKey.keyArn],
          conditions: {
            StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` },
          },
        }),
      );
    }
    // GetSecretValue takes an ARN or a name; an imported-by-name secret has no full ARN to give.
    fn.addEnvironment('CLIENT_SECRET_ARN', secret.secretFullArn ?? secret.secretName);
  }

  private addRoute(routePath: string, integrationId: string, fn: lambda.IFunction): void {
    const [route] = this.api.addRoutes({
      path: routePath,
      methods: [apigwv2.HttpMethod.GET],
      integration: new HttpLambdaIntegration(integrationId, fn),
    });
    Validations.of(route).acknowledge({
      id: 'AwsSolutions::AwsSolutions-APIG4',
      reason: `${routePath} is public by design: a person's browser reaches it before any identity exists; the OAuth2 state, PKCE and the browser-binding cookie protect the flow.`,
    });
  }

  /**
   * @param runPeriod the schedule period (a rate schedule's, else 5 minutes): one refresher run per
   * datapoint of the refresher's metric alarms
   */
  private createAlarms(action: cloudwatch.IAlarmAction | undefined, runPeriod: Duration): cloudwatch.Alarm[] {
    const period = Duration.minutes(5);
    const alarm = (
      id: string,
      metric: cloudwatch.IMetric,
      description: string,
      options: Partial<cloudwatch.AlarmProps> = {},
    ): cloudwatch.Alarm => {
      const created = new cloudwatch.Alarm(this, id, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        // No traffic is not a failure.
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
        ...options,
      });
      if (action) created.addAlarmAction(action);
      return created;
    };
    const alarms: cloudwatch.Alarm[] = [];
    const functions: Array<[string, lambda.Function]> = [
      ['Login', this.loginFunction],
      ['Callback', this.callbackFunction],
      ['Refresh', this.refreshFunction],
    ];
    for (const [name, fn] of functions) {
      alarms.push(
        alarm(
          `${name}ErrorsAlarm`,
          fn.metricErrors({ period, statistic: 'Sum' }),
          `${name} function errors (unhandled failures, timeouts)`,
        ),
        alarm(`${name}ThrottlesAlarm`, fn.metricThrottles({ period, statistic: 'Sum' }), `${name} function throttled`),
      );
    }
    alarms.push(
      alarm(
        'Api5xxAlarm',
        this.stage.metricServerError({ period, statistic: 'Sum' }),
        'HTTP API returned 5xx responses',
      ),
    );

    // The refresher. An error is a whole run lost (bad config, a missing permission, the index query
    // failing, a timeout), not one user: alarm on the first. No throttle alarm: with reserved
    // concurrency a throttle is a tick that came while the previous run was still going (by design;
    // the backlog alarm below reports a refresher that cannot keep up); without, it is the account
    // out of concurrency, which the other functions' throttle alarms report.
    alarms.push(
      alarm(
        'RefresherErrorsAlarm',
        this.refresherFunction.metricErrors({ period, statistic: 'Sum' }),
        'Refresher run failed as a whole (unhandled error or timeout): no user was refreshed by that run',
      ),
    );
    // Per-user counts from the run's metric line. One failed refresh is routine (a provider blip,
    // a user whose lease another process holds) and is retried with back-off, and readers refresh
    // on demand anyway; failures in three runs in a row mean the provider, the network or the client
    // credentials are broken for everyone. Missing data (no run finished) neither fires nor clears
    // these: that is the errors alarm's business.
    const everyRun = {
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      treatMissingData: cloudwatch.TreatMissingData.MISSING,
    };
    alarms.push(
      alarm(
        'RefresherFailuresAlarm',
        this.metricRefresher('failed', { period: runPeriod }),
        'Refresher: token refreshes failed in 3 consecutive runs (provider down, network, or client credentials wrong); see token.refresh_failed events and the refresher log',
        everyRun,
      ),
      // Users left for the next run because the run reached its deadline, three runs in a row: the
      // refresher is not keeping up (raise refreshConcurrency, or look at provider latency).
      alarm(
        'RefresherBacklogAlarm',
        this.metricRefresher('deferred', { period: runPeriod }),
        'Refresher: due users deferred to the next run in 3 consecutive runs (not keeping up)',
        everyRun,
      ),
    );
    // No alarm on `reauth`: a user revoking access is normal, one token.reauth_required event per
    // user tells the app to ask for a new login, and no fixed threshold fits every user base. Build
    // one from metricRefresher('reauth') if a burst should page someone.
    return alarms;
  }
}

/** A schema key attribute as CDK's table props want it. */
function cdkKey(key: KeyAttribute): dynamodb.Attribute {
  return { name: key.name, type: key.type === 'S' ? dynamodb.AttributeType.STRING : dynamodb.AttributeType.NUMBER };
}

/** The period of a `rate(...)` schedule; undefined for cron schedules. */
function ratePeriod(schedule: events.Schedule): Duration | undefined {
  const match = /^rate\((\d+) (minute|hour|day)s?\)$/.exec(schedule.expressionString);
  if (!match) return undefined;
  const amount = Number(match[1]);
  return { minute: Duration.minutes, hour: Duration.hours, day: Duration.days }[match[2] as 'minute' | 'hour' | 'day'](
    amount,
  );
}

function clampDuration(value: Duration, minSeconds: number, maxSeconds: number): Duration {
  return Duration.seconds(Math.min(maxSeconds, Math.max(minSeconds, value.toSeconds())));
}

function optionalEnv(name: string, value: string | undefined): Record<string, string> {
  return value === undefined || value === '' ? {} : { [name]: value };
}

/**
 * The login URL on the host and path of a redirect URI: its trailing `/callback` becomes `/login`
 * (query dropped), as `createLoginLink` derives it from `REDIRECT_URL`. An unresolved token (a
 * deploy-time value) is cut at its first `/callback` in CloudFormation instead.
 */
function loginUrlFor(redirectUrl: string): string {
  if (Token.isUnresolved(redirectUrl)) {
    return Fn.join('', [Fn.select(0, Fn.split('/callback', redirectUrl)), '/login']);
  }
  return loginUrlFromRedirect(redirectUrl);
}

/**
 * Validates props before anything is created, with messages that say which prop to fix. The URL
 * and scope rules are the handlers' own (functions/core/config.ts), so infra and runtime agree.
 */
function validateProps(props: KrogerTokenBrokerProps): void {
  const fail = (prop: string, message: string): never => {
    throw new Error(`KrogerTokenBroker: invalid "${prop}": ${message}`);
  };
  const check = (prop: string, run: () => unknown): void => {
    try {
      run();
    } catch (error) {
      fail(prop, (error as Error).message);
    }
  };
  const resolved = (value: string | undefined): value is string => value !== undefined && !Token.isUnresolved(value);

  if (typeof props.clientId !== 'string' || (!Token.isUnresolved(props.clientId) && props.clientId.trim() === '')) {
    fail('clientId', 'set it to the client id of your Kroger application (developer portal)');
  }
  if (props.scopes !== undefined && !props.scopes.some((s) => Token.isUnresolved(s))) {
    check('scopes', () => parseScopes(props.scopes!.join(' ')));
  }
  const urls: Array<[string, string | undefined]> = [
    ['oauth2BaseUrl', props.oauth2BaseUrl],
    ['apiBaseUrl', props.apiBaseUrl],
    ['issuer', props.issuer],
    ['revocationUrl', props.revocationUrl],
    ['redirectUrl', props.redirectUrl],
    ['successRedirect', props.successRedirect],
    ...(props.returnToAllowlist ?? []).map((entry): [string, string] => ['returnToAllowlist', entry]),
  ];
  for (const [prop, value] of urls) {
    if (!resolved(value)) continue;
    check(prop, () => parseUrlSetting(prop, value));
    // The handlers accept plain http on localhost for local runs; a deployed broker never does.
    if (new URL(value).protocol !== 'https:') fail(prop, `must be an https URL, got "${value}"`);
  }
  if (resolved(props.redirectUrl) && new URL(props.redirectUrl).hash) {
    fail('redirectUrl', 'a redirect URI must not have a fragment (RFC 6749 section 3.1.2)');
  }
  if (resolved(props.redirectUrl) && !/\/callback\/?$/.test(new URL(props.redirectUrl).pathname)) {
    fail(
      'redirectUrl',
      `its path must end in /callback (the broker's route), so /login can be served from the same host; got "${props.redirectUrl}"`,
    );
  }
  if (props.refreshWindow !== undefined && !props.refreshWindow.isUnresolved()) {
    const seconds = props.refreshWindow.toSeconds({ integral: false });
    const { min, max } = REFRESHER_SETTINGS.REFRESH_WINDOW_SECONDS;
    if (!Number.isInteger(seconds) || seconds < min || seconds > max) {
      fail(
        'refreshWindow',
        `must be whole seconds between ${Duration.seconds(min).toHumanString()} and ${Duration.seconds(max).toHumanString()}, got ${props.refreshWindow.toHumanString()}`,
      );
    }
  }
  if (props.refreshConcurrency !== undefined && !Token.isUnresolved(props.refreshConcurrency)) {
    const n = props.refreshConcurrency;
    const { min, max } = REFRESHER_SETTINGS.REFRESH_CONCURRENCY;
    if (!Number.isInteger(n) || n < min || n > max) {
      fail('refreshConcurrency', `must be a whole number between ${min} and ${max}, got ${n}`);
    }
  }
  const reserved = props.refresherReservedConcurrency;
  if (reserved !== undefined && !Token.isUnresolved(reserved) && (!Number.isInteger(reserved) || reserved < 1)) {
    fail(
      'refresherReservedConcurrency',
      `must be a whole number of at least 1 (leave it unset for no reservation), got ${reserved}`,
    );
  }
  if (resolved(props.successRedirect)) {
    const allowlist = props.returnToAllowlist ?? [];
    if (!isAllowedTarget(props.successRedirect, allowlist)) {
      fail(
        'successRedirect',
        `"${props.successRedirect}" must be on returnToAllowlist; add its origin or a prefix of it there`,
      );
    }
  }
}
