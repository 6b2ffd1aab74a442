/**
 * `GET /health` in AWS (issue 14): a public route on the login function, the version it reports set
 * from package.json, no new permission, and the URL an uptime check is given (on the custom domain
 * when there is one). What the bundle answers is in test/integration/bundles.test.ts. No bundling here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { KrogerTokenBroker } from '../../infra/broker';
import { KrogerTokenBrokerStack } from '../../infra/stack';
import { environmentOf, logicalIdOf, newApp, policyLinesForRole, PROJECT_ROOT, roleOfFunction } from './support';

const VERSION: string = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')).version;

describe('Construct: KrogerTokenBroker', () => {
  describe('Feature: GET /health', () => {
    let stack: Stack;
    let broker: KrogerTokenBroker;
    let template: Template;

    beforeAll(() => {
      stack = new Stack(newApp({}, false), 'Health', { env: { account: '123456789012', region: 'eu-west-1' } });
      broker = new KrogerTokenBroker(stack, 'Broker', { clientId: 'x' });
      template = Template.fromStack(stack);
    });

    it('routes GET /health, without an authorizer, to the login function', () => {
      const route = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).find(
        (r) => r.Properties.RouteKey === 'GET /health',
      );
      expect(route?.Properties.AuthorizationType).toBe('NONE');
      const integrationId = route!.Properties.Target['Fn::Join'][1][1].Ref;
      expect(template.toJSON().Resources[integrationId].Properties).toMatchObject({
        IntegrationType: 'AWS_PROXY',
        PayloadFormatVersion: '2.0',
        IntegrationUri: { 'Fn::GetAtt': [logicalIdOf(template, 'Broker/Login/Resource'), 'Arn'] },
      });
    });

    it('gives the login function the package.json version as BROKER_VERSION, and no other function', () => {
      expect(environmentOf(template, 'Broker/Login').BROKER_VERSION).toBe(VERSION);
      for (const name of ['Callback', 'Refresh', 'Refresher']) {
        expect(environmentOf(template, `Broker/${name}`)).not.toHaveProperty('BROKER_VERSION');
      }
    });

    it('adds no permission: the login role still reaches only its log group, the sessions table and its key', () => {
      expect(policyLinesForRole(template, roleOfFunction(template, 'Broker/Login'))).toEqual([
        'dynamodb:DeleteItem,dynamodb:GetItem,dynamodb:PutItem -> Broker/SessionsTable.Arn',
        'kms:Decrypt,kms:Encrypt,kms:GenerateDataKey -> Broker/TableKey.Arn',
        'kms:GenerateDataKey -> Broker/FieldKey.Arn if {"StringEquals":{"kms:EncryptionContext:purpose":"sessions"}}',
        'logs:CreateLogStream,logs:PutLogEvents -> Broker/LoginLogs.Arn',
      ]);
    });

    it('exposes the health URL on the API endpoint', () => {
      expect(stack.resolve(broker.healthUrl)).toEqual({
        'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalIdOf(template, 'Broker/Api/Resource'), 'ApiEndpoint'] }, '/health']],
      });
    });

    it('outputs HealthUrl on the custom domain when redirectUrl puts one in front of the API', () => {
      const custom = new KrogerTokenBrokerStack(
        newApp({ clientId: 'x', redirectUrl: 'https://auth.example.com/kroger/callback' }, false),
        'HealthOnCustomDomain',
      );
      const outputs = Template.fromStack(custom).toJSON().Outputs;
      expect(outputs.HealthUrl.Value).toBe('https://auth.example.com/kroger/health');
      expect(outputs.ApiId.Value).toEqual({ Ref: expect.stringMatching(/^BrokerApi/) });
    });
  });
});
