/**
 * The deadline of the request being handled, carried across every adapter without threading a
 * parameter through each store and client method: the callback must answer before API Gateway (and
 * its own Lambda timeout) gives up, so every AWS call and provider request it makes is cut to what
 * is left (`core/budget.ts`). Outside a {@link withDeadline} scope nothing is cut but each call's own
 * limit.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const scope = new AsyncLocalStorage<number>();

/** Runs `work` with every call inside it limited to end by `deadlineMs` (epoch milliseconds). */
export function withDeadline<T>(deadlineMs: number, work: () => Promise<T>): Promise<T> {
  return scope.run(deadlineMs, work);
}

/**
 * A call's limit: its own, or the time left before the current deadline when that is shorter (never
 * below 0: a call past the deadline gets no time at all).
 */
export function limitMs(ownLimitMs: number, nowMs: number = Date.now()): number {
  const deadline = scope.getStore();
  return deadline === undefined ? ownLimitMs : Math.max(0, Math.min(ownLimitMs, deadline - nowMs));
}
