/**
 * Lambda entry for GET /callback (API Gateway HTTP API, payload 2.0). Thin: wiring only; the flow is
 * in `flows/callback-flow.ts`. The client secret is read from Secrets Manager on first use and
 * cached in the execution environment.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { readProviderConfig, readSecretConfig } from './core/config';
import type { HttpResult } from './core/http';
import { createEventPublisher } from './adapters/event-bus';
import { createProviderClient } from './adapters/provider';
import { createSecretSource } from './adapters/secret';
import { DynamoSessionStore } from './adapters/session-store';
import { DynamoTokenStore } from './adapters/token-store';
import { type CallbackDeps, handleCallback } from './flows/callback-flow';
import { dynamo, logger, storeConfig } from './runtime';

const provider = readProviderConfig(process.env);

const deps: CallbackDeps = {
  provider,
  client: createProviderClient(provider, createSecretSource(readSecretConfig(process.env))),
  sessions: new DynamoSessionStore(dynamo, storeConfig.sessionsTable),
  tokens: new DynamoTokenStore(dynamo, storeConfig.tokensTable),
  events: createEventPublisher(process.env, logger),
  logger,
};

/** GET /callback */
export const handler = (event: APIGatewayProxyEventV2): Promise<HttpResult> => handleCallback(event, deps);
