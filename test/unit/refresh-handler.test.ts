/**
 * The refresh function's input checks: it is invoked by other services, so a malformed request
 * gets a typed answer and touches nothing (no read, no refresh).
 */
import { handleRefreshRequest } from '../../functions/flows/refresh-function-flow';
import { captureLogger } from '../support/logs';

describe('Flow: refresh function', () => {
  it.each([
    ['no event', null],
    ['no userId', {}],
    ['a numeric userId', { userId: 42 }],
    ['an empty userId', { userId: '' }],
    ['an oversized userId', { userId: 'u'.repeat(257) }],
    ['a negative margin', { userId: 'u', marginSeconds: -1 }],
    ['a margin over an hour', { userId: 'u', marginSeconds: 3601 }],
  ])('answers BAD_REQUEST for %s without touching the refresher', async (_name, event) => {
    const refreshForReader = jest.fn();
    const result = await handleRefreshRequest(event, {
      refresher: { refreshForReader },
      logger: captureLogger().logger,
    });
    expect(result).toMatchObject({ ok: false, code: 'BAD_REQUEST' });
    expect(refreshForReader).not.toHaveBeenCalled();
  });
});
