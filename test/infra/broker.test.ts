/**
 * The KrogerTokenBroker construct, synthesized once with real esbuild bundling: IAM by properties
 * (exact statement sets, so an extra permission fails a test), environment, tables, routes,
 * runtime, the refresher's schedule, events, alarms, and the handler contract between infra and the
 * entry files.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { REFRESH_FUNCTION_TIMEOUT_SECONDS } from '../../functions/core/budget';
import { READER_ATTRIBUTES, REFUSAL_COUNTER_KEY_PREFIX } from '../../functions/core/schema';
import { ENTRY_FILES, HANDLER_EXPORT, KrogerTokenBroker } from '../../infra/broker';
import {
  SYNTH_TIMEOUT_MS,
  environmentOf,
  logicalIdOf,
  newApp,
  policyLinesForRole,
  propertiesOf,
  roleOfFunction,
} from './support';

const FUNCTIONS = ['Login', 'Callback', 'Refresh', 'Refresher'] as const;
/** Every function: the four above, and the complete function (no provider settings: it never calls Kroger). */
const ALL_FUNCTIONS = [...FUNCTIONS, 'Complete'] as const;
/** The functions that publish lifecycle events. */
const PUBLISHERS = ['Callback', 'Refresh', 'Refresher', 'Complete'] as const;
/** The account's default bus in the test stack's account and region. */
const DEFAULT_BUS_ARN = 'arn:aws:events:eu-west-1:123456789012:event-bus/default';

/** The one statement the refreshing functions get on the sessions table. */
const REFUSAL_COUNTERS = `dynamodb:UpdateItem -> Broker/SessionsTable.Arn if {"ForAllValues:StringLike":{"dynamodb:LeadingKeys":["${REFUSAL_COUNTER_KEY_PREFIX}*"]}}`;

type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

/** Every statement of every IAM policy in the template. */
function allStatements(template: Template): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
    (policy) => policy.Properties.PolicyDocument.Statement as Statement[],
  );
}

let app: App;
let template: Template;
let assemblyDir: string;
let broker: KrogerTokenBroker;
let readerGrant: iam.Grant;
let linkCreatorGrant: iam.Grant;

beforeAll(() => {
  app = newApp();
  const stack = new Stack(app, 'BrokerTest', { env: { account: '123456789012', region: 'eu-west-1' } });
  broker = new KrogerTokenBroker(stack, 'Broker', { clientId: 'test-client-id' });
  // Another service reading tokens, as a consumer stack would wire it.
  const reader = new lambda.Function(stack, 'Reader', {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => {};'),
  });
  readerGrant = broker.addTokenReader(reader);
  // An app backend creating connect links.
  const linkCreator = new lambda.Function(stack, 'LinkCreator', {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => {};'),
  });
  linkCreatorGrant = broker.addLoginLinkCreator(linkCreator);
  const assembly = app.synth();
  assemblyDir = assembly.directory;
  template = Template.fromJSON(assembly.getStackByName(stack.stackName).template);
}, SYNTH_TIMEOUT_MS);

describe('Construct: KrogerTokenBroker', () => {
  describe('IAM', () => {
    it('grants login only its log group, PutItem/GetItem/DeleteItem on sessions, the table key and field encryption of sessions', () => {
      expect(policyLinesForRole(template, roleOfFunction(template, 'Broker/Login'))).toEqual([
        'dynamodb:DeleteItem,dynamodb:GetItem,dynamodb:PutItem -> Broker/SessionsTable.Arn',
        'kms:Decrypt,kms:Encrypt,kms:GenerateDataKey -> Broker/TableKey.Arn',
        'kms:GenerateDataKey -> Broker/FieldKey.Arn if {"StringEquals":{"kms:EncryptionContext:purpose":"sessions"}}',
        'logs:CreateLogStream,logs:PutLogEvents -> Broker/LoginLogs.Arn',
      ]);
    });

    it('grants the refresher Query on the due index only, token read/update, the counters, the secret and events', () => {
      expect(policyLinesForRole(template, roleOfFunction(template, 'Broker/Refresher'))).toEqual([
        'dynamodb:GetItem,dynamodb:UpdateItem -> Broker/TokensTable.Arn',
        'dynamodb:Query -> Broker/TokensTable.Arn/index/due',
        REFUSAL_COUNTERS,
        `events:PutEvents -> ${DEFAULT_BUS_ARN}`,
        'kms:Decrypt,kms:Encrypt,kms:GenerateDataKey -> Broker/TableKey.Arn',
        'kms:Decrypt,kms:GenerateDataKey -> Broker/FieldKey.Arn if {"StringEquals":{"kms:EncryptionContext:purpose":"tokens"}}',
        'logs:CreateLogStream,logs:PutLogEvents -> Broker/RefresherLogs.Arn',
        'secretsmanager:GetSecretValue -> Broker/ClientSecret',
      ]);
    });

    it.each(['Refresh', 'Refresher'])(
      'grants %s nothing on the sessions table but UpdateItem of the mass-refusal counters',
      (name) => {
        // IAM's leading-keys condition: login attempts (attempt#...) and connect links (link#...)
        // stay out of reach; only items under the counters' prefix can be written.
        const lines = policyLinesForRole(template, roleOfFunction(template, `Broker/${name}`));
        expect(lines.filter((line) => line.includes('SessionsTable'))).toEqual([REFUSAL_COUNTERS]);
        expect(REFUSAL_COUNTER_KEY_PREFIX).not.toMatch(/^(attempt|link)#/);
      },
    );

    it('grants no Scan in any policy, and Query only on the due index', () => {
      const statements = allStatements(template);
      const queries = statements.filter((st) => [st.Action].flat().includes('dynamodb:Query'));
      expect(queries).toHaveLength(1);
      expect(queries[0].Resource).toEqual({
        'Fn::Join': [
          '',
          [{ 'Fn::GetAtt': [logicalIdOf(template, 'Broker/TokensTable/Resource'), 'Arn'] }, '/index/due'],
        ],
      });
      for (const statement of statements) {
        for (const action of [statement.Action].flat()) {
          expect(action).not.toMatch(/^dynamodb:(Scan|BatchGetItem|PartiQL)/);
        }
      }
    });

    it('grants events:PutEvents on the broker bus only, to callback, refresh, refresher and complete only', () => {
      const putEvents = allStatements(template).filter((st) => [st.Action].flat().includes('events:PutEvents'));
      expect(putEvents.map((st) => st.Resource)).toEqual(PUBLISHERS.map(() => DEFAULT_BUS_ARN));
      for (const statement of putEvents) expect(statement.Action).toBe('events:PutEvents');
      for (const name of PUBLISHERS) {
        expect(policyLinesForRole(template, roleOfFunction(template, `Broker/${name}`))).toContain(
          `events:PutEvents -> ${DEFAULT_BUS_ARN}`,
        );
      }
      expect(broker.eventBus.eventBusName).toBe('default');
    });

    it('grants callback the session delete and put, token update (no read), the secret, the table key and the field key', () => {
      expect(policyLinesForRole(template, roleOfFunction(template, 'Broker/Callback'))).toEqual([
        'dynamodb:DeleteItem,dynamodb:PutItem -> Broker/SessionsTable.Arn',
        'dynamodb:UpdateItem -> Broker/TokensTable.Arn',
        `events:PutEvents -> ${DEFAULT_BUS_ARN}`,
        'kms:Decrypt,kms:Encrypt,kms:GenerateDataKey -> Broker/TableKey.Arn',
        'kms:Decrypt,kms:GenerateDataKey -> Broker/FieldKey.Arn if {"StringEquals":{"kms:EncryptionContext:purpose":"sessions"}}',
        'kms:GenerateDataKey -> Broker/FieldKey.Arn if {"StringEquals":{"kms:EncryptionContext:purpose":"tokens"}}',
        'logs:CreateLogStream,logs:PutLogEvents -> Broker/CallbackLogs.Arn',
        'secretsmanager:GetSecretValue -> Broker/ClientSecret',
      ]);
    });

    it('grants refresh tokens, the counters, the secret and events', () => {
      expect(policyLinesForRole(template, roleOfFunction(template, 'Broker/Refresh'))).toEqual([
        'dynamodb:GetItem,dynamodb:UpdateItem -> Broker/TokensTable.Arn',
        REFUSAL_COUNTERS,
        `events:PutEvents -> ${DEFAULT_BUS_ARN}`,
        'kms:Decrypt,kms:Encrypt,kms:GenerateDataKey -> Broker/TableKey.Arn',
        'kms:Decrypt,kms:GenerateDataKey -> Broker/FieldKey.Arn if {"StringEquals":{"kms:EncryptionContext:purpose":"tokens"}}',
        'logs:CreateLogStream,logs:PutLogEvents -> Broker/RefreshLogs.Arn',
        'secretsmanager:GetSecretValue -> Broker/ClientSecret',
      ]);
    });

    it('grants a token reader GetItem (reader attributes only), Decrypt and Invoke: no sessions, no secret', () => {
      expect(readerGrant.success).toBe(true);
      const readerLines = policyLinesForRole(template, logicalIdOf(template, 'Reader/ServiceRole/Resource'));
      expect(readerLines).toEqual([
        expect.stringMatching(/^dynamodb:GetItem -> Broker\/TokensTable\.Arn if \{/),
        'kms:Decrypt -> Broker/TableKey.Arn',
        'lambda:InvokeFunction -> Broker/Refresh.Arn',
      ]);
    });

    it("limits a token reader's GetItem to the attributes the reader library projects, never the refresh token", () => {
      const readerRole = logicalIdOf(template, 'Reader/ServiceRole/Resource');
      const getItems = Object.values(template.findResources('AWS::IAM::Policy'))
        .filter((policy) => policy.Properties.Roles.some((role: { Ref?: string }) => role.Ref === readerRole))
        .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Statement[])
        .filter((statement) => [statement.Action].flat().includes('dynamodb:GetItem'));
      expect(getItems).toHaveLength(1);
      // IAM's attribute-level access: every attribute the request names is on the list, and the
      // request returns only the projected attributes (ALL_ATTRIBUTES is refused).
      expect(getItems[0].Condition).toEqual({
        'ForAllValues:StringEquals': { 'dynamodb:Attributes': [...READER_ATTRIBUTES] },
        StringEqualsIfExists: { 'dynamodb:Select': 'SPECIFIC_ATTRIBUTES' },
      });
      expect(READER_ATTRIBUTES).toContain('userId'); // the key is named by every GetItem
      expect(READER_ATTRIBUTES).toEqual(expect.arrayContaining(['accessToken', 'expiresAt', 'status']));
      expect(READER_ATTRIBUTES).not.toContain('refreshToken');
      for (const name of READER_ATTRIBUTES) expect(name).not.toMatch(/refresh|lease|secret|verifier/i);
    });

    it("puts conditions only on consumers' grants (the broker's functions read and write whole items)", () => {
      // The field key's statements carry an encryption-context condition (test/infra/field-key.test.ts).
      const conditioned = allStatements(template).filter(
        (st) => st.Condition !== undefined && [st.Action].flat().some((action) => action.startsWith('dynamodb:')),
      );
      // The reader's GetItem, the two refreshing functions' counter updates (leading keys) and the
      // link creator's link-only PutItem.
      expect(conditioned.map((st) => st.Action).sort()).toEqual([
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:UpdateItem',
      ]);
    });

    it('grants a connect-link creator link PutItems, the table key and the complete function: no tokens, no secret', () => {
      expect(linkCreatorGrant.success).toBe(true);
      const lines = policyLinesForRole(template, logicalIdOf(template, 'LinkCreator/ServiceRole/Resource'));
      // Writing one link item; DynamoDB uses the table key on the caller's behalf; completing through
      // the broker's function (test/infra/connect.test.ts checks the conditions).
      expect(lines).toEqual([
        expect.stringMatching(/^dynamodb:PutItem -> Broker\/SessionsTable\.Arn if \{/),
        'kms:Decrypt,kms:Encrypt,kms:GenerateDataKey -> Broker/TableKey.Arn',
        'lambda:InvokeFunction -> Broker/Complete.Arn',
      ]);
      // It cannot read, consume or list links or login attempts, nor touch tokens or the secret.
      for (const line of lines) {
        expect(line).not.toMatch(/dynamodb:(GetItem|DeleteItem|UpdateItem|Query|Scan)/);
        expect(line).not.toMatch(/TokensTable|ClientSecret|secretsmanager|Broker\/Refresh/);
      }
    });

    it('attaches no AWS managed policy to the broker functions', () => {
      for (const name of ALL_FUNCTIONS) {
        const role = propertiesOf(template, `Broker/${name}Role/Resource`);
        expect(role.ManagedPolicyArns).toBeUndefined();
        expect(role.AssumeRolePolicyDocument.Statement).toEqual([
          expect.objectContaining({ Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }),
        ]);
      }
    });

    it('has no wildcard action or resource in any IAM policy', () => {
      const policies = template.findResources('AWS::IAM::Policy');
      expect(Object.keys(policies).length).toBeGreaterThan(0);
      for (const policy of Object.values(policies)) {
        for (const statement of policy.Properties.PolicyDocument.Statement) {
          for (const action of [statement.Action].flat()) expect(action).not.toContain('*');
          for (const resource of [statement.Resource].flat()) {
            expect(JSON.stringify(resource)).not.toMatch(/\*/);
          }
        }
      }
    });
  });

  describe('environment', () => {
    it('gives every function the provider settings with Kroger defaults and the own callback URL', () => {
      for (const name of FUNCTIONS) {
        expect(environmentOf(template, `Broker/${name}`)).toMatchObject({
          CLIENT_ID: 'test-client-id',
          OAUTH2_BASE_URL: 'https://api.kroger.com/v1/connect/oauth2',
          API_BASE_URL: 'https://api.kroger.com',
          REDIRECT_URL: 'Broker/Api.ApiEndpoint/callback',
          SCOPES: 'product.compact cart.basic:write profile.compact',
          PKCE: 'true',
          TOKENS_TABLE: 'Broker/TokensTable',
          SESSIONS_TABLE: 'Broker/SessionsTable',
          LOG_LEVEL: 'INFO',
        });
        // --enable-source-maps costs about a fifth of the import time at every cold start (npm run bench).
        expect(environmentOf(template, `Broker/${name}`)).not.toHaveProperty('NODE_OPTIONS');
      }
    });

    it('names the secret by ARN for callback, refresh and refresher, and not at all for login', () => {
      expect(environmentOf(template, 'Broker/Callback').CLIENT_SECRET_ARN).toBe('Broker/ClientSecret');
      expect(environmentOf(template, 'Broker/Refresh').CLIENT_SECRET_ARN).toBe('Broker/ClientSecret');
      expect(environmentOf(template, 'Broker/Refresher').CLIENT_SECRET_ARN).toBe('Broker/ClientSecret');
      expect(environmentOf(template, 'Broker/Login')).not.toHaveProperty('CLIENT_SECRET_ARN');
    });

    it('names the event bus (by ARN) for the publishers, and not for login', () => {
      for (const name of PUBLISHERS) {
        expect(environmentOf(template, `Broker/${name}`).EVENT_BUS_NAME).toBe(DEFAULT_BUS_ARN);
      }
      expect(environmentOf(template, 'Broker/Login')).not.toHaveProperty('EVENT_BUS_NAME');
    });

    it('gives the refresher its default window (10 minutes) and concurrency (8), and only the refresher', () => {
      expect(environmentOf(template, 'Broker/Refresher')).toMatchObject({
        REFRESH_WINDOW_SECONDS: '600',
        REFRESH_CONCURRENCY: '8',
      });
      for (const name of ['Login', 'Callback', 'Refresh']) {
        expect(environmentOf(template, `Broker/${name}`)).not.toHaveProperty('REFRESH_WINDOW_SECONDS');
      }
    });

    it('never puts a secret value in an environment variable', () => {
      for (const name of ALL_FUNCTIONS) {
        const raw = JSON.stringify(propertiesOf(template, `Broker/${name}/Resource`).Environment);
        expect(raw).not.toMatch(/resolve:secretsmanager|SecretString|CLIENT_SECRET"/);
      }
    });

    it('leaves optional settings unset', () => {
      const env = environmentOf(template, 'Broker/Callback');
      for (const name of ['OAUTH2_ISSUER', 'OAUTH2_REVOCATION_URL', 'RETURN_TO_ALLOWLIST', 'SUCCESS_REDIRECT']) {
        expect(env).not.toHaveProperty(name);
      }
    });

    it('gives a token reader TOKENS_TABLE and REFRESH_FUNCTION_NAME', () => {
      expect(environmentOf(template, 'Reader')).toEqual({
        TOKENS_TABLE: 'Broker/TokensTable',
        REFRESH_FUNCTION_NAME: 'Broker/Refresh',
      });
    });

    it("gives a connect-link creator SESSIONS_TABLE, the broker's LOGIN_URL and the complete function, nothing else", () => {
      expect(environmentOf(template, 'LinkCreator')).toEqual({
        SESSIONS_TABLE: 'Broker/SessionsTable',
        LOGIN_URL: 'Broker/Api.ApiEndpoint/login',
        COMPLETE_FUNCTION_NAME: 'Broker/Complete',
      });
    });
  });

  describe('functions', () => {
    it.each(ALL_FUNCTIONS)('%s runs on Node.js 24, arm64, JSON logs to its own log group', (name) => {
      expect(propertiesOf(template, `Broker/${name}/Resource`)).toMatchObject({
        Handler: `index.${HANDLER_EXPORT}`,
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        MemorySize: name === 'Refresher' ? 512 : 256,
        LoggingConfig: {
          LogFormat: 'JSON',
          LogGroup: { Ref: logicalIdOf(template, `Broker/${name}Logs/Resource`) },
        },
      });
      expect(propertiesOf(template, `Broker/${name}Logs/Resource`).RetentionInDays).toBe(30);
    });

    it.each(ALL_FUNCTIONS)(
      "%s is filtered by LOG_LEVEL only: Lambda's log-level filter lets every line through",
      (name) => {
        // Lambda drops JSON lines by their `level` field. The refresher's metric line is written at
        // INFO whatever LOG_LEVEL is (metrics must not vanish with a quieter log), so a WARN filter
        // would silence the metrics the alarms watch; with JSON format and no level set, Lambda
        // filters at INFO and would drop DEBUG lines. TRACE admits all; the handlers' logger filters.
        const logging = propertiesOf(template, `Broker/${name}/Resource`).LoggingConfig;
        expect(logging.ApplicationLogLevel).toBe('TRACE');
        expect(logging).not.toHaveProperty('SystemLogLevel');
        expect(environmentOf(template, `Broker/${name}`).LOG_LEVEL).toBe('INFO');
      },
    );

    it("sets timeouts: login 10 s, callback 25 s (inside API Gateway's 30 s), complete 10 s, refresh 93 s, refresher 5 minutes", () => {
      // Each HTTP request runs under a deadline 1 s short of these (functions/core/budget.ts).
      expect(propertiesOf(template, 'Broker/Login/Resource').Timeout).toBe(10);
      expect(propertiesOf(template, 'Broker/Callback/Resource').Timeout).toBe(25);
      expect(propertiesOf(template, 'Broker/Complete/Resource').Timeout).toBe(10);
      // A whole refresh at the largest REFRESH_TIMEOUT_MS: wait, lease, provider call, every write.
      expect(propertiesOf(template, 'Broker/Refresh/Resource').Timeout).toBe(REFRESH_FUNCTION_TIMEOUT_SECONDS);
      expect(REFRESH_FUNCTION_TIMEOUT_SECONDS).toBe(93);
      // The handler stops starting users 93 s before its timeout; much less would leave no run time.
      expect(propertiesOf(template, 'Broker/Refresher/Resource').Timeout).toBe(300);
    });

    it('reserves no concurrency by default, so it deploys in accounts at the default limit of 10', () => {
      // Overlapping refresher runs are safe (a DynamoDB lease per user); reserving is opt-in.
      for (const name of ALL_FUNCTIONS) {
        expect(propertiesOf(template, `Broker/${name}/Resource`).ReservedConcurrentExecutions).toBeUndefined();
      }
    });

    it.each(ALL_FUNCTIONS)('%s entry file exists and its ESM bundle exports the configured handler', (name) => {
      const entry = ENTRY_FILES[name.toLowerCase() as keyof typeof ENTRY_FILES];
      expect(fs.existsSync(entry)).toBe(true);

      const [file, exported] = propertiesOf(template, `Broker/${name}/Resource`).Handler.split('.');
      const s3Key: string = propertiesOf(template, `Broker/${name}/Resource`).Code.S3Key;
      const assetDir = path.join(assemblyDir, `asset.${s3Key.replace(/\.zip$/, '')}`);
      const bundle = fs.readFileSync(path.join(assetDir, `${file}.mjs`), 'utf8');
      // esbuild's ESM output ends with `export{n as handler}` (or `export{handler}`).
      expect(bundle).toMatch(new RegExp(`export\\s*\\{[^}]*\\b${exported}\\s*[,}]`));
      // Source maps are emitted and linked, for decoding a stack by hand.
      expect(fs.existsSync(path.join(assetDir, `${file}.mjs.map`))).toBe(true);
      expect(bundle).toContain(`sourceMappingURL=${file}.mjs.map`);
    });
    it.each(ALL_FUNCTIONS)(
      '%s bundle leaves only the EventBridge client to the runtime (loaded on first publish)',
      (name) => {
        const fn = propertiesOf(template, `Broker/${name}/Resource`);
        const bundle = fs.readFileSync(
          path.join(assemblyDir, `asset.${fn.Code.S3Key.replace(/\.zip$/, '')}`, `${fn.Handler.split('.')[0]}.mjs`),
          'utf8',
        );
        const external = [...bundle.matchAll(/(?:import\(|from)\s*["'](@aws-sdk\/[\w-]+)["']/g)].map((m) => m[1]);
        expect([...new Set(external)].filter((m) => m !== '@aws-sdk/client-eventbridge')).toEqual([]);
      },
    );

    it.each(ALL_FUNCTIONS)('%s bundle initializes on Node with only the environment the stack gives it', (name) => {
      const fn = propertiesOf(template, `Broker/${name}/Resource`);
      const [file, exported] = fn.Handler.split('.');
      const bundle = path.join(assemblyDir, `asset.${fn.Code.S3Key.replace(/\.zip$/, '')}`, `${file}.mjs`);
      // Deploy-time values (references to other resources) stand in as plausible literals; a new
      // reference nobody mapped here fails loudly instead of passing untested.
      const deployTimeValues: Record<string, string> = {
        REDIRECT_URL: 'https://abc123.execute-api.eu-west-1.amazonaws.com/callback',
        TOKENS_TABLE: 'broker-tokens-table',
        SESSIONS_TABLE: 'broker-sessions-table',
        CLIENT_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:kroger-AbCdEf',
        EVENT_BUS_NAME: DEFAULT_BUS_ARN,
        FIELD_KEY_ARN: 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555',
      };
      const env: Record<string, string> = {};
      for (const [key, value] of Object.entries<unknown>(fn.Environment.Variables)) {
        if (typeof value === 'string') env[key] = value;
        else if (key in deployTimeValues) env[key] = deployTimeValues[key];
        else throw new Error(`${name}: environment variable ${key} is a deploy-time reference; add a stand-in`);
      }
      // Module scope reads config and creates SDK clients; nothing calls AWS or the provider here.
      const script = `import(${JSON.stringify(bundle)}).then((m) => { if (typeof m[${JSON.stringify(exported)}] !== 'function') { console.error('no export ${exported}'); process.exit(2); } })`;
      const result = spawnSync(process.execPath, ['-e', script], {
        env: { PATH: process.env.PATH ?? '', AWS_REGION: 'eu-west-1', AWS_LAMBDA_FUNCTION_NAME: name, ...env },
        encoding: 'utf8',
        timeout: 30_000,
      });
      // The tail of stderr holds the error and stack; its head is a minified source line.
      expect({ status: result.status, stderr: result.status === 0 ? '' : result.stderr.slice(-3000) }).toEqual({
        status: 0,
        stderr: '',
      });
    });
  });

  describe('tables', () => {
    it('keeps tokens on demand, with PITR, the CMK, TTL, the sparse due index, retained', () => {
      template.hasResource('AWS::DynamoDB::Table', {
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Properties: Match.objectLike({
          KeySchema: [{ AttributeName: 'userId', KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          SSESpecification: {
            SSEEnabled: true,
            SSEType: 'KMS',
            KMSMasterKeyId: { 'Fn::GetAtt': [logicalIdOf(template, 'Broker/TableKey/Resource'), 'Arn'] },
          },
          TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
          GlobalSecondaryIndexes: [
            {
              IndexName: 'due',
              KeySchema: [
                { AttributeName: 'refreshShard', KeyType: 'HASH' },
                { AttributeName: 'nextRefreshAt', KeyType: 'RANGE' },
              ],
              Projection: { ProjectionType: 'KEYS_ONLY' },
            },
          ],
        }),
      });
      expect(propertiesOf(template, 'Broker/TokensTable/Resource').AttributeDefinitions).toEqual(
        expect.arrayContaining([
          { AttributeName: 'refreshShard', AttributeType: 'N' },
          { AttributeName: 'nextRefreshAt', AttributeType: 'N' },
        ]),
      );
    });

    it('keeps sessions keyed by id, with TTL, encrypted by the CMK', () => {
      expect(propertiesOf(template, 'Broker/SessionsTable/Resource')).toMatchObject({
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
        TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS' },
      });
    });

    it('rotates the table key and retains it with the tables', () => {
      template.hasResource('AWS::KMS::Key', {
        DeletionPolicy: 'Retain',
        Properties: Match.objectLike({ EnableKeyRotation: true }),
      });
    });
  });

  describe('client secret', () => {
    it('creates a secret with a generated placeholder, never a literal value', () => {
      const secret = propertiesOf(template, 'Broker/ClientSecret/Resource');
      // Named by CloudFormation: a fixed name collided with the retained secret of a destroyed stack.
      expect(secret.Name).toBeUndefined();
      // A random placeholder until the operator stores Kroger's secret: never a value in the template.
      expect(secret.GenerateSecretString).toEqual({ ExcludePunctuation: true, PasswordLength: 32 });
      expect(secret.SecretString).toBeUndefined();
    });
  });

  describe('HTTP API', () => {
    it.each([
      ['GET /login', 'Login'],
      ['GET /callback', 'Callback'],
    ])('routes %s to the %s function without an authorizer', (routeKey, name) => {
      const route = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).find(
        (r) => r.Properties.RouteKey === routeKey,
      );
      expect(route?.Properties).toMatchObject({ RouteKey: routeKey, AuthorizationType: 'NONE' });
      const integrationId = route!.Properties.Target['Fn::Join'][1][1].Ref;
      const integration = template.toJSON().Resources[integrationId].Properties;
      expect(integration).toMatchObject({
        IntegrationType: 'AWS_PROXY',
        PayloadFormatVersion: '2.0',
        IntegrationUri: { 'Fn::GetAtt': [logicalIdOf(template, `Broker/${name}/Resource`), 'Arn'] },
      });
    });

    it('has exactly the three routes: the refresh function is not reachable over HTTP', () => {
      const keys = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties.RouteKey);
      expect(keys.sort()).toEqual(['GET /callback', 'GET /health', 'GET /login']);
    });

    it('throttles the default stage and writes access logs without the query string', () => {
      const stage = propertiesOf(template, 'Broker/DefaultStage/Resource');
      expect(stage).toMatchObject({
        StageName: '$default',
        AutoDeploy: true,
        DefaultRouteSettings: { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 },
        AccessLogSettings: {
          DestinationArn: { 'Fn::GetAtt': [logicalIdOf(template, 'Broker/ApiAccessLogs/Resource'), 'Arn'] },
        },
      });
      const format = JSON.parse(stage.AccessLogSettings.Format);
      expect(format).toMatchObject({ requestId: '$context.requestId', routeKey: '$context.routeKey' });
      // The callback's query carries the one-time code: no path/query variables in the log.
      expect(stage.AccessLogSettings.Format).not.toMatch(/\$context\.(path|requestUri)|querystring/i);
    });

    it('exposes the login and callback URLs on the API endpoint', () => {
      expect(Stack.of(broker).resolve(broker.callbackUrl)).toEqual({
        'Fn::Join': [
          '',
          [{ 'Fn::GetAtt': [logicalIdOf(template, 'Broker/Api/Resource'), 'ApiEndpoint'] }, '/callback'],
        ],
      });
      expect(Stack.of(broker).resolve(broker.loginUrl)).toEqual({
        'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalIdOf(template, 'Broker/Api/Resource'), 'ApiEndpoint'] }, '/login']],
      });
    });
  });

  describe('scheduled refresher', () => {
    it('starts the refresher every 5 minutes from an EventBridge rule', () => {
      const rule = propertiesOf(template, 'Broker/RefreshSchedule/Resource');
      expect(rule).toMatchObject({ ScheduleExpression: 'rate(5 minutes)', State: 'ENABLED' });
      expect(rule.EventPattern).toBeUndefined();
      expect(rule.Targets).toEqual([
        expect.objectContaining({
          Arn: { 'Fn::GetAtt': [logicalIdOf(template, 'Broker/Refresher/Resource'), 'Arn'] },
          RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 300 },
        }),
      ]);
    });

    it('lets only that rule invoke the refresher', () => {
      const refresherArn = { 'Fn::GetAtt': [logicalIdOf(template, 'Broker/Refresher/Resource'), 'Arn'] };
      const permissions = Object.values(template.findResources('AWS::Lambda::Permission')).filter(
        (p) => JSON.stringify(p.Properties.FunctionName) === JSON.stringify(refresherArn),
      );
      expect(permissions.map((p) => p.Properties)).toEqual([
        {
          Action: 'lambda:InvokeFunction',
          FunctionName: refresherArn,
          Principal: 'events.amazonaws.com',
          SourceArn: { 'Fn::GetAtt': [logicalIdOf(template, 'Broker/RefreshSchedule/Resource'), 'Arn'] },
        },
      ]);
    });

    it('does not retry a failed or throttled run: the next scheduled run does the same work', () => {
      template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: logicalIdOf(template, 'Broker/Refresher/Resource') },
        Qualifier: '$LATEST',
        MaximumRetryAttempts: 0,
        MaximumEventAgeInSeconds: 300,
      });
    });

    it('exposes the refresher, its rule and the bus', () => {
      expect(Stack.of(broker).resolve(broker.refresherFunction.functionArn)).toEqual({
        'Fn::GetAtt': [logicalIdOf(template, 'Broker/Refresher/Resource'), 'Arn'],
      });
      expect(Stack.of(broker).resolve(broker.refreshRule.ruleArn)).toEqual({
        'Fn::GetAtt': [logicalIdOf(template, 'Broker/RefreshSchedule/Resource'), 'Arn'],
      });
      expect(Stack.of(broker).resolve(broker.eventBus.eventBusArn)).toBe(DEFAULT_BUS_ARN);
    });
  });

  describe('alarms', () => {
    it.each(
      (['Login', 'Callback', 'Refresh', 'Complete'] as const)
        .flatMap((name) => [
          [name, 'Errors'],
          [name, 'Throttles'],
        ])
        .concat([['Refresher', 'Errors']]),
    )('alarms on %s %s from the first occurrence', (name, metric) => {
      expect(propertiesOf(template, `Broker/${name}${metric}Alarm/Resource`)).toMatchObject({
        Namespace: 'AWS/Lambda',
        MetricName: metric,
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalIdOf(template, `Broker/${name}/Resource`) } }],
        Statistic: 'Sum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      });
    });

    it.each([
      ['Failures', 'failed'],
      ['Backlog', 'deferred'],
    ])('alarms on the refresher %s (EMF "%s") in 3 consecutive runs, not on one', (alarmName, metricName) => {
      const alarm = propertiesOf(template, `Broker/Refresher${alarmName}Alarm/Resource`);
      expect(alarm).toMatchObject({
        Namespace: 'KrogerTokenBroker',
        MetricName: metricName,
        Statistic: 'Sum',
        Period: 300,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        EvaluationPeriods: 3,
        DatapointsToAlarm: 3,
        TreatMissingData: 'missing',
      });
      // The refresher's metric line has exactly one dimension, its function name; any other set
      // of dimensions would make the alarm watch a metric that never arrives.
      expect(alarm.Dimensions).toEqual([
        { Name: 'function', Value: { Ref: expect.stringMatching(/^BrokerRefresher/) } },
      ]);
    });

    it('has no throttle alarm on the refresher (with a reservation, overlapping ticks throttle by design)', () => {
      expect(() => logicalIdOf(template, 'Broker/RefresherThrottlesAlarm/Resource')).toThrow(/found 0/);
    });

    it('lists every alarm on the construct', () => {
      const ids = broker.alarms.map((a) => Stack.of(broker).resolve(a.alarmArn)['Fn::GetAtt'][0]).sort();
      expect(ids).toEqual(Object.keys(template.findResources('AWS::CloudWatch::Alarm')).sort());
      expect(ids).toContain(logicalIdOf(template, 'Broker/RefresherFailuresAlarm/Resource'));
    });

    it('alarms on API 5xx responses', () => {
      expect(propertiesOf(template, 'Broker/Api5xxAlarm/Resource')).toMatchObject({
        Namespace: 'AWS/ApiGateway',
        MetricName: '5xx',
        Threshold: 1,
      });
    });
  });
});
