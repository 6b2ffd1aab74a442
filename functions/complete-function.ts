/**
 * Lambda entry for the complete function, invoked by the app's backend with `{"connectCode": "...", "appUserId": "..."}`. The flow is in `flows/complete-flow.ts`.
 * Wiring only: the handler is built once per execution environment from its environment.
 */
import { createCompleteFunctionHandler } from './handlers';
import { createServices } from './services';

export const handler = createCompleteFunctionHandler(createServices(process.env));
