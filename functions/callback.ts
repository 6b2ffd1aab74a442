/**
 * Lambda entry for GET /callback (API Gateway HTTP API, payload 2.0). The flow is in `flows/callback-flow.ts`.
 * Wiring only: the handler is built once per execution environment from its environment.
 */
import { createCallbackHandler } from './handlers';
import { createServices } from './services';

export const handler = createCallbackHandler(createServices(process.env));
