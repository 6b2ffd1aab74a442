/**
 * The synthesized bundles, run as Lambda runs them (issue 14): error class names survive the
 * minifier, so logs and the runtime's `errorType` say `ConfigError` rather than a mangled name; and
 * the login bundle answers `GET /health` from memory while it still serves `GET /login`. Each bundle
 * is imported in a fresh `node`, with the function's environment from the template.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { KrogerTokenBroker } from '../../infra/broker';
import { createTestStores, type TestStores } from '../support/stores';
import { newApp, PROJECT_ROOT, propertiesOf, SYNTH_TIMEOUT_MS } from '../infra/support';

const FUNCTIONS = ['Login', 'Callback', 'Refresh', 'Refresher'] as const;
const VERSION: string = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')).version;

/**
 * Imports a bundle, prints `INIT_ERROR <json>` if its init throws (what Lambda reports as
 * `errorType`/`errorMessage`), else calls `handler(event)` and prints `RESULT <json>`. Everything else
 * on stdout is the handler's own log.
 */
const RUNNER = `
import { pathToFileURL } from 'node:url';
const [bundle, event] = process.argv.slice(2);
let mod;
try {
  mod = await import(pathToFileURL(bundle).href);
} catch (error) {
  process.stdout.write('INIT_ERROR ' + JSON.stringify({ errorType: error.name, errorMessage: error.message }) + '\\n');
  process.exit(0);
}
const result = await mod.handler(JSON.parse(event));
process.stdout.write('RESULT ' + JSON.stringify(result) + '\\n');
`;

let template: Template;
let assemblyDir: string;
let runner: string;
let stores: TestStores;

beforeAll(async () => {
  const app = newApp();
  const stack = new Stack(app, 'Bundles', { env: { account: '123456789012', region: 'eu-west-1' } });
  new KrogerTokenBroker(stack, 'Broker', { clientId: 'bundle-client' });
  const assembly = app.synth();
  assemblyDir = assembly.directory;
  template = Template.fromJSON(assembly.getStackByName(stack.stackName).template);
  runner = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'broker-bundle-runner-')), 'run.mjs');
  fs.writeFileSync(runner, RUNNER);
  stores = await createTestStores('bundles');
}, SYNTH_TIMEOUT_MS);

afterAll(() => stores?.client.destroy());

function bundleFile(name: (typeof FUNCTIONS)[number]): string {
  const fn = propertiesOf(template, `Broker/${name}/Resource`);
  return path.join(assemblyDir, `asset.${fn.Code.S3Key.replace(/\.zip$/, '')}`, `${fn.Handler.split('.')[0]}.mjs`);
}

/**
 * The function's environment as the template sets it, with references (table names, the callback
 * URL, the secret ARN) replaced by this test's values, plus what Lambda itself sets.
 */
function lambdaEnvironment(name: (typeof FUNCTIONS)[number], overrides: Record<string, string | undefined>) {
  const variables = propertiesOf(template, `Broker/${name}/Resource`).Environment.Variables as Record<string, unknown>;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    // DynamoDB Local keeps one database per region: the test tables' region.
    AWS_REGION: stores.config.region,
    AWS_LAMBDA_FUNCTION_NAME: name,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    REDIRECT_URL: 'https://abcdef1234.execute-api.eu-west-1.amazonaws.com/callback',
    CLIENT_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:bundles-AbCdEf',
    TOKENS_TABLE: stores.config.tokensTable,
    SESSIONS_TABLE: stores.config.sessionsTable,
    // FIELD_KEY_ARN is a deploy-time reference (and KMS is not reachable here): a local key file stands
    // in, through the same envelope code.
    FIELD_KEY_FILE: stores.fieldKeyFile,
  };
  for (const [key, value] of Object.entries(variables)) if (typeof value === 'string') env[key] = value;
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/** Runs the bundle once; returns its result or init error, and its log lines. */
function run(name: (typeof FUNCTIONS)[number], env: Record<string, string>, event: unknown = {}) {
  const stdout = execFileSync(process.execPath, [runner, bundleFile(name), JSON.stringify(event)], {
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  const lines = stdout.split('\n').filter(Boolean);
  const tagged = (tag: string) => {
    const line = lines.find((l) => l.startsWith(`${tag} `));
    return line ? JSON.parse(line.slice(tag.length + 1)) : undefined;
  };
  return {
    result: tagged('RESULT'),
    initError: tagged('INIT_ERROR') as { errorType: string; errorMessage: string } | undefined,
    logs: lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>),
  };
}

/** An API Gateway HTTP API (payload 2.0) GET for `route`. */
function httpEvent(route: string) {
  return {
    version: '2.0',
    routeKey: `GET ${route}`,
    rawPath: route,
    rawQueryString: '',
    headers: { host: 'abcdef1234.execute-api.eu-west-1.amazonaws.com' },
    requestContext: {
      http: { method: 'GET', path: route, protocol: 'HTTP/1.1', sourceIp: '203.0.113.9', userAgent: 'uptime-check' },
      requestId: 'req-1',
      routeKey: `GET ${route}`,
      stage: '$default',
    },
    isBase64Encoded: false,
  };
}

describe('Construct: KrogerTokenBroker', () => {
  describe('Feature: bundles keep error class names (literal names, minified bundles)', () => {
    /** Error classes each handler uses (functions/core/errors.ts), by bundle. */
    const USED: Record<(typeof FUNCTIONS)[number], string[]> = {
      Login: ['BrokerError', 'ConfigError', 'RequestRejectedError'],
      Callback: ['BrokerError', 'ConfigError', 'RequestRejectedError', 'ProviderUnavailableError', 'TokenStoreError'],
      Refresh: ['BrokerError', 'ConfigError', 'ProviderUnavailableError', 'ReauthRequiredError', 'UnknownUserError'],
      Refresher: ['BrokerError', 'ConfigError', 'ProviderUnavailableError', 'ReauthRequiredError', 'UnknownUserError'],
    };

    it.each(FUNCTIONS)('%s bundle keeps the names of the error classes it uses', (name) => {
      const bundle = fs.readFileSync(bundleFile(name), 'utf8');
      // Each class's `name` is a string literal in functions/core/errors.ts, which minifying keeps.
      expect(USED[name].filter((errorClass) => !bundle.includes(`"${errorClass}"`))).toEqual([]);
    });

    it.each(FUNCTIONS)(
      '%s bundle fails its init with errorType "ConfigError" (not a minified name) when CLIENT_ID is missing',
      (name) => {
        const { initError, result } = run(name, lambdaEnvironment(name, { CLIENT_ID: undefined }));
        expect(result).toBeUndefined();
        expect(initError).toEqual({
          errorType: 'ConfigError',
          errorMessage: 'CLIENT_ID environment variable is not set',
        });
      },
    );
  });

  describe('Feature: GET /health on the login bundle', () => {
    it('answers 200 with status ok and the package.json version, without reaching DynamoDB', () => {
      // Nothing listens on port 9: any table read would fail the request.
      const env = lambdaEnvironment('Login', { DYNAMODB_ENDPOINT: 'http://127.0.0.1:9' });
      const { result, logs } = run('Login', env, httpEvent('/health'));
      expect(result.statusCode).toBe(200);
      expect(result.headers).toMatchObject({
        'content-type': 'application/json; charset=utf-8',
        'cache-control': 'no-store',
      });
      expect(JSON.parse(result.body)).toEqual({ status: 'ok', version: VERSION });
      expect(result.cookies).toBeUndefined();
      expect(logs.filter((l) => l.level === 'ERROR' || l.level === 'WARN')).toEqual([]);
    });

    it('still serves GET /login from the same bundle: a redirect to the authorization endpoint', () => {
      const env = lambdaEnvironment('Login', { DYNAMODB_ENDPOINT: process.env.DYNAMODB_ENDPOINT });
      const { result, logs } = run('Login', env, httpEvent('/login'));
      expect({ status: result.statusCode, errors: logs.filter((l) => l.level === 'ERROR') }).toEqual({
        status: 302,
        errors: [],
      });
      expect(result.headers.location).toMatch(/^https:\/\/api\.kroger\.com\/v1\/connect\/oauth2\/authorize\?/);
      expect(new URL(result.headers.location).searchParams.get('client_id')).toBe('bundle-client');
    });

    it('fails /health with the init when the configuration is bad, as it fails /login', () => {
      const { initError } = run(
        'Login',
        lambdaEnvironment('Login', { REDIRECT_URL: 'not a url' }),
        httpEvent('/health'),
      );
      expect(initError).toEqual({ errorType: 'ConfigError', errorMessage: expect.stringContaining('REDIRECT_URL') });
    });
  });
});
