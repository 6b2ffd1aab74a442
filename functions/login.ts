/**
 * Lambda entry for GET /login and GET /health (API Gateway HTTP API, payload 2.0). The flow is in
 * `flows/login-flow.ts`. Wiring only: the handler is built once per execution environment from its
 * environment.
 */
import { createLoginFunctionHandler } from './handlers';
import { createServices } from './services';

export const handler = createLoginFunctionHandler(createServices(process.env));
