/**
 * EventBridge publisher for lifecycle events. The EventBridge client is loaded on first publish,
 * not at import: most invocations publish nothing, and cold start pays only for what it uses.
 */
import type { Env } from '../core/config';
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
    const eventBridge = new sdk.EventBridgeClient({});
    return {
      async send(detailType: string, detail: string) {
        const out = await eventBridge.send(
          new sdk.PutEventsCommand({
            Entries: [{ EventBusName: busName, Source: EVENT_SOURCE, DetailType: detailType, Detail: detail }],
          }),
        );
        if (out.FailedEntryCount) {
          throw new Error(`EventBridge refused the event: ${out.Entries?.[0]?.ErrorCode ?? 'unknown'}`);
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
