/**
 * The local stack: the same handler code as in Lambda behind a local HTTP adapter, with DynamoDB
 * Local and the Kroger-shaped sandbox provider started here when no real ones are configured.
 * Used by `npm start`, the end-to-end tests and the benchmarks.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  type Env,
  parseUrlSetting,
  readFieldKeyConfig,
  readFlowConfig,
  readIntSetting,
  readLogLevel,
  readProviderConfig,
  readRefreshLimits,
  readRefreshPolicy,
  readSecretConfig,
  readStoreConfig,
} from '../../functions/core/config';
import { ensureLocalKeyFile } from '../../functions/adapters/local-key';
import { ensureTables } from '../../functions/adapters/tables';
import {
  createCallbackHandler,
  createCompleteFunctionHandler,
  createHealthHandler,
  createLoginHandler,
  createRefreshFunctionHandler,
  createScheduledRefresherHandler,
} from '../../functions/handlers';
import { createServices, dynamoClient, type Services } from '../../functions/services';
import { startDynamoLocal, type DynamoLocalHandle } from './dynamodb-local';
import { createRouter, createStartupGate } from './http-adapter';
import { type LambdaInvokeHandle, startLambdaInvoke } from './lambda-invoke';
import { portInUse } from './ports';
import { startSandbox, type SandboxHandle } from './sandbox/launch';
import { type LocalStackState, localFieldKeyFile, localStateFile } from '../../functions/reader/local-state';
import { brokerVersion } from '../version';

/** A running local stack. */
export interface LocalStack {
  readonly baseUrl: string;
  readonly loginUrl: string;
  /** The environment the handlers run with (no secret printed from it). */
  readonly env: Record<string, string>;
  readonly sandbox?: SandboxHandle;
  readonly dynamo?: DynamoLocalHandle;
  /** The services the handlers were built from (their DynamoDB client, logger, ...): for tests and the bench. */
  readonly services: Services;
  /** The stand-in of the Lambda Invoke API serving the refresh and complete functions. */
  readonly lambda: LambdaInvokeHandle;
  /**
   * What a reader in another local service needs to take the production path against this stack
   * (`npm run tokens -- env` prints it): the tokens table, DynamoDB, region, this run's credentials,
   * the refresh function's name and the stand-in's endpoint; and what an app backend connecting
   * accounts needs besides: the sessions table, the login URL, the complete function's name (and
   * the return-URL allow-list when set). Never the client secret or provider settings: the reader
   * refreshes through the refresh function, the backend completes through the complete function.
   */
  readonly readerEnv: Readonly<Record<string, string>>;
  stop(): Promise<void>;
}

/** Default local client registration for the sandbox provider. */
export const SANDBOX_CLIENT_ID = 'kroger-broker-local';

/** The name the local stand-in serves the refresh function under (`REFRESH_FUNCTION_NAME`). */
export const LOCAL_REFRESH_FUNCTION_NAME = 'kroger-token-broker-refresh';

/** The name the local stand-in serves the complete function under (`COMPLETE_FUNCTION_NAME`). */
export const LOCAL_COMPLETE_FUNCTION_NAME = 'kroger-token-broker-complete';

/**
 * Starts the stack. Configuration comes from `env` (`process.env` for `npm start`); what it leaves
 * out is filled in: the sandbox provider when `OAUTH2_BASE_URL` is unset, DynamoDB Local when
 * `DYNAMODB_ENDPOINT` is unset. Fails with a message naming any bad variable.
 */
export async function startLocalStack(
  env: Env,
  options: {
    writeStateFile?: boolean;
    /** @default `.local/stack.json` under the working directory */
    stateFile?: string;
    log?: (line: string) => void;
  } = {},
): Promise<LocalStack> {
  const log = options.log ?? (() => undefined);
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT must be a port number, got "${env.PORT}"`);
  }
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    // Each cleanup once, newest first, even if stop() is called twice.
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  };

  try {
    // Until the handlers are attached below, every request gets `503 starting`: none is left hanging.
    const gate = createStartupGate();
    const server: Server = createServer(gate.listener);
    // Listen first (the handlers are attached later): the port is then known for REDIRECT_URL.
    const actualPort = await new Promise<number>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(error.code === 'EADDRINUSE' ? new Error(`PORT ${port} is in use: set PORT to another port`) : error),
      );
      server.listen(port, '127.0.0.1', () => {
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
    cleanups.push(
      () =>
        new Promise((resolve) => {
          server.close(() => resolve());
          // Keep-alive connections (a browser's) would hold close() open.
          server.closeAllConnections();
        }),
    );
    const baseUrl = `http://localhost:${actualPort}`;

    const runEnv: Record<string, string> = {};
    for (const [key, value] of Object.entries(env)) if (value !== undefined) runEnv[key] = value;
    runEnv.REDIRECT_URL ||= `${baseUrl}/callback`;
    runEnv.BROKER_VERSION ||= brokerVersion();
    // Checked before anything starts, so a bad value is named here and not by the sandbox.
    parseUrlSetting('REDIRECT_URL', runEnv.REDIRECT_URL);
    readLogLevel(runEnv);
    const dynamoLocalPort = readIntSetting(runEnv, 'DYNAMODB_LOCAL_PORT', 8000, 0, 65535);
    const scheduleSeconds = readIntSetting(runEnv, 'REFRESH_SCHEDULE_SECONDS', 300, 0, 86_400);
    const lambdaPort = readIntSetting(runEnv, 'LAMBDA_LOCAL_PORT', 0, 0, 65535);

    let sandbox: SandboxHandle | undefined;
    if (!runEnv.OAUTH2_BASE_URL) {
      log('starting the sandbox provider (OAUTH2_BASE_URL is not set)...');
      runEnv.CLIENT_ID ||= SANDBOX_CLIENT_ID;
      runEnv.CLIENT_SECRET ||= randomBytes(24).toString('base64url');
      sandbox = await startSandbox({
        clientId: runEnv.CLIENT_ID,
        clientSecret: runEnv.CLIENT_SECRET,
        redirectUris: [runEnv.REDIRECT_URL],
        accessTokenTtlSeconds: env.SANDBOX_ACCESS_TOKEN_TTL ? Number(env.SANDBOX_ACCESS_TOKEN_TTL) : undefined,
      });
      cleanups.push(() => sandbox!.stop());
      runEnv.OAUTH2_BASE_URL = sandbox.oauth2BaseUrl;
      runEnv.API_BASE_URL = sandbox.apiBaseUrl;
      runEnv.OAUTH2_ISSUER = sandbox.issuer;
      runEnv.OAUTH2_REVOCATION_URL = sandbox.revocationUrl;
    } else if (!runEnv.API_BASE_URL) {
      // Kroger serves the API on the same origin as OAuth2 (https://api.kroger.com).
      runEnv.API_BASE_URL = new URL(runEnv.OAUTH2_BASE_URL).origin;
    }

    // Refresh tokens and code verifiers are encrypted: under FIELD_KEY_ARN (KMS) or FIELD_KEY_FILE
    // when given, else under a local key file. `npm start` keeps it in .local/field-key (0600) beside
    // the state file, across runs, so a persistent DYNAMODB_ENDPOINT stays readable; other callers
    // (tests, bench) get a throwaway one.
    if (!runEnv.FIELD_KEY_ARN && !runEnv.FIELD_KEY_FILE) {
      if (options.writeStateFile) {
        // Beside the state file (`.local/` by default), where `npm run tokens` finds it.
        runEnv.FIELD_KEY_FILE = options.stateFile ? join(dirname(options.stateFile), 'field-key') : localFieldKeyFile();
      } else {
        const dir = mkdtempSync(join(tmpdir(), 'broker-field-key-'));
        cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
        runEnv.FIELD_KEY_FILE = join(dir, 'field-key');
      }
      if (ensureLocalKeyFile(runEnv.FIELD_KEY_FILE)) log(`created the local field key ${runEnv.FIELD_KEY_FILE}`);
    }

    // Validate everything now, before starting DynamoDB Local: a bad value fails here, naming it.
    readProviderConfig(runEnv);
    readSecretConfig(runEnv);
    readFlowConfig(runEnv);
    readStoreConfig(runEnv);
    readFieldKeyConfig(runEnv);
    readRefreshLimits(runEnv);
    readRefreshPolicy(runEnv);

    let dynamo: DynamoLocalHandle | undefined;
    if (!runEnv.DYNAMODB_ENDPOINT) {
      log('starting DynamoDB Local (DYNAMODB_ENDPOINT is not set)...');
      // 8000 when free (a fixed port is easy to point other tools at), else any free port.
      const usable = dynamoLocalPort > 0 && !(await portInUse(dynamoLocalPort));
      // DynamoDB Local listens on every interface (its jar has no bind option) and keeps one database
      // per access key: a random key for this run, kept only in .local/stack.json (0600), leaves
      // anyone else on the network, with any other key, an empty database.
      runEnv.DYNAMODB_LOCAL_ACCESS_KEY = randomBytes(20).toString('hex');
      dynamo = await startDynamoLocal({
        port: usable ? dynamoLocalPort : undefined,
        accessKey: runEnv.DYNAMODB_LOCAL_ACCESS_KEY,
      });
      cleanups.push(() => dynamo!.stop());
      runEnv.DYNAMODB_ENDPOINT = dynamo.endpoint;
    }

    // The handlers are built from this environment object, as the Lambda entries build them from
    // process.env: the same factories, the same configuration checks.
    const services = createServices(runEnv);
    const client = dynamoClient(services);
    cleanups.push(async () => client.destroy());
    const created = await ensureTables(client, services.storeConfig);
    if (created.length) log(`created tables: ${created.join(', ')}`);

    const login = createLoginHandler(services);
    const callback = createCallbackHandler(services);
    const health = createHealthHandler(services);
    // Until now every request, /health included, was answered 503 starting.
    gate.open(createRouter({ '/login': login, '/callback': callback, '/health': health }));

    // The refresh function, as other local services' readers invoke it, with this run's own
    // credentials: a process that was not given them (by `tokens env`) cannot invoke it.
    const credentials = {
      accessKeyId: `LOCAL${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(24).toString('base64url'),
    };
    const lambda = await startLambdaInvoke({
      port: lambdaPort,
      accessKeyId: credentials.accessKeyId,
      region: services.storeConfig.region,
      functions: {
        [LOCAL_REFRESH_FUNCTION_NAME]: createRefreshFunctionHandler(services),
        // An app backend completes connect links through it, as in AWS (never with table writes).
        [LOCAL_COMPLETE_FUNCTION_NAME]: createCompleteFunctionHandler(services),
      },
      log,
    });
    cleanups.push(() => lambda.stop());
    const readerEnv: Record<string, string> = {
      TOKENS_TABLE: services.storeConfig.tokensTable,
      DYNAMODB_ENDPOINT: runEnv.DYNAMODB_ENDPOINT,
      AWS_REGION: services.storeConfig.region,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      REFRESH_FUNCTION_NAME: LOCAL_REFRESH_FUNCTION_NAME,
      AWS_ENDPOINT_URL_LAMBDA: lambda.endpoint,
      // What an app backend connecting accounts needs besides (the construct's loginLinkEnvironment).
      SESSIONS_TABLE: services.storeConfig.sessionsTable,
      LOGIN_URL: `${baseUrl}/login`,
      COMPLETE_FUNCTION_NAME: LOCAL_COMPLETE_FUNCTION_NAME,
      ...(runEnv.RETURN_TO_ALLOWLIST ? { RETURN_TO_ALLOWLIST: runEnv.RETURN_TO_ALLOWLIST } : {}),
      // This run's DynamoDB Local database is only visible under its access key.
      ...(runEnv.DYNAMODB_LOCAL_ACCESS_KEY ? { DYNAMODB_LOCAL_ACCESS_KEY: runEnv.DYNAMODB_LOCAL_ACCESS_KEY } : {}),
    };

    // The scheduled refresher runs here on the same schedule as in AWS (0 turns it off).
    if (scheduleSeconds > 0) {
      const refresher = createScheduledRefresherHandler(services);
      let running = false;
      const timer = setInterval(() => {
        if (running) return;
        running = true;
        refresher(undefined)
          .catch((error: unknown) => log(`scheduled refresh failed: ${(error as Error).message}`))
          .finally(() => {
            running = false;
          });
      }, scheduleSeconds * 1000);
      timer.unref();
      cleanups.push(async () => clearInterval(timer));
    }

    const publicEnv = { ...runEnv };
    if (options.writeStateFile) {
      const state: LocalStackState = {
        pid: process.pid,
        env: pick(runEnv, [
          'DYNAMODB_ENDPOINT',
          // This run's DynamoDB Local key: the file is the only place it is written.
          'DYNAMODB_LOCAL_ACCESS_KEY',
          // The path of the local field key, not the key: the CLI reads the key file itself.
          'FIELD_KEY_FILE',
          'FIELD_KEY_ARN',
          'TOKENS_TABLE',
          'SESSIONS_TABLE',
          'CLIENT_ID',
          'OAUTH2_BASE_URL',
          'API_BASE_URL',
          'REDIRECT_URL',
          'OAUTH2_ISSUER',
          'OAUTH2_REVOCATION_URL',
          'SCOPES',
          'PKCE',
          'RETURN_TO_ALLOWLIST',
          'SUCCESS_REDIRECT',
          'PROVIDER_TIMEOUT_MS',
          'REFRESH_TIMEOUT_MS',
          'FORCE_REFRESH_MIN_INTERVAL_SECONDS',
          'MASS_REFUSAL_THRESHOLD',
          'MASS_REFUSAL_WINDOW_SECONDS',
          // The CLI's in-process refreshes schedule users as the stack does.
          'REFRESH_POLICY',
          'KEEP_ALIVE_SECONDS',
          // The sandbox's generated secret only: a real CLIENT_SECRET is never written to disk.
          ...(sandbox ? ['CLIENT_SECRET'] : []),
        ]),
        reader: readerEnv,
      };
      // So `npm run tokens` finds the same DynamoDB (and the sandbox) without configuration.
      const stateFile = options.stateFile ?? localStateFile();
      mkdirSync(dirname(stateFile), { recursive: true });
      writeFileSync(stateFile, JSON.stringify(state, null, 2), { mode: 0o600 });
      chmodSync(stateFile, 0o600);
      cleanups.push(async () => rmSync(stateFile, { force: true }));
    }
    delete publicEnv.CLIENT_SECRET;

    const stack: LocalStack = {
      baseUrl,
      loginUrl: `${baseUrl}/login`,
      env: publicEnv,
      sandbox,
      dynamo,
      services,
      lambda,
      readerEnv,
      stop: stopAll,
    };
    return stack;
  } catch (error) {
    await stopAll();
    throw error;
  }
}

function pick(source: Record<string, string>, keys: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}
