/**
 * The broker's Lambda functions (`Login`, `Callback`, `Refresh`, `Refresher`, `Complete`) and the
 * schedule that starts the refresher: what each runs, its limits, and the least-privilege grants that also
 * set its environment; over one factory that gives every function its own role, log group and the
 * same esbuild bundling. Created in the broker's scope: `<id>`, `<id>Role`, `<id>Logs`, and
 * `RefreshSchedule`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import {
  type BundlingOptions,
  NodejsFunction,
  type NodejsFunctionProps,
  OutputFormat,
  SourceMapMode,
} from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { brokerVersion } from '../version';
import { type ResolvedBrokerProps, runPeriod } from './defaults';
import {
  CALLBACK_FUNCTION_TIMEOUT_SECONDS,
  COMPLETE_FUNCTION_TIMEOUT_SECONDS,
  LOGIN_FUNCTION_TIMEOUT_SECONDS,
  REFRESH_FUNCTION_TIMEOUT_SECONDS,
} from '../../functions/core/budget';
import {
  grantClientSecret,
  grantDueIndex,
  grantFieldKey,
  grantPutEvents,
  grantRefusalCounters,
  grantSessions,
  grantTokens,
} from './grants';
import type { BrokerStorage } from './storage';

/** The repository root: entry files and the lock file are resolved from here, not from the cwd. */
const PROJECT_ROOT = path.join(__dirname, '..', '..');

/**
 * Lambda entry files; each exports `handler`. The only place that names them: a synth test fails
 * if either side drifts.
 */
export const ENTRY_FILES = {
  login: path.join(PROJECT_ROOT, 'functions', 'login.ts'),
  callback: path.join(PROJECT_ROOT, 'functions', 'callback.ts'),
  refresh: path.join(PROJECT_ROOT, 'functions', 'refresh-function.ts'),
  refresher: path.join(PROJECT_ROOT, 'functions', 'scheduled-refresher.ts'),
  complete: path.join(PROJECT_ROOT, 'functions', 'complete-function.ts'),
} as const;

/** The exported function name every entry file provides. */
export const HANDLER_EXPORT = 'handler';

/**
 * How every entry file is bundled (`bench/cold-start.ts` rebuilds the bundles with the same esbuild
 * options and reports a drift; `scripts/build-package.ts` prebuilds the package's bundles with them).
 */
export const BUNDLING: BundlingOptions = {
  // Local esbuild only: this must synth on a machine without Docker or network.
  forceDockerBundling: false,
  format: OutputFormat.ESM,
  // The same bundle must run on nodejs22.x as well as the nodejs24.x it is deployed on.
  target: 'node22',
  // Prefer the SDK's ES module builds: they tree-shake much better.
  mainFields: ['module', 'main'],
  // Minifying renames classes; the errors' `name` (logged, what log queries match on, Lambda's
  // `errorType`) is a literal in each class (functions/core/errors.ts), so no `keepNames` is needed:
  // it wrapped every function of the bundle and cost 4-10% of the import CPU (`npm run bench`).
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
};

/**
 * The packaged construct's prebuilt bundles: `npm pack` bundles every entry file with
 * {@link BUNDLING} into `dist/lambda/<entry file name>/index.mjs`, beside the construct's own bundle
 * in `dist/cdk`, so another team's CDK app needs neither esbuild nor the broker's sources. In this
 * repository there is no such directory beside `infra/broker`, and functions bundle from source.
 */
export const PREBUILT_DIR = path.join(__dirname, '..', 'lambda');

/** The name of an entry file's prebuilt bundle directory: `functions/login.ts` -> `login`. */
export function bundleNameOf(entry: string): string {
  return path.basename(entry).replace(/\.[cm]?[jt]s$/, '');
}

/** The props that say where a function's code comes from. */
type CodeProps = Pick<
  NodejsFunctionProps,
  'code' | 'handler' | 'entry' | 'projectRoot' | 'depsLockFilePath' | 'bundling'
>;

let prebuilt: boolean | undefined;

/**
 * Where a function's code comes from, decided once per process: the prebuilt bundle as an asset when
 * the construct runs from the package (no bundling, no esbuild), else the entry file bundled by
 * NodejsFunction. Both give the same resource (`index.handler`, the same bundle), so the logical IDs
 * and properties do not depend on where the construct was imported from.
 */
function codeProps(entry: string): CodeProps {
  prebuilt ??= fs.existsSync(PREBUILT_DIR);
  if (prebuilt) {
    const dir = path.join(PREBUILT_DIR, bundleNameOf(entry));
    if (!fs.existsSync(path.join(dir, 'index.mjs'))) {
      throw new Error(
        `no prebuilt bundle for ${path.basename(entry)} in ${PREBUILT_DIR}: reinstall kroger-token-broker`,
      );
    }
    return { code: lambda.Code.fromAsset(dir), handler: `index.${HANDLER_EXPORT}` };
  }
  return {
    entry,
    handler: HANDLER_EXPORT,
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
    bundling: BUNDLING,
  };
}

/** The broker's functions and the rule that starts the refresher. */
export interface BrokerFunctions {
  readonly login: NodejsFunction;
  readonly callback: NodejsFunction;
  readonly refresh: NodejsFunction;
  readonly refresher: NodejsFunction;
  readonly refreshRule: events.Rule;
  readonly complete: NodejsFunction;
}

/**
 * Creates the functions, grants each only what it uses, and schedules the refresher.
 * @param scope the broker: the IDs are relative to it
 * @param redirectUrl the redirect URI sent to Kroger (`REDIRECT_URL`)
 */
export function createFunctions(
  scope: Construct,
  props: ResolvedBrokerProps,
  storage: BrokerStorage,
  eventBus: events.IEventBus,
  redirectUrl: string,
): BrokerFunctions {
  const common = handlerEnvironment(props, redirectUrl);
  // Every function that writes a user's place in the refresher's schedule reads the same policy.
  const scheduling = { ...common, ...refreshPolicyEnvironment(props) };

  const login = createFunction(scope, props, 'Login', {
    entry: ENTRY_FILES.login,
    description: 'Kroger token broker: GET /login (starts the authorization code flow)',
    // No provider call: a connect link read and consumed, a login attempt written, each DynamoDB call
    // within its own deadline and all of them within the request's (functions/core/budget.ts).
    timeout: Duration.seconds(LOGIN_FUNCTION_TIMEOUT_SECONDS),
    memorySize: 256,
    environment: { ...common, ...pageEnvironment(props) },
  });
  // Writes the login attempt; reads a connect link (to check its return URL first), then deletes
  // (consumes) it.
  grantSessions(login, storage, 'dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem');
  // Encrypts the code verifier it stores; never decrypts anything.
  grantFieldKey(login, storage.fieldKey, { encrypt: ['sessions'] });
  // The handlers read their whole config at start, so login knows the tokens table's name, but it
  // is granted nothing on that table and nothing on the secret.
  login.addEnvironment('TOKENS_TABLE', storage.tokensTable.tableName);
  // GET /health (served by this function) answers with it.
  login.addEnvironment('BROKER_VERSION', brokerVersion());

  const callback = createFunction(scope, props, 'Callback', {
    entry: ENTRY_FILES.callback,
    description: 'Kroger token broker: GET /callback (code exchange, profile lookup, token storage)',
    // Inside API Gateway's 30 s; the request runs under a deadline 1 s short of it, which cuts the
    // calls (secret, DynamoDB, KMS, two provider calls) to what is left (functions/core/budget.ts).
    timeout: Duration.seconds(CALLBACK_FUNCTION_TIMEOUT_SECONDS),
    memorySize: 256,
    environment: { ...scheduling, ...pageEnvironment(props) },
  });
  // The login attempt is consumed by a conditional delete, exactly once; a connect link's sign-in
  // is written as a pending connection (a new item).
  grantSessions(callback, storage, 'dynamodb:DeleteItem', 'dynamodb:PutItem');
  // saveLogin is one UpdateItem; the callback never reads a token item.
  grantTokens(callback, storage, 'dynamodb:UpdateItem');
  // Decrypts the code verifier; seals the refresh token it stores and a connect link's pending tokens;
  // cannot decrypt a stored refresh token.
  grantFieldKey(callback, storage.fieldKey, { encrypt: ['tokens', 'sessions'], decrypt: ['sessions'] });
  grantClientSecret(callback, storage.clientSecret);
  // token.connected, token.recovered (a reconnect after reauth_required).
  grantPutEvents(callback, eventBus);

  const refresh = createFunction(scope, props, 'Refresh', {
    entry: ENTRY_FILES.refresh,
    description: 'Kroger token broker: refreshes one user\'s tokens ({"userId": "...", "forceRefresh"?: boolean})',
    // A caller may first wait up to 12 s for another process's refresh, then hold the lease for a
    // whole refresh (provider call, every write attempt): the function must outlive all of it
    // (functions/core/budget.ts; 93 s).
    timeout: Duration.seconds(REFRESH_FUNCTION_TIMEOUT_SECONDS),
    memorySize: 256,
    environment: scheduling,
  });
  grantTokens(refresh, storage, 'dynamodb:GetItem', 'dynamodb:UpdateItem');
  grantFieldKey(refresh, storage.fieldKey, { encrypt: ['tokens'], decrypt: ['tokens'] });
  grantClientSecret(refresh, storage.clientSecret);
  // token.refresh_failed, token.reauth_required, token.recovered.
  grantPutEvents(refresh, eventBus);
  // The mass-refusal counters only: nothing else of the sessions table.
  grantRefusalCounters(refresh, storage);

  const refresher = createFunction(scope, props, 'Refresher', {
    entry: ENTRY_FILES.refresher,
    description: 'Kroger token broker: scheduled refresher (refreshes every user due within the window)',
    // The handler stops starting users REFRESHER_STOP_BEFORE_TIMEOUT_MS (93 s, one whole refresh)
    // before the timeout and leaves them for the next run.
    timeout: Duration.minutes(5),
    memorySize: 512,
    // Not reserved unless asked for: reserving fails the deploy in accounts at the default limit
    // of 10 concurrent executions. Overlapping runs are safe: each user's refresh takes a
    // DynamoDB lease, so two runs never refresh one user twice; the second skips that user.
    reservedConcurrentExecutions: props.refresherReservedConcurrency,
    environment: {
      ...scheduling,
      REFRESH_WINDOW_SECONDS: String(props.refreshWindow.toSeconds()),
      REFRESH_CONCURRENCY: String(props.refreshConcurrency),
    },
  });
  // GetItem re-reads the due user; UpdateItem takes the lease, stores the refreshed tokens and
  // records failures. No Scan, no Query on the table: due users come from the index only.
  grantTokens(refresher, storage, 'dynamodb:GetItem', 'dynamodb:UpdateItem');
  grantFieldKey(refresher, storage.fieldKey, { encrypt: ['tokens'], decrypt: ['tokens'] });
  grantDueIndex(refresher, storage.tokensTable);
  grantClientSecret(refresher, storage.clientSecret);
  grantPutEvents(refresher, eventBus);
  // The mass-refusal counters only: nothing else of the sessions table.
  grantRefusalCounters(refresher, storage);
  // A run that fails is not retried, and one that cannot start within a period (throttled) is
  // dropped: the next scheduled run does the same work, and retries would only stack up runs.
  const staleAfter = runPeriod(props, 60, 6 * 3600);
  refresher.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: staleAfter });
  const refreshRule = new events.Rule(scope, 'RefreshSchedule', {
    description: 'Kroger token broker: starts the scheduled refresher',
    schedule: props.refreshSchedule,
    targets: [
      new targets.LambdaFunction(refresher, {
        retryAttempts: 2,
        maxEventAge: staleAfter,
      }),
    ],
  });

  const complete = createFunction(scope, props, 'Complete', {
    entry: ENTRY_FILES.complete,
    description:
      'Kroger token broker: completes a connect link\'s pending connection for the app\'s user ({"connectCode": "...", "appUserId": "..."})',
    // Two DynamoDB writes and an event; no provider call; under a deadline (functions/core/budget.ts).
    timeout: Duration.seconds(COMPLETE_FUNCTION_TIMEOUT_SECONDS),
    memorySize: 256,
    // No provider settings and no secret: completing never talks to Kroger. It stores a grant, so
    // it schedules it as the other writers do.
    environment: { LOG_LEVEL: props.logLevel, ...refreshPolicyEnvironment(props), ...plaintextFieldEnvironment(props) },
  });
  // One conditional UpdateItem closes the pending connection (and strips its tokens); one
  // UpdateItem stores the grant under the app's user.
  grantSessions(complete, storage, 'dynamodb:UpdateItem');
  grantTokens(complete, storage, 'dynamodb:UpdateItem');
  // Opens the pending connection's sealed tokens and seals the refresh token it stores; cannot
  // decrypt a stored refresh token.
  grantFieldKey(complete, storage.fieldKey, { encrypt: ['tokens'], decrypt: ['sessions'] });
  // token.connected, token.recovered.
  grantPutEvents(complete, eventBus);

  return { login, callback, refresh, refresher, refreshRule, complete };
}

/** What the login and callback pages read: the app's name and whether public sign-in is on. */
function pageEnvironment(props: ResolvedBrokerProps): Record<string, string> {
  return { PUBLIC_LOGIN: String(props.publicLogin), ...optionalEnv('APP_NAME', props.appName) };
}

/** `{ [name]: value }`, or nothing for an unset or empty value. */
export function optionalEnv(name: string, value: string | undefined): Record<string, string> {
  return value === undefined || value === '' ? {} : { [name]: value };
}

/**
 * The configuration every handler reads at start (functions/core/config.ts). Resource names are not
 * here: the grant that gives access to a resource sets the variable naming it.
 */
function handlerEnvironment(props: ResolvedBrokerProps, redirectUrl: string): Record<string, string> {
  return {
    CLIENT_ID: props.clientId,
    OAUTH2_BASE_URL: props.oauth2BaseUrl,
    API_BASE_URL: props.apiBaseUrl,
    REDIRECT_URL: redirectUrl,
    SCOPES: props.scopes.join(' '),
    PKCE: String(props.pkce),
    LOG_LEVEL: props.logLevel,
    ...optionalEnv('OAUTH2_ISSUER', props.issuer),
    ...optionalEnv('OAUTH2_REVOCATION_URL', props.revocationUrl),
    ...optionalEnv('RETURN_TO_ALLOWLIST', props.returnToAllowlist?.join(' ')),
    ...optionalEnv('SUCCESS_REDIRECT', props.successRedirect),
    ...plaintextFieldEnvironment(props),
  };
}

/**
 * `FIELD_PLAINTEXT`, for every function (each reads sealed fields); only when it differs from the
 * handlers' default, so a stack that keeps the default changes no function.
 */
function plaintextFieldEnvironment(props: ResolvedBrokerProps): Record<string, string> {
  return optionalEnv('FIELD_PLAINTEXT', props.plaintextFields === 'refuse' ? 'refuse' : undefined);
}

/** The refresh policy (functions/core/schema.ts `REFRESH_POLICIES`) and its keep-alive interval. */
function refreshPolicyEnvironment(props: ResolvedBrokerProps): Record<string, string> {
  return {
    REFRESH_POLICY: props.refreshPolicy,
    KEEP_ALIVE_SECONDS: String(props.keepAliveInterval.toSeconds()),
  };
}

/**
 * One function with its own log group and role: an own role instead of
 * AWSLambdaBasicExecutionRole, whose managed policy allows writing to every log group in the
 * account; this one writes to the function's own log group only.
 */
function createFunction(
  scope: Construct,
  props: ResolvedBrokerProps,
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
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
    retention: props.logRetention,
    removalPolicy: props.removalPolicy,
  });
  const role = new iam.Role(scope, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: `Kroger token broker ${id} function`,
  });
  iam.Grant.addToPrincipal({
    grantee: role,
    actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    resourceArns: [logGroup.logGroupArn],
  });

  return new NodejsFunction(scope, id, {
    ...codeProps(options.entry),
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
  });
}
