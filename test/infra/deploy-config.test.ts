/**
 * Deploying without surprises (issue 14): no stack without a client id, a client secret CloudFormation
 * names (so a deploy after a destroy, or a second stage, never meets a retained secret's name), an
 * existing secret reused only when named, and staging and production side by side. No bundling.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RemovalPolicy } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { KrogerTokenBrokerStack } from '../../infra/stack';
import { environmentOf, newApp, PROJECT_ROOT, SYNTH_TIMEOUT_MS } from './support';

/** Runs `fn` with `CLIENT_ID` removed from the environment (the stack falls back to it). */
function withoutClientIdVariable<T>(fn: () => T): T {
  const previous = process.env.CLIENT_ID;
  delete process.env.CLIENT_ID;
  try {
    return fn();
  } finally {
    if (previous !== undefined) process.env.CLIENT_ID = previous;
  }
}

/** Every resource of a type, as CloudFormation sees it. */
function resourcesOfType(template: Template, type: string): Array<{ Properties?: any; DeletionPolicy?: string }> {
  return Object.values(template.toJSON().Resources as Record<string, { Type: string }>).filter(
    (r) => r.Type === type,
  ) as Array<{ Properties?: any; DeletionPolicy?: string }>;
}

describe('Stack: KrogerTokenBrokerStack', () => {
  describe('Feature: the client id is required', () => {
    it('throws at synth, naming the "clientId" context key, when neither context, props nor CLIENT_ID give one', () => {
      withoutClientIdVariable(() => {
        const app = newApp({}, false);
        expect(() => new KrogerTokenBrokerStack(app, 'NoClientId')).toThrow(
          /no Kroger client id: set the "clientId" context key \(cdk deploy -c clientId=/,
        );
      });
    });

    it('treats an empty or blank client id as none', () => {
      withoutClientIdVariable(() => {
        expect(() => new KrogerTokenBrokerStack(newApp({ clientId: '' }, false), 'EmptyClientId')).toThrow(
          /"clientId"/,
        );
        process.env.CLIENT_ID = '   ';
        expect(() => new KrogerTokenBrokerStack(newApp({}, false), 'BlankVariable')).toThrow(/"clientId"/);
      });
    });

    it('takes the CLIENT_ID environment variable when the context has none', () => {
      withoutClientIdVariable(() => {
        process.env.CLIENT_ID = 'from-the-shell';
        const template = Template.fromStack(new KrogerTokenBrokerStack(newApp({}, false), 'ClientIdFromShell'));
        expect(environmentOf(template, 'Broker/Login').CLIENT_ID).toBe('from-the-shell');
      });
    });

    it(
      'makes `cdk synth` without -c clientId exit non-zero with a message naming clientId, writing no template',
      () => {
        const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'broker-no-client-id-'));
        const env = { ...process.env };
        delete env.CLIENT_ID;
        const result = spawnSync('npx', ['cdk', 'synth', '--quiet', '--no-notices', '--output', outdir], {
          cwd: PROJECT_ROOT,
          env: { ...env, CDK_DISABLE_CLI_TELEMETRY: 'true' },
          encoding: 'utf8',
          timeout: SYNTH_TIMEOUT_MS,
        });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/"clientId"/);
        // Nothing was synthesized: no template a later `cdk deploy --app cdk.out` could pick up.
        expect(fs.readdirSync(outdir).filter((f) => f.endsWith('.template.json'))).toEqual([]);
      },
      SYNTH_TIMEOUT_MS,
    );
  });

  describe('Feature: the client secret has no fixed name', () => {
    it('lets CloudFormation name the secret it creates (no Name property), so a redeploy after a destroy cannot collide', () => {
      const template = Template.fromStack(new KrogerTokenBrokerStack(newApp({ clientId: 'x' }, false), 'Fresh'));
      const secrets = resourcesOfType(template, 'AWS::SecretsManager::Secret');
      expect(secrets).toHaveLength(1);
      expect(secrets[0].Properties).not.toHaveProperty('Name');
      expect(JSON.stringify(template.toJSON())).not.toContain('kroger-client-secret');
    });

    it('still retains that secret on delete by default, and deletes it with removalPolicy destroy', () => {
      const retained = Template.fromStack(new KrogerTokenBrokerStack(newApp({ clientId: 'x' }, false), 'Kept'));
      expect(resourcesOfType(retained, 'AWS::SecretsManager::Secret')[0].DeletionPolicy).toBe('Retain');
      const destroyed = Template.fromStack(
        new KrogerTokenBrokerStack(newApp({ clientId: 'x' }, false), 'Gone', {
          broker: { removalPolicy: RemovalPolicy.DESTROY },
        }),
      );
      expect(resourcesOfType(destroyed, 'AWS::SecretsManager::Secret')[0].DeletionPolicy).toBe('Delete');
    });

    it('reuses a secret retained by an earlier deploy only when clientSecretName names it, creating none', () => {
      const app = newApp({ clientId: 'x', clientSecretName: 'KrogerTokenBroker/kroger-client-secret' }, false);
      const stack = new KrogerTokenBrokerStack(app, 'KrogerTokenBroker');
      const template = Template.fromStack(stack);
      expect(resourcesOfType(template, 'AWS::SecretsManager::Secret')).toEqual([]);
      expect(environmentOf(template, 'Broker/Refresh').CLIENT_SECRET_ARN).toBe(
        'KrogerTokenBroker/kroger-client-secret',
      );
    });
  });

  describe('Feature: log retention from context (logRetention, days)', () => {
    it('sets the retention of every function log group and the API access logs', () => {
      const template = Template.fromStack(
        new KrogerTokenBrokerStack(newApp({ clientId: 'x', logRetention: '90' }, false), 'Retention'),
      );
      const groups = resourcesOfType(template, 'AWS::Logs::LogGroup');
      // Login, Callback, Refresh, Refresher, Complete and the API access logs.
      expect(groups).toHaveLength(6);
      for (const group of groups) expect(group.Properties.RetentionInDays).toBe(90);
    });

    it('rejects a number of days CloudWatch Logs does not offer, listing the ones it does', () => {
      expect(() => new KrogerTokenBrokerStack(newApp({ clientId: 'x', logRetention: '10' }, false), 'Bad')).toThrow(
        /context "logRetention" must be a number of days CloudWatch Logs offers \(1, 3, 5, 7, 14, 30, .*got 10/,
      );
    });
  });

  describe('Feature: staging and production as two stacks (stackName)', () => {
    let staging: Template;
    let production: Template;

    beforeAll(() => {
      // One app, as two `cdk deploy -c stackName=...` runs would each build one of them.
      const app = newApp({}, false);
      const stage = (name: string, clientId: string, redirectUrl: string) =>
        new KrogerTokenBrokerStack(app, name, { broker: { clientId, redirectUrl } });
      const stagingStack = stage(
        'KrogerTokenBroker-staging',
        'staging-app',
        'https://auth-staging.example.com/kroger/callback',
      );
      const productionStack = stage(
        'KrogerTokenBroker-production',
        'production-app',
        'https://auth.example.com/kroger/callback',
      );
      staging = Template.fromStack(stagingStack);
      production = Template.fromStack(productionStack);
    });

    it('sends each stage its own callback URL and client id', () => {
      expect(environmentOf(staging, 'Broker/Callback')).toMatchObject({
        CLIENT_ID: 'staging-app',
        REDIRECT_URL: 'https://auth-staging.example.com/kroger/callback',
      });
      expect(environmentOf(production, 'Broker/Callback')).toMatchObject({
        CLIENT_ID: 'production-app',
        REDIRECT_URL: 'https://auth.example.com/kroger/callback',
      });
      expect(staging.toJSON().Outputs.CallbackUrl.Value).toBe('https://auth-staging.example.com/kroger/callback');
    });

    it('gives no resource of either stage a fixed physical name that the other stage would collide with', () => {
      const nameProperties = [
        'Name',
        'TableName',
        'FunctionName',
        'LogGroupName',
        'RoleName',
        'TopicName',
        'AliasName',
      ];
      for (const template of [staging, production]) {
        for (const [logicalId, resource] of Object.entries(template.toJSON().Resources as Record<string, any>)) {
          const fixed = nameProperties.filter((p) => typeof resource.Properties?.[p] === 'string');
          // An HTTP API's Name is only a label, not unique in an account; anything else must be generated.
          const allowed = resource.Type === 'AWS::ApiGatewayV2::Api' ? ['Name'] : [];
          expect({ logicalId, fixed: fixed.filter((p) => !allowed.includes(p)) }).toEqual({ logicalId, fixed: [] });
        }
      }
    });
  });
});
