/**
 * Small promise helpers for tests that hold flows open (fakes that answer later, leases held by
 * another caller): a bound on waiting, so a broken flow fails its test instead of hanging it, and a
 * way to let pending callbacks run.
 */

/** Rejects with "timed out" if `promise` has not settled in `ms`: a test fails instead of hanging. */
export function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Lets pending promise callbacks run (the fakes answer asynchronously). */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
