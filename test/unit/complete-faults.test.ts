/**
 * Completing a connection when a dependency is down (issue: faults survived, and said clearly), fast,
 * on the in-memory stores: KMS unavailable before the pending connection is closed leaves it open; a
 * grant write that provably stored nothing reopens it; either way the app hears a retryable code and
 * the same connect code completes once the dependency is back. A write that may have landed keeps the
 * connection closed (completing again then says "used", which is the truth if it landed).
 */
import { CONNECT_CODE_LENGTH, hashConnectCode } from '../../functions/core/connect';
import { KeyUnavailableError, StoreUnavailableError } from '../../functions/core/errors';
import { type CompleteDeps, handleCompleteRequest } from '../../functions/flows/complete-flow';
import { completeErrorFromResult } from '../../functions/reader/connect-remote';
import { RecordingEvents } from '../support/fakes';
import { captureLogger } from '../support/logs';
import { MemorySessionStore } from '../support/memory-session-store';
import { MemoryTokenStore } from '../support/memory-token-store';

const NOW = 1_000_000;
const CODE = 'C'.repeat(CONNECT_CODE_LENGTH);

let sessions: MemorySessionStore;
let tokens: MemoryTokenStore;
let events: RecordingEvents;
let logs: ReturnType<typeof captureLogger>;

const deps = (overrides: Partial<CompleteDeps> = {}): CompleteDeps => ({
  sessions,
  tokens,
  events,
  logger: logs.logger,
  now: () => NOW,
  ...overrides,
});

const complete = (d = deps()) => handleCompleteRequest({ connectCode: CODE, appUserId: 'app-1' }, d);

beforeEach(async () => {
  sessions = new MemorySessionStore();
  tokens = new MemoryTokenStore();
  events = new RecordingEvents();
  logs = captureLogger();
  await sessions.putPending({
    codeHash: hashConnectCode(CODE),
    appUserId: 'app-1',
    profileId: 'kroger-1',
    tokens: {
      accessToken: 'pending-access',
      refreshToken: 'pending-refresh',
      tokenType: 'bearer',
      scope: 'product.compact',
      expiresAt: NOW + 1800,
    },
    expiresAt: NOW + 600,
    closedRetention: NOW + 600 + 86_400,
  });
});

describe('Flow: complete, with a dependency down', () => {
  it('answers KEY_UNAVAILABLE, retryable, before closing anything when KMS cannot seal, and completes on retry', async () => {
    let down = true;
    const ready = async () => {
      if (down) throw new KeyUnavailableError('kms:GenerateDataKey failed (ThrottlingException)', { retryable: true });
    };

    const first = await complete(deps({ ready }));

    expect(first).toMatchObject({ ok: false, code: 'KEY_UNAVAILABLE', retryable: true });
    expect(sessions.calls).not.toContain(`consumePending:${hashConnectCode(CODE)}`);

    down = false;
    await expect(complete(deps({ ready }))).resolves.toEqual({ ok: true, userId: 'app-1', profileId: 'kroger-1' });
    expect(tokens.raw('app-1')).toMatchObject({ refreshToken: 'pending-refresh', boundBy: 'connect' });
  });

  it('reopens the connection when DynamoDB refused the grant write outright, so the same code completes later', async () => {
    const save = tokens.saveLogin.bind(tokens);
    let down = true;
    tokens.saveLogin = async (...args) => {
      if (down) {
        throw new StoreUnavailableError(
          'DynamoDB UpdateItem failed: throttled (ProvisionedThroughputExceededException)',
          {
            operation: 'UpdateItem',
            retryAfterSeconds: 1,
          },
        );
      }
      return save(...args);
    };

    const first = await complete();

    expect(first).toEqual({
      ok: false,
      code: 'STORE_UNAVAILABLE',
      message: 'DynamoDB UpdateItem failed: throttled (ProvisionedThroughputExceededException)',
      retryable: true,
      retryAfterSeconds: 1,
    });
    expect(events.published).toEqual([]);
    expect(logs.lines.map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({
        level: 'WARN',
        message: 'completing a connection failed; the app may try again',
        error: expect.objectContaining({ code: 'STORE_UNAVAILABLE' }),
      }),
    ]);

    down = false;
    await expect(complete()).resolves.toMatchObject({ ok: true, userId: 'app-1' });
    expect(logs.text()).not.toContain('pending-refresh');
  });

  it('keeps the connection closed when the grant write may have landed (a timeout): completing again says "used"', async () => {
    tokens.saveLogin = async () => {
      throw new StoreUnavailableError('DynamoDB UpdateItem failed: unavailable (TimeoutError)', {
        operation: 'UpdateItem',
        outcomeUnknown: true,
      });
    };

    await expect(complete()).resolves.toMatchObject({ ok: false, code: 'STORE_UNAVAILABLE', retryable: true });
    expect(sessions.calls).not.toContain(`reopenPending:${hashConnectCode(CODE)}`);
    await expect(complete()).resolves.toMatchObject({ ok: false, code: 'CONNECT_CODE_USED' });
  });

  it('turns the function’s retryable codes back into retryable errors for the app', () => {
    expect(
      completeErrorFromResult({ code: 'STORE_UNAVAILABLE', message: 'm', retryable: true, retryAfterSeconds: 1 }),
    ).toBeInstanceOf(StoreUnavailableError);
    expect(completeErrorFromResult({ code: 'KEY_UNAVAILABLE', message: 'm', retryable: true })).toMatchObject({
      retryable: true,
    });
    expect(completeErrorFromResult({ code: 'KEY_UNAVAILABLE', message: 'm' })).toMatchObject({ retryable: false });
    expect(completeErrorFromResult({ code: 'NEWER', message: 'm', retryable: true })).toMatchObject({
      code: 'COMPLETE_FUNCTION_FAILED',
      retryable: true,
    });
  });
});
