/**
 * Lambda entry for the scheduled refresher (an EventBridge schedule, every 5 minutes by default). The sweep is in `flows/refresh-sweep.ts`.
 * Wiring only: the handler is built once per execution environment from its environment.
 */
import { createScheduledRefresherHandler } from './handlers';
import { createServices } from './services';

export const handler = createScheduledRefresherHandler(createServices(process.env));
