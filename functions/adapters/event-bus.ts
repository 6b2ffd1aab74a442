/**
 * EventBridge publisher for lifecycle events. The EventBridge client is loaded on first publish,
 * not at import: most invocations publish nothing, and cold start pays only for what it uses.
 */
import { EVENTS_CALL_BUDGET_MS } from '../core/budget';
import type { Env } from '../core/config';
import { EventsUnavailableError } from '../core/errors';
import { AWS_CLIENT_LIMITS, callAws, classifyAwsError } from './aws-call';
import { type EventPublisher, logEventPublisher } from './events';
import type { Logger } from './logger';

/** The `source` of every event the broker puts on the bus. */
export const EVENT_SOURCE = 'kroger-token-broker';

/**
 * Publishes to the bus named by `EVENT_BUS_NAME`; without it (local runs) events go to the log.
 */
export function createEventPublisher(env: Env, logger: Logger): EventPublisher {
  const busName = env.EVENT_BUS_NAME?.trim();
  if (!busName) return logEventPublisher(logger);
  let client: Promise<{ send: (detailType: string, detail: string) => Promise<void> }> | undefined;
  const load = async () => {
    const sdk = await import('@aws-sdk/client-eventbridge');
    const eventBridge = new sdk.EventBridgeClient(AWS_CLIENT_LIMITS);
    return {
      async send(detailType: string, detail: string) {
        let out;
        try {
          out = await callAws(
            EVENTS_CALL_BUDGET_MS,
            (options) =>
              eventBridge.send(
                new sdk.PutEventsCommand({
                  Entries: [{ EventBusName: busName, Source: EVENT_SOURCE, DetailType: detailType, Detail: detail }],
                }),
                options,
              ),
            (fault, cause) =>
              new EventsUnavailableError(`EventBridge is unavailable (${fault.name})`, {
                cause,
                retryAfterSeconds: fault.retryAfterSeconds,
              }),
          );
        } catch (error) {
          if (error instanceof EventsUnavailableError) throw error;
          throw new EventsUnavailableError(
            `EventBridge refused the event (${error instanceof Error ? error.name : 'unknown error'})`,
            {
              cause: error,
              retryable: false,
            },
          );
        }
        if (out.FailedEntryCount) {
          // A failed entry names its error: a throttled or failing bus may take it later, a refused one never.
          const errorCode = out.Entries?.[0]?.ErrorCode ?? 'unknown';
          const named = Object.assign(new Error(errorCode), { name: errorCode });
          throw new EventsUnavailableError(`EventBridge refused the event (${errorCode})`, {
            retryable: classifyAwsError(named) !== undefined,
          });
        }
      },
    };
  };
  return {
    async publish(type, detail) {
      client ??= load();
      await (await client).send(type, JSON.stringify(detail));
      logger.info('broker event published', { event: type, userId: detail.userId });
    },
  };
}
