/**
 * Lambda entry for GET /login (API Gateway HTTP API, payload 2.0). Thin: wiring only; the flow is in
 * `flows/login-flow.ts`. Needs no client secret, so it never imports the Secrets Manager client.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { readFlowConfig, readProviderConfig } from './core/config';
import type { HttpResult } from './core/http';
import { DynamoSessionStore } from './adapters/session-store';
import { handleLogin, type LoginDeps } from './flows/login-flow';
import { dynamo, logger, storeConfig } from './runtime';

const deps: LoginDeps = {
  provider: readProviderConfig(process.env),
  flow: readFlowConfig(process.env),
  sessions: new DynamoSessionStore(dynamo, storeConfig.sessionsTable),
  logger,
};

/** GET /login */
export const handler = (event: APIGatewayProxyEventV2): Promise<HttpResult> => handleLogin(event, deps);
