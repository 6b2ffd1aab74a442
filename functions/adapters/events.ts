/**
 * Lifecycle events about a user's grant (`token.connected`, `token.reauth_required`, ...), published
 * to EventBridge in AWS and to the structured log locally. An event carries ids and reasons, never a
 * token.
 */
import type { Logger } from './logger';

/** The event types the broker publishes, one per change of a user's state. */
export type BrokerEventType = 'token.connected' | 'token.refresh_failed' | 'token.reauth_required' | 'token.recovered';

/** Detail of every event. */
export interface BrokerEventDetail {
  readonly userId: string;
  readonly profileId?: string;
  readonly reason?: string;
  readonly consecutiveFailures?: number;
  /** ISO timestamp of the change. */
  readonly at: string;
}

/** Where events go. Publishing is best effort: a failure is logged, never fails the request. */
export interface EventPublisher {
  publish(type: BrokerEventType, detail: BrokerEventDetail): Promise<void>;
}

/** Events as structured log lines: the local stack's (and tests') publisher. */
export function logEventPublisher(logger: Logger): EventPublisher {
  return {
    async publish(type, detail) {
      logger.info('broker event', { event: type, detail });
    },
  };
}
