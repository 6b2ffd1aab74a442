/**
 * An in-memory {@link RefusalCounter} for fast refresh tests: the same fixed windows as the DynamoDB
 * counter (`functions/adapters/refusal-counter.ts`), one counter per refusal shape, the count of the
 * current window and of the one just before it. test/integration/refusal-counter-contract.test.ts
 * runs one set of cases against both.
 */
import type { RefusalShapeName } from '../../functions/core/errors';
import type { RefusalCounts } from '../../functions/core/refusals';
import type { RefusalCounter } from '../../functions/adapters/refusal-counter';

export class MemoryRefusalCounter implements RefusalCounter {
  /** Per shape: the window the counter is in, its count, and the count of the window before. */
  readonly counters = new Map<RefusalShapeName, { window: number; count: number; previousCount: number }>();
  /** Every call's arguments, in order. */
  readonly calls: Array<{ shape: RefusalShapeName; nowMs: number; windowSeconds: number }> = [];
  /** Makes every count reject, as an unreachable sessions table would. */
  failing = false;

  async count(shape: RefusalShapeName, nowMs: number, windowSeconds: number): Promise<RefusalCounts> {
    this.calls.push({ shape, nowMs, windowSeconds });
    if (this.failing) throw new Error('the sessions table is unavailable');
    const window = Math.floor(nowMs / 1000 / windowSeconds);
    const found = this.counters.get(shape);
    // The window is current (or a process with a faster clock moved it on): count into it.
    if (found && found.window >= window) {
      found.count += 1;
      return { current: found.count, previous: found.previousCount };
    }
    // A new window: carry the last one's count only if it was the one just before.
    const previous = found?.window === window - 1 ? found.count : 0;
    this.counters.set(shape, { window, count: 1, previousCount: previous });
    return { current: 1, previous };
  }
}
