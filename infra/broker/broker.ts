/**
 * The broker as one L3 construct: an HTTP API with `GET /login`, `GET /callback` and `GET /health`, a refresh
 * function other services invoke, a complete function an app backend invokes to finish a connect
 * link's connection, a scheduled refresher that keeps tokens fresh, two DynamoDB tables
 * under a customer-managed KMS key, the client secret in Secrets Manager, lifecycle events on
 * EventBridge, and alarms. This class only wires the parts beside it (props and defaults,
 * validation, storage, api, functions, grants, alarms) and exposes the public members and grants.
 * Every part creates its constructs in this construct's scope with fixed IDs: construct IDs make
 * the CloudFormation logical IDs (test/infra/logical-ids.test.ts).
 */
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { alarmTargets, alarmTopicFor, createAlarms, notifyOnEveryAlarm, refresherMetric } from './alarms';
import { addPublicRoute, createApi } from './api';
import { runPeriod, withDefaults } from './defaults';
import { createFunctions, optionalEnv } from './functions';
import { grantLinkCreatorAccess, grantReaderAccess } from './grants';
import type {
  KrogerTokenBrokerProps,
  LoginLinkEnvironment,
  RefresherMetricName,
  TokenReaderEnvironment,
} from './props';
import { type BrokerStorage, createStorage } from './storage';
import { validateProps, warnOnRefreshGap } from './validation';

/**
 * A serverless OAuth2 token broker for the Kroger API.
 *
 * @example
 * const broker = new KrogerTokenBroker(this, 'Broker', { clientId: 'my-app-123' });
 * // GetItem on tokens, kms:Decrypt, lambda:InvokeFunction on refresh; sets TOKENS_TABLE and
 * // REFRESH_FUNCTION_NAME. For a role or user: broker.grantReadTokens(role) + broker.readerEnvironment.
 * broker.addTokenReader(myServiceFunction);
 * // PutItem of links on sessions, the table key, lambda:InvokeFunction on complete; sets
 * // SESSIONS_TABLE, LOGIN_URL, COMPLETE_FUNCTION_NAME (createLoginLink, completeConnection).
 * broker.addLoginLinkCreator(myBackendFunction);
 */
export class KrogerTokenBroker extends Construct {
  /** The HTTP API serving /login, /callback and /health. */
  public readonly api: apigwv2.HttpApi;
  /** The `$default` stage (access logs, throttling). */
  public readonly stage: apigwv2.HttpStage;
  /**
   * Where a person starts the login: `redirectUrl` with its trailing `/callback` replaced by
   * `/login`, so the browser-binding cookie set here is sent to the callback.
   */
  public readonly loginUrl: string;
  /**
   * `GET` it from an uptime check: `200 {"status":"ok","version":...}` whenever the login function
   * starts with its configuration. Served by the login function, on the host of {@link loginUrl}.
   */
  public readonly healthUrl: string;
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
  /**
   * The key encrypting refresh tokens and code verifiers inside the items (envelope encryption). Only
   * the broker's login, callback, refresh and refresher roles may use it, each for what it needs;
   * token readers and connect-link creators get nothing on it.
   */
  public readonly fieldKey: kms.Key;
  /** The client secret (a plain SecretString). */
  public readonly clientSecret: secretsmanager.ISecret;
  public readonly loginFunction: NodejsFunction;
  public readonly callbackFunction: NodejsFunction;
  /** Refreshes one user's tokens; invoked with `{"userId": "...", "forceRefresh"?: true}`. */
  public readonly refreshFunction: NodejsFunction;
  /**
   * Completes a connect link's pending connection for the app's own user; invoked by the app
   * backend with `{"connectCode": "...", "appUserId": "..."}`, answers ids only (never a token).
   */
  public readonly completeFunction: NodejsFunction;
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
   * and backlog. Every alarm in the broker (these and any added to it later) notifies
   * {@link alarmTopic} and `alarmAction` on alarm and on OK.
   */
  public readonly alarms: readonly cloudwatch.Alarm[];
  /** The topic every alarm notifies: `alarmTopic`, or the one created for `alarmEmail`. */
  public readonly alarmTopic?: sns.ITopic;
  /** The refresher's schedule. */
  public readonly refreshSchedule: events.Schedule;
  /** The environment a token reader needs: `TOKENS_TABLE` and `REFRESH_FUNCTION_NAME`. */
  public readonly readerEnvironment: TokenReaderEnvironment;
  /**
   * The environment an app backend connecting accounts needs: `SESSIONS_TABLE`, `LOGIN_URL`,
   * `COMPLETE_FUNCTION_NAME` (and `RETURN_TO_ALLOWLIST` when the broker has one).
   */
  public readonly loginLinkEnvironment: LoginLinkEnvironment;

  /** The tables, their key and the secret, as the grant helpers take them. */
  private readonly storage: BrokerStorage;

  constructor(scope: Construct, id: string, props: KrogerTokenBrokerProps) {
    super(scope, id);
    validateProps(props);
    const resolved = withDefaults(props);
    warnOnRefreshGap(this, resolved);
    this.refreshSchedule = resolved.refreshSchedule;
    // Without a bus prop, events go to the account's default bus (in the stack's region).
    this.eventBus = props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');

    this.storage = createStorage(this, resolved.removalPolicy, props.clientSecret);
    this.tableKey = this.storage.tableKey;
    this.fieldKey = this.storage.fieldKey;
    this.tokensTable = this.storage.tokensTable;
    this.sessionsTable = this.storage.sessionsTable;
    this.clientSecret = this.storage.clientSecret;

    const api = createApi(this, resolved);
    this.api = api.api;
    this.stage = api.stage;
    this.callbackUrl = api.callbackUrl;
    this.redirectUrl = api.redirectUrl;
    this.loginUrl = api.loginUrl;
    this.healthUrl = api.healthUrl;

    const functions = createFunctions(this, resolved, this.storage, this.eventBus, this.redirectUrl);
    this.loginFunction = functions.login;
    this.callbackFunction = functions.callback;
    this.refreshFunction = functions.refresh;
    this.refresherFunction = functions.refresher;
    this.refreshRule = functions.refreshRule;
    this.completeFunction = functions.complete;

    addPublicRoute(this.api, '/login', 'LoginIntegration', this.loginFunction);
    addPublicRoute(this.api, '/callback', 'CallbackIntegration', this.callbackFunction);
    // On the login function, not a function of its own: an uptime check then proves that the
    // function and configuration people meet at /login start, and keeps that function warm.
    addPublicRoute(
      this.api,
      '/health',
      'HealthIntegration',
      this.loginFunction,
      'is public by design, for uptime checks: it answers a fixed status and the broker version, reads no table or secret, and is throttled with the stage.',
    );

    this.readerEnvironment = {
      TOKENS_TABLE: this.tokensTable.tableName,
      REFRESH_FUNCTION_NAME: this.refreshFunction.functionName,
    };
    this.loginLinkEnvironment = {
      SESSIONS_TABLE: this.sessionsTable.tableName,
      LOGIN_URL: this.loginUrl,
      COMPLETE_FUNCTION_NAME: this.completeFunction.functionName,
      ...optionalEnv('RETURN_TO_ALLOWLIST', props.returnToAllowlist?.join(' ')),
    };
    this.alarms = createAlarms(this, functions, this.stage, runPeriod(resolved, 60, 3600));
    this.alarmTopic = alarmTopicFor(this, props.alarmTopic, props.alarmEmail);
    notifyOnEveryAlarm(this, alarmTargets(props.alarmAction, this.alarmTopic));
  }

  /**
   * A count the refresher publishes once per run (Embedded Metric Format, with the refresher's
   * function name as its one dimension), summed over `props.period` (default 5 minutes): for
   * dashboards and alarms of your own, e.g. on `reauth`.
   */
  public metricRefresher(metricName: RefresherMetricName, props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return refresherMetric(this.refresherFunction, metricName, props);
  }

  /**
   * Lets another service read tokens: `dynamodb:GetItem` on the tokens table, limited to the
   * attributes in `READER_ATTRIBUTES` (functions/core/schema.ts: the access token and its status,
   * never the refresh token), `kms:Decrypt` on the table key, and `lambda:InvokeFunction` on the
   * refresh function (to refresh a token on demand). It grants nothing on the sessions table and
   * nothing on the client secret. Give the reader {@link readerEnvironment} (or use
   * {@link addTokenReader} for a Lambda function).
   *
   * A reader's GetItem must carry a ProjectionExpression naming only those attributes; one without
   * a projection asks for every attribute and is denied.
   * @see https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_dynamodb_attributes.html
   */
  public grantReadTokens(grantee: iam.IGrantable): iam.Grant {
    return grantReaderAccess(grantee, this.storage, this.refreshFunction);
  }

  /** {@link grantReadTokens} plus the reader's environment (`TOKENS_TABLE`, `REFRESH_FUNCTION_NAME`). */
  public addTokenReader(fn: lambda.Function): iam.Grant {
    for (const [name, value] of Object.entries(this.readerEnvironment)) {
      fn.addEnvironment(name, value);
    }
    return this.grantReadTokens(fn);
  }

  /**
   * Lets an app backend connect accounts: create connect links (`createLoginLink`, one conditional
   * `PutItem`) and complete them (`completeConnection`, which invokes {@link completeFunction}).
   * It gets `dynamodb:PutItem` on the sessions table for connect-link keys only and returning
   * nothing, `kms:Decrypt`, `kms:Encrypt`, `kms:GenerateDataKey` on the table key (DynamoDB uses
   * the key on the caller's behalf), and `lambda:InvokeFunction` on the complete function. Nothing
   * that reveals a refresh token: no read of the sessions table (pending connections, login
   * attempts), nothing on the tokens table, nothing on the client secret; the complete function
   * answers ids only. Give the backend {@link loginLinkEnvironment} (or use
   * {@link addLoginLinkCreator} for a Lambda function).
   */
  public grantCreateLoginLinks(grantee: iam.IGrantable): iam.Grant {
    return grantLinkCreatorAccess(grantee, this.storage, this.completeFunction);
  }

  /**
   * {@link grantCreateLoginLinks} plus the backend's environment (`SESSIONS_TABLE`, `LOGIN_URL`,
   * `COMPLETE_FUNCTION_NAME`, and `RETURN_TO_ALLOWLIST` when set).
   */
  public addLoginLinkCreator(fn: lambda.Function): iam.Grant {
    for (const [name, value] of Object.entries(this.loginLinkEnvironment)) {
      fn.addEnvironment(name, value);
    }
    return this.grantCreateLoginLinks(fn);
  }
}
