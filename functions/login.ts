/**
 * Lambda entry for GET /login (API Gateway HTTP API, payload 2.0). The flow is in `flows/login-flow.ts`.
 * Wiring only: the handler is built once per execution environment from its environment.
 */
import { createLoginHandler } from './handlers';
import { createServices } from './services';

export const handler = createLoginHandler(createServices(process.env));
