/**
 * A custom domain in front of the API (`redirectUrl`): the login URL, its output and the connect-link
 * environment move to the callback's host, because the browser-binding cookie set at /login must be
 * sent to /callback. No bundling: nothing here looks at code assets.
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { KrogerTokenBroker } from '../../infra/broker';
import { KrogerTokenBrokerStack } from '../../infra/stack';
import { environmentOf, logicalIdOf, newApp, policyLinesForRole } from './support';

const REDIRECT = 'https://auth.example.com/kroger/callback';
const LOGIN = 'https://auth.example.com/kroger/login';

describe('Construct: KrogerTokenBroker', () => {
  describe('Feature: custom domain (redirectUrl)', () => {
    let stack: KrogerTokenBrokerStack;
    let template: Template;

    beforeAll(() => {
      const app = newApp(
        { clientId: 'x', redirectUrl: REDIRECT, returnToAllowlist: 'https://app.example.com/kroger' },
        false,
      );
      stack = new KrogerTokenBrokerStack(app, 'CustomDomain');
      const backend = new iam.Role(stack, 'AppBackend', { assumedBy: new iam.AccountRootPrincipal() });
      stack.broker.grantCreateLoginLinks(backend);
      template = Template.fromStack(stack);
    });

    it('derives the login URL from the redirect URL: same host and path, /login for /callback', () => {
      expect(stack.broker.redirectUrl).toBe(REDIRECT);
      expect(stack.broker.loginUrl).toBe(LOGIN);
    });

    it('outputs that login URL and the redirect URL, not the API endpoint', () => {
      const outputs = template.toJSON().Outputs;
      expect(outputs.LoginUrl.Value).toBe(LOGIN);
      expect(outputs.CallbackUrl.Value).toBe(REDIRECT);
    });

    it('sends the custom redirect URL to Kroger from every function', () => {
      for (const name of ['Login', 'Callback', 'Refresh', 'Refresher']) {
        expect(environmentOf(template, `Broker/${name}`).REDIRECT_URL).toBe(REDIRECT);
      }
    });

    it('gives connect-link creators that login URL and the allow-list createLoginLink checks returnTo against', () => {
      expect(Stack.of(stack).resolve(stack.broker.loginLinkEnvironment)).toEqual({
        SESSIONS_TABLE: { Ref: logicalIdOf(template, 'Broker/SessionsTable/Resource') },
        LOGIN_URL: LOGIN,
        COMPLETE_FUNCTION_NAME: { Ref: logicalIdOf(template, 'Broker/Complete/Resource') },
        RETURN_TO_ALLOWLIST: 'https://app.example.com/kroger',
      });
    });

    it('grants a role connecting accounts link PutItems on sessions, the table key and the complete function only', () => {
      expect(policyLinesForRole(template, logicalIdOf(template, 'AppBackend/Resource'))).toEqual([
        expect.stringMatching(/^dynamodb:PutItem -> Broker\/SessionsTable\.Arn if \{"ForAllValues:StringLike"/),
        'kms:Decrypt,kms:Encrypt,kms:GenerateDataKey -> Broker/TableKey.Arn',
        'lambda:InvokeFunction -> Broker/Complete.Arn',
      ]);
    });

    it.each([
      ['https://auth.example.com/callback', 'https://auth.example.com/login'],
      ['https://auth.example.com/callback?x=1', 'https://auth.example.com/login'],
      ['https://auth.example.com:8443/a/b/callback/', 'https://auth.example.com:8443/a/b/login'],
    ])('turns %s into %s', (redirectUrl, loginUrl) => {
      const broker = new KrogerTokenBroker(new Stack(newApp({}, false), 'Derive'), 'Broker', {
        clientId: 'x',
        redirectUrl,
      });
      expect(broker.loginUrl).toBe(loginUrl);
    });

    it('cuts a deploy-time redirect URL at /callback in CloudFormation', () => {
      const scope = new Stack(newApp({}, false), 'Deferred');
      const redirectUrl = ssm.StringParameter.valueForStringParameter(scope, '/kroger/redirect-url');
      const broker = new KrogerTokenBroker(scope, 'Broker', { clientId: 'x', redirectUrl });
      const resolvedRedirect = scope.resolve(redirectUrl);
      expect(scope.resolve(broker.loginUrl)).toEqual({
        'Fn::Join': ['', [{ 'Fn::Select': [0, { 'Fn::Split': ['/callback', resolvedRedirect] }] }, '/login']],
      });
    });
  });
});
