/**
 * One contract, two implementations: the DynamoDB refusal counter against DynamoDB Local, and the
 * in-memory counter the fast refresh tests use (test/support/memory-refusal-counter.ts). Every case
 * runs against both, so the fake cannot drift from the real windows unnoticed.
 */
import type { RefusalCounter } from '../../functions/adapters/refusal-counter';
import { DynamoRefusalCounter } from '../../functions/adapters/refusal-counter';
import { MemoryRefusalCounter } from '../support/memory-refusal-counter';
import { createTestStores } from '../support/stores';

const WINDOW = 600;
/** The start of a window, in epoch milliseconds. */
const W0 = 1_666 * WINDOW * 1000;

describe.each([
  [
    'DynamoRefusalCounter',
    async () => {
      const stores = await createTestStores('refusal-contract');
      return {
        counter: new DynamoRefusalCounter(stores.client, stores.config.sessionsTable) as RefusalCounter,
        dispose: () => stores.client.destroy(),
      };
    },
  ],
  ['MemoryRefusalCounter', async () => ({ counter: new MemoryRefusalCounter() as RefusalCounter, dispose: () => {} })],
])('%s', (_name, create) => {
  let counter: RefusalCounter;
  let dispose: () => void;

  beforeEach(async () => {
    ({ counter, dispose } = await create());
  });
  afterEach(() => dispose());

  it('counts each refusal into the current window, from 1', async () => {
    expect(await counter.count('invalid_grant', W0, WINDOW)).toEqual({ current: 1, previous: 0 });
    expect(await counter.count('invalid_grant', W0 + 1000, WINDOW)).toEqual({ current: 2, previous: 0 });
    expect(await counter.count('invalid_grant', W0 + WINDOW * 1000 - 1, WINDOW)).toEqual({ current: 3, previous: 0 });
  });

  it('keeps one count per shape', async () => {
    await counter.count('invalid_grant', W0, WINDOW);
    await counter.count('invalid_grant', W0, WINDOW);

    expect(await counter.count('no_body', W0, WINDOW)).toEqual({ current: 1, previous: 0 });
  });

  it('starts the next window with the last one as previous, and forgets a window further back', async () => {
    await counter.count('errors_object', W0, WINDOW);
    await counter.count('errors_object', W0, WINDOW);

    expect(await counter.count('errors_object', W0 + WINDOW * 1000, WINDOW)).toEqual({ current: 1, previous: 2 });
    expect(await counter.count('errors_object', W0 + 3 * WINDOW * 1000, WINDOW)).toEqual({ current: 1, previous: 0 });
  });

  it('counts a late clock into the window a faster one already started', async () => {
    await counter.count('invalid_request', W0 + WINDOW * 1000, WINDOW);

    expect(await counter.count('invalid_request', W0, WINDOW)).toEqual({ current: 2, previous: 0 });
  });
});
