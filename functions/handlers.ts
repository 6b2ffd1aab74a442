/**
 * The handlers, each built from the broker's {@link Services}: the Lambda entry files build them from
 * `process.env` at init, the local stack from its own environment object. Each factory reads the
 * configuration its handler needs at once, so a bad value fails the init, naming the variable.
 */
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
// Static on purpose: the bundler keeps only the KMS commands used (adapters/field-key.ts).
import { withDeadline } from './adapters/deadline';
import { createKmsKeyProvider } from './adapters/kms-key';
import {
  CALLBACK_FUNCTION_TIMEOUT_SECONDS,
  COMPLETE_FUNCTION_TIMEOUT_SECONDS,
  LOGIN_FUNCTION_TIMEOUT_SECONDS,
  requestDeadlineMs,
} from './core/budget';
import { readFlowConfig, readIntSetting } from './core/config';
import type { CompleteFunctionResult } from './core/connect';
import { HEALTH_PATH, healthResult, readBrokerVersion } from './core/health';
import type { HttpResult } from './core/http';
import type { RefreshFunctionResult } from './core/refresh-protocol';
import { REFRESHER_SETTINGS, REFRESHER_STOP_BEFORE_TIMEOUT_MS } from './core/schema';
import { handleCallback, UNKEPT_REVOKE_TIMEOUT_MS } from './flows/callback-flow';
import { handleCompleteRequest } from './flows/complete-flow';
import { handleLogin } from './flows/login-flow';
import { handleRefreshRequest } from './flows/refresh-function-flow';
import { type RefreshSweepReport, runRefreshSweep } from './flows/refresh-sweep';
import {
  eventPublisher,
  fieldCipher,
  providerClient,
  providerConfig,
  refreshPolicy,
  secretSource,
  type Services,
  sessionStore,
  tokenRefresher,
  tokenStore,
} from './services';

/** What a handler reads of the Lambda context: the time left before the function's timeout. */
export type DeadlineContext = Pick<Context, 'getRemainingTimeInMillis'>;

/** An API Gateway HTTP API (payload 2.0) handler. */
export type HttpHandler = (event: APIGatewayProxyEventV2, context?: DeadlineContext) => Promise<HttpResult>;

/**
 * Runs `work` under the request's deadline (`core/budget.ts`): every AWS call and provider request
 * inside it is cut to the time left, so the function answers before its timeout. Without a Lambda
 * context (the local stack) the function's configured timeout is the limit.
 */
function underDeadline<T>(
  timeoutSeconds: number,
  context: DeadlineContext | undefined,
  work: () => Promise<T>,
  reservedMs = 0,
) {
  const now = Date.now();
  return withDeadline(requestDeadlineMs(now, timeoutSeconds, context?.getRemainingTimeInMillis?.()) - reservedMs, work);
}

/**
 * GET /login: needs no client secret, so it never touches the Secrets Manager client. It encrypts
 * the code verifier it stores (the field key, for `sessions` only).
 */
export function createLoginHandler(services: Services): HttpHandler {
  const deps = {
    provider: providerConfig(services),
    flow: readFlowConfig(services.env),
    sessions: sessionStore(services),
    logger: services.logger,
  };
  fieldCipher(services, createKmsKeyProvider);
  return (event, context) => underDeadline(LOGIN_FUNCTION_TIMEOUT_SECONDS, context, () => handleLogin(event, deps));
}

/**
 * GET /health, for uptime checks: reads the version once, here, and answers every call from memory
 * (no table, no secret, nothing that could leak).
 */
export function createHealthHandler(services: Services): HttpHandler {
  const version = readBrokerVersion(services.env);
  return async () => healthResult(version);
}

/**
 * The login function: GET /login, and GET /health on the same function, so that an uptime check
 * proves the function and configuration people meet at /login start (and keeps it warm). Both are
 * built at init: a bad configuration fails both routes.
 */
export function createLoginFunctionHandler(services: Services): HttpHandler {
  const login = createLoginHandler(services);
  const health = createHealthHandler(services);
  const healthRoute = `GET ${HEALTH_PATH}`;
  return (event, context) => (event.routeKey === healthRoute ? health(event) : login(event, context));
}

/**
 * GET /callback. The client secret is read from Secrets Manager on first use and cached. It decrypts
 * the code verifier and encrypts the refresh token it stores.
 */
export function createCallbackHandler(services: Services): HttpHandler {
  const secret = secretSource(services);
  const cipher = fieldCipher(services, createKmsKeyProvider);
  const deps = {
    provider: providerConfig(services),
    client: providerClient(services),
    sessions: sessionStore(services),
    tokens: tokenStore(services),
    events: eventPublisher(services),
    logger: services.logger,
    policy: refreshPolicy(services),
    flow: readFlowConfig(services.env),
    // The secret and the key that seals the tokens, before the attempt is consumed (both cached).
    // (`sessions` seals a connect link's pending connection.)
    ready: async () => {
      await Promise.all([secret(), cipher.ready('tokens'), cipher.ready('sessions')]);
    },
  };
  return (event, context) =>
    // The revocation of an unkept grant has its own time after the steps' deadline.
    underDeadline(
      CALLBACK_FUNCTION_TIMEOUT_SECONDS,
      context,
      () => handleCallback(event, deps),
      UNKEPT_REVOKE_TIMEOUT_MS,
    );
}

/**
 * The complete function an app backend invokes with `{"connectCode": ..., "appUserId": ...}`. It needs
 * the tables and the event bus, and neither the provider settings nor the client secret.
 */
export function createCompleteFunctionHandler(
  services: Services,
): (event: unknown, context?: DeadlineContext) => Promise<CompleteFunctionResult> {
  // It seals the refresh token it stores: checked before the pending connection is closed.
  const cipher = fieldCipher(services, createKmsKeyProvider);
  const deps = {
    sessions: sessionStore(services),
    tokens: tokenStore(services),
    events: eventPublisher(services),
    logger: services.logger,
    policy: refreshPolicy(services),
    ready: () => cipher.ready('tokens'),
  };
  return (event, context) =>
    underDeadline(COMPLETE_FUNCTION_TIMEOUT_SECONDS, context, () => handleCompleteRequest(event, deps));
}

/** The refresh function other services' readers invoke with `{"userId": ...}`. */
export function createRefreshFunctionHandler(services: Services): (event: unknown) => Promise<RefreshFunctionResult> {
  secretSource(services);
  const deps = { refresher: tokenRefresher(services), logger: services.logger };
  fieldCipher(services, createKmsKeyProvider);
  return (event) => handleRefreshRequest(event, deps);
}

/**
 * The scheduled refresher (an EventBridge schedule). It stops starting new users
 * {@link REFRESHER_STOP_BEFORE_TIMEOUT_MS} before the Lambda timeout: one user can take up to 12 s
 * waiting for a reader's lease and then a whole lease's work (`core/budget.ts`).
 */
export function createScheduledRefresherHandler(
  services: Services,
): (event: unknown, context?: Pick<Context, 'getRemainingTimeInMillis'>) => Promise<RefreshSweepReport> {
  const setting = (name: keyof typeof REFRESHER_SETTINGS) => {
    const { default: fallback, min, max } = REFRESHER_SETTINGS[name];
    return readIntSetting(services.env, name, fallback, min, max);
  };
  const windowSeconds = setting('REFRESH_WINDOW_SECONDS');
  const concurrency = setting('REFRESH_CONCURRENCY');
  secretSource(services);
  const deps = { tokens: tokenStore(services), refresher: tokenRefresher(services), logger: services.logger };
  fieldCipher(services, createKmsKeyProvider);
  return (_event, context) => {
    const remaining = context?.getRemainingTimeInMillis?.();
    const deadlineMs = remaining === undefined ? undefined : Date.now() + remaining - REFRESHER_STOP_BEFORE_TIMEOUT_MS;
    return runRefreshSweep(deps, { windowSeconds, concurrency, deadlineMs });
  };
}
