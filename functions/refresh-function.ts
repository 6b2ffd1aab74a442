/**
 * Lambda entry for the refresh function, invoked by other services' readers with `{"userId": "...", "forceRefresh"?: true, "marginSeconds"?: 300}`. The flow is in `flows/refresh-function-flow.ts`.
 * Wiring only: the handler is built once per execution environment from its environment.
 */
import { createRefreshFunctionHandler } from './handlers';
import { createServices } from './services';

export const handler = createRefreshFunctionHandler(createServices(process.env));
