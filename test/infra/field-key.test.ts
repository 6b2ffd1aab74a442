/**
 * The field key (issue 12): the KMS key that encrypts refresh tokens and code verifiers inside the
 * items. Its key policy is what decides who may use it (it does not defer to IAM for use, unlike the
 * table key), so both the key policy and the roles' policies are checked, as readable lines per
 * principal: the broker's login, callback, refresh and refresher roles, each for what it does; token
 * readers, connect-link creators and the account's other principals get nothing.
 */
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { KrogerTokenBroker } from '../../infra/broker';
import { FIELD_KEY_ADMIN_ACTIONS } from '../../infra/broker/storage';
import { KrogerTokenBrokerStack } from '../../infra/stack';
import { environmentOf, logicalIdOf, newApp, policyLinesForRole, propertiesOf, roleOfFunction } from './support';

const ACCOUNT = '123456789012';
/** Any action that reveals or makes key material, or lets someone give themselves that right. */
const USE = /^kms:(\*|Decrypt|Encrypt|GenerateDataKey.*|ReEncrypt.*|CreateGrant|Import.*)$/;

type KeyStatement = {
  Sid?: string;
  Effect: string;
  Principal: { AWS: unknown };
  Action: string | string[];
  Resource: string;
  Condition?: unknown;
};

let template: Template;

function consumer(stack: Stack, id: string): lambda.Function {
  return new lambda.Function(stack, id, {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => {};'),
  });
}

beforeAll(() => {
  const stack = new Stack(newApp({}, false), 'FieldKeyTest', { env: { account: ACCOUNT, region: 'eu-west-1' } });
  const broker = new KrogerTokenBroker(stack, 'Broker', { clientId: 'field-key-client' });
  broker.addTokenReader(consumer(stack, 'Reader'));
  broker.addLoginLinkCreator(consumer(stack, 'LinkCreator'));
  const appRole = new iam.Role(stack, 'AppRole', { assumedBy: new iam.AccountRootPrincipal() });
  broker.grantReadTokens(appRole);
  broker.grantCreateLoginLinks(appRole);
  template = Template.fromStack(stack);
});

/** The key policy as `<principal>: <actions> [if <condition>]` lines, principals named by construct. */
function keyPolicyLines(): string[] {
  const roles: Record<string, string> = {};
  for (const name of ['Login', 'Callback', 'Refresh', 'Refresher', 'Complete']) {
    roles[roleOfFunction(template, `Broker/${name}`)] = name;
  }
  const statements: KeyStatement[] = propertiesOf(template, 'Broker/FieldKey/Resource').KeyPolicy.Statement;
  return statements
    .map((statement) => {
      expect(statement.Effect).toBe('Allow');
      expect(statement.Resource).toBe('*');
      const principal = statement.Principal.AWS;
      const who =
        principal === `arn:aws:iam::${ACCOUNT}:root`
          ? 'account'
          : (roles[(principal as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]] ?? JSON.stringify(principal));
      const actions = [statement.Action].flat().sort().join(',');
      return `${who}: ${actions}${statement.Condition ? ` if ${JSON.stringify(statement.Condition)}` : ''}`;
    })
    .sort();
}

const context = (purpose: string) => `{"StringEquals":{"kms:EncryptionContext:purpose":"${purpose}"}}`;

describe('Construct: KrogerTokenBroker', () => {
  describe('field key', () => {
    it('is a customer-managed key with yearly rotation, retained with the tables by default', () => {
      const key = template.toJSON().Resources[logicalIdOf(template, 'Broker/FieldKey/Resource')];
      expect(key.Type).toBe('AWS::KMS::Key');
      expect(key.Properties.EnableKeyRotation).toBe(true);
      expect(key.DeletionPolicy).toBe('Retain');
      expect(key.UpdateReplacePolicy).toBe('Retain');
      // Not the table key: readers hold kms:Decrypt on that one.
      expect(logicalIdOf(template, 'Broker/FieldKey/Resource')).not.toBe(
        logicalIdOf(template, 'Broker/TableKey/Resource'),
      );
    });

    it('is deleted with the tables when the removal policy says destroy', () => {
      const stack = new Stack(newApp({}, false), 'Destroy');
      new KrogerTokenBroker(stack, 'Broker', { clientId: 'c', removalPolicy: RemovalPolicy.DESTROY });
      const destroyed = Template.fromStack(stack);
      expect(destroyed.toJSON().Resources[logicalIdOf(destroyed, 'Broker/FieldKey/Resource')].DeletionPolicy).toBe(
        'Delete',
      );
    });

    it('lets each broker role use the key for its own purposes only, and nobody else use it at all', () => {
      expect(keyPolicyLines()).toEqual([
        `Callback: kms:Decrypt,kms:GenerateDataKey if ${context('sessions')}`,
        `Callback: kms:GenerateDataKey if ${context('tokens')}`,
        `Complete: kms:Decrypt if ${context('sessions')}`,
        `Complete: kms:GenerateDataKey if ${context('tokens')}`,
        `Login: kms:GenerateDataKey if ${context('sessions')}`,
        `Refresh: kms:Decrypt,kms:GenerateDataKey if ${context('tokens')}`,
        `Refresher: kms:Decrypt,kms:GenerateDataKey if ${context('tokens')}`,
        `account: ${[...FIELD_KEY_ADMIN_ACTIONS].sort().join(',')}`,
      ]);
    });

    it('leaves the account administration of the key but no use of it (no kms:*, Decrypt, CreateGrant)', () => {
      for (const action of FIELD_KEY_ADMIN_ACTIONS) expect(action).not.toMatch(USE);
      const statements: KeyStatement[] = propertiesOf(template, 'Broker/FieldKey/Resource').KeyPolicy.Statement;
      const usable = statements.filter((st) => [st.Action].flat().some((action) => USE.test(action)));
      // Every statement that allows a use names one role and carries a purpose condition.
      expect(usable).toHaveLength(7);
      for (const statement of usable) {
        expect(statement.Principal.AWS).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/Role/), 'Arn'] });
        expect(statement.Condition).toEqual({
          StringEquals: { 'kms:EncryptionContext:purpose': expect.stringMatching(/^(tokens|sessions)$/) },
        });
      }
    });

    it('gives the callback no way to decrypt a stored refresh token, and login no way to decrypt anything', () => {
      const callback = policyLinesForRole(template, roleOfFunction(template, 'Broker/Callback'));
      const login = policyLinesForRole(template, roleOfFunction(template, 'Broker/Login'));
      expect(callback.filter((line) => line.includes('FieldKey'))).toEqual([
        `kms:Decrypt,kms:GenerateDataKey -> Broker/FieldKey.Arn if ${context('sessions')}`,
        `kms:GenerateDataKey -> Broker/FieldKey.Arn if ${context('tokens')}`,
      ]);
      expect(login.filter((line) => line.includes('FieldKey'))).toEqual([
        `kms:GenerateDataKey -> Broker/FieldKey.Arn if ${context('sessions')}`,
      ]);
    });

    it('grants token readers and connect-link creators nothing on the field key', () => {
      for (const role of ['Reader/ServiceRole/Resource', 'LinkCreator/ServiceRole/Resource', 'AppRole/Resource']) {
        const lines = policyLinesForRole(template, logicalIdOf(template, role));
        expect(lines.length).toBeGreaterThan(0);
        expect(lines.filter((line) => line.includes('FieldKey'))).toEqual([]);
      }
      expect(environmentOf(template, 'Reader')).not.toHaveProperty('FIELD_KEY_ARN');
      expect(environmentOf(template, 'LinkCreator')).not.toHaveProperty('FIELD_KEY_ARN');
    });

    it('names the field key (FIELD_KEY_ARN) to the five functions it is granted to', () => {
      for (const name of ['Login', 'Callback', 'Refresh', 'Refresher', 'Complete']) {
        expect(environmentOf(template, `Broker/${name}`).FIELD_KEY_ARN).toBe('Broker/FieldKey.Arn');
      }
    });
  });

  describe('IAM', () => {
    it('grants the callback no GetItem on the tokens table: it writes a login with one UpdateItem', () => {
      const callback = policyLinesForRole(template, roleOfFunction(template, 'Broker/Callback'));
      expect(callback.filter((line) => line.includes('TokensTable'))).toEqual([
        'dynamodb:UpdateItem -> Broker/TokensTable.Arn',
      ]);
    });
  });
});

describe('Stack: KrogerTokenBrokerStack', () => {
  it('outputs the field key ARN', () => {
    const stack = new KrogerTokenBrokerStack(newApp({ clientId: 'c' }, false), 'FieldKeyOutput');
    const outputs = Template.fromStack(stack).toJSON().Outputs;
    expect(outputs.FieldKeyArn.Value).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^BrokerFieldKey/), 'Arn'] });
  });
});
