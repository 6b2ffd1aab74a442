/**
 * The HTTP API serving `GET /login`, `GET /callback` and `GET /health`: the API, its `$default` stage with access
 * logs and throttling, the public routes, and the URLs a person and Kroger are given. Created in
 * the broker's scope under the IDs `Api`, `ApiAccessLogs` and `DefaultStage`.
 */
import { Fn, Token, Validations } from 'aws-cdk-lib';
import * as apigwv1 from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { loginUrlFromRedirect } from '../../functions/core/config';
import type { ResolvedBrokerProps } from './defaults';

/** The API, its stage and its URLs (see the members of the same names on the broker). */
export interface BrokerApi {
  readonly api: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;
  readonly callbackUrl: string;
  readonly redirectUrl: string;
  readonly loginUrl: string;
  readonly healthUrl: string;
}

/**
 * Creates the API and its stage (no routes yet: {@link addPublicRoute} adds them once the
 * functions exist).
 * @param scope the broker: the IDs are relative to it
 */
export function createApi(scope: Construct, props: ResolvedBrokerProps): BrokerApi {
  const api = new apigwv2.HttpApi(scope, 'Api', {
    description: 'Kroger token broker: hosted login and OAuth2 callback',
    // The stage is created below so it can carry access logs and throttling.
    createDefaultStage: false,
  });
  const stage = createStage(scope, api, props);
  const callbackUrl = `${api.apiEndpoint}/callback`;
  return {
    api,
    stage,
    callbackUrl,
    redirectUrl: props.redirectUrl ?? callbackUrl,
    // Login and callback on one host: the browser-binding cookie /login sets (host-only) must be
    // sent to the callback Kroger redirects to.
    loginUrl: props.redirectUrl ? siblingOfCallback(props.redirectUrl, '/login') : `${api.apiEndpoint}/login`,
    healthUrl: props.redirectUrl ? siblingOfCallback(props.redirectUrl, '/health') : `${api.apiEndpoint}/health`,
  };
}

/** Why the sign-in routes are open to anyone (cdk-nag AwsSolutions-APIG4). */
const SIGN_IN_ROUTE_REASON =
  "is public by design: a person's browser reaches it before any identity exists; the OAuth2 state, PKCE and the browser-binding cookie protect the flow.";

/** A `GET` route open to anyone, with the cdk-nag acknowledgment that says why. */
export function addPublicRoute(
  api: apigwv2.HttpApi,
  routePath: string,
  integrationId: string,
  fn: lambda.IFunction,
  reason = SIGN_IN_ROUTE_REASON,
): void {
  const [route] = api.addRoutes({
    path: routePath,
    methods: [apigwv2.HttpMethod.GET],
    integration: new HttpLambdaIntegration(integrationId, fn),
  });
  Validations.of(route).acknowledge({
    id: 'AwsSolutions::AwsSolutions-APIG4',
    reason: `${routePath} ${reason}`,
  });
}

function createStage(scope: Construct, httpApi: apigwv2.HttpApi, props: ResolvedBrokerProps): apigwv2.HttpStage {
  const accessLogs = new logs.LogGroup(scope, 'ApiAccessLogs', {
    retention: props.logRetention,
    removalPolicy: props.removalPolicy,
  });
  return new apigwv2.HttpStage(scope, 'DefaultStage', {
    httpApi,
    autoDeploy: true,
    throttle: props.apiThrottle,
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

/**
 * A route beside the callback on the host and path of a redirect URI: its trailing `/callback`
 * becomes `route` (query dropped), as `createLoginLink` derives the login URL from `REDIRECT_URL`.
 * An unresolved token (a deploy-time value) is cut at its first `/callback` in CloudFormation instead.
 */
function siblingOfCallback(redirectUrl: string, route: '/login' | '/health'): string {
  if (Token.isUnresolved(redirectUrl)) {
    return Fn.join('', [Fn.select(0, Fn.split('/callback', redirectUrl)), route]);
  }
  const login = loginUrlFromRedirect(redirectUrl);
  return route === '/login' ? login : login.replace(/\/login$/, route);
}
