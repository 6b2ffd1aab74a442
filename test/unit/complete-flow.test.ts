/**
 * Completing a connection, fast: the real flow (and the complete function's handler) over the
 * in-memory session and token stores (the same outcomes as DynamoDB, see
 * test/integration/session-store-contract.test.ts) and a recording event publisher.
 * test/integration/connect.test.ts runs the same rules against DynamoDB Local, the sandbox and the CLI;
 * these pin the exact outcome, the stored item, the events and the logs of each case, failures first.
 */
import { CONNECT_CODE_LENGTH, hashConnectCode } from '../../functions/core/connect';
import { ArgumentError, ConnectionRefusedError, KeyUnavailableError } from '../../functions/core/errors';
import { scheduleAfterTokens } from '../../functions/core/tokens';
import { type CompleteDeps, completeConnection, handleCompleteRequest } from '../../functions/flows/complete-flow';
import { RecordingEvents } from '../support/fakes';
import { captureLogger } from '../support/logs';
import { MemorySessionStore } from '../support/memory-session-store';
import { activeRecord, MemoryTokenStore } from '../support/memory-token-store';

const NOW = 1_000_000;
const CODE = 'C'.repeat(CONNECT_CODE_LENGTH);
const OTHER_CODE = 'D'.repeat(CONNECT_CODE_LENGTH);
const TOKENS = {
  accessToken: 'pending-access',
  refreshToken: 'pending-refresh',
  tokenType: 'bearer',
  scope: 'product.compact profile.compact',
  expiresAt: NOW + 1800,
};

let sessions: MemorySessionStore;
let tokens: MemoryTokenStore;
let events: RecordingEvents;
let logs: ReturnType<typeof captureLogger>;

function deps(overrides: Partial<CompleteDeps> = {}): CompleteDeps {
  return { sessions, tokens, events, logger: logs.logger, now: () => NOW, ...overrides };
}

/** A pending connection as the callback leaves it for `appUserId`, under `code`. */
async function pending(appUserId: string, code = CODE, expiresAt = NOW + 600) {
  await sessions.putPending({
    codeHash: hashConnectCode(code),
    appUserId,
    profileId: 'kroger-1',
    tokens: TOKENS,
    expiresAt,
    closedRetention: expiresAt + 86_400,
  });
  sessions.calls.length = 0;
}

const logged = () => logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>);

/** No token, and no connect code, in any log line. */
function expectNoSecretInLogs() {
  for (const secret of [TOKENS.accessToken, TOKENS.refreshToken, CODE]) expect(logs.text()).not.toContain(secret);
}

beforeEach(() => {
  sessions = new MemorySessionStore();
  tokens = new MemoryTokenStore();
  events = new RecordingEvents();
  logs = captureLogger();
});

describe('Function: completeConnection', () => {
  it('stores the grant under the app user, bound by the link, and announces token.connected', async () => {
    await pending('app-1');

    const connection = await completeConnection(deps(), { connectCode: CODE, appUserId: 'app-1' });

    expect(connection).toEqual({ userId: 'app-1', profileId: 'kroger-1' });
    const schedule = scheduleAfterTokens('app-1', TOKENS, NOW);
    expect(tokens.raw('app-1')).toEqual({
      userId: 'app-1',
      profileId: 'kroger-1',
      ...TOKENS,
      status: 'active',
      statusAt: NOW,
      consecutiveFailures: 0,
      tokensIssuedAt: NOW,
      createdAt: NOW,
      updatedAt: NOW,
      refreshShard: schedule.shard,
      nextRefreshAt: schedule.nextRefreshAt,
      boundBy: 'connect',
      version: 1,
    });
    expect(sessions.calls).toEqual([`consumePending:${hashConnectCode(CODE)}`]);
    expect(events.published).toEqual([
      {
        type: 'token.connected',
        detail: { userId: 'app-1', profileId: 'kroger-1', at: new Date(NOW * 1000).toISOString() },
      },
    ]);
    expect(logged()).toEqual([
      expect.objectContaining({ level: 'INFO', message: 'user connected', userId: 'app-1', connectLink: true }),
    ]);
    expectNoSecretInLogs();
  });

  it('replaces a link-bound grant refused earlier, and announces token.recovered', async () => {
    tokens.seed(activeRecord('app-1', { status: 'reauth_required', statusReason: 'invalid_grant', version: 4 }));
    await pending('app-1');

    await completeConnection(deps(), { connectCode: CODE, appUserId: 'app-1' });

    expect(tokens.raw('app-1')).toMatchObject({ status: 'active', version: 5, refreshToken: 'pending-refresh' });
    expect(events.published.map((e) => e.type)).toEqual(['token.recovered']);
  });

  it('places the grant in the schedule of the policy it is given', async () => {
    await pending('app-1');
    const policy = { name: 'on-read', keepAliveSeconds: 3 * 86_400 } as const;

    await completeConnection(deps({ policy }), { connectCode: CODE, appUserId: 'app-1' });

    expect(tokens.raw('app-1')?.nextRefreshAt).toBe(scheduleAfterTokens('app-1', TOKENS, NOW, policy).nextRefreshAt);
  });

  it('reads the clock in seconds when none is injected', async () => {
    const before = Math.floor(Date.now() / 1000);
    await pending('app-1', CODE, before + 600);

    await completeConnection(deps({ now: undefined }), { connectCode: CODE, appUserId: 'app-1' });

    const issuedAt = tokens.raw('app-1')?.tokensIssuedAt;
    expect(issuedAt).toBeGreaterThanOrEqual(before);
    expect(issuedAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
  });

  it('completes a code once: the second presentation is refused as used and changes nothing', async () => {
    await pending('app-1');
    await completeConnection(deps(), { connectCode: CODE, appUserId: 'app-1' });
    const stored = tokens.raw('app-1');
    tokens.calls.length = 0;

    const error = await completeConnection(deps(), { connectCode: CODE, appUserId: 'app-1' }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConnectionRefusedError);
    expect(error).toMatchObject({ code: 'CONNECT_CODE_USED', reason: 'used' });
    expect(tokens.raw('app-1')).toEqual(stored);
    expect(tokens.calls).toEqual([]);
    expect(events.published).toHaveLength(1);
  });

  it.each([
    ['unknown', 'CONNECT_CODE_UNKNOWN', async () => pending('app-1', OTHER_CODE)],
    ['expired', 'CONNECT_CODE_EXPIRED', async () => pending('app-1', CODE, NOW)],
    [
      'cancelled',
      'CONNECT_CODE_CANCELLED',
      async () => {
        await pending('app-1');
        await sessions.consumePending(hashConnectCode(CODE), 'app-2', NOW);
      },
    ],
  ] as const)('refuses a code found %s with %s, stores nothing and logs why', async (reason, code, arrange) => {
    await arrange();

    const error = await completeConnection(deps(), { connectCode: CODE, appUserId: 'app-1' }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConnectionRefusedError);
    expect(error).toMatchObject({ code, reason });
    expect(tokens.items.size).toBe(0);
    expect(tokens.calls).toEqual([]);
    expect(events.published).toEqual([]);
    expect(logged()).toEqual([
      expect.objectContaining({
        level: 'INFO',
        message: 'connect code refused',
        reason,
        presentedFor: 'app-1',
      }),
    ]);
    expectNoSecretInLogs();
  });

  it("cancels a code presented for another app user than the link's: neither user gets the grant", async () => {
    await pending('app-victim');

    const foreign = await completeConnection(deps(), { connectCode: CODE, appUserId: 'app-attacker' }).catch(
      (e: unknown) => e,
    );
    const own = await completeConnection(deps(), { connectCode: CODE, appUserId: 'app-victim' }).catch(
      (e: unknown) => e,
    );

    expect(foreign).toBeInstanceOf(ConnectionRefusedError);
    expect(foreign).toMatchObject({ code: 'CONNECT_CODE_FOREIGN', reason: 'foreign' });
    expect(own).toMatchObject({ code: 'CONNECT_CODE_CANCELLED', reason: 'cancelled' });
    expect(tokens.items.size).toBe(0);
    expect(events.published).toEqual([]);
    // The forwarded-link attack is worth an operator's look: a warning naming both users.
    expect(logged()[0]).toEqual(
      expect.objectContaining({
        level: 'WARN',
        message: 'connect code presented for another app user: cancelled',
        presentedFor: 'app-attacker',
        linkAppUserId: 'app-victim',
      }),
    );
    expectNoSecretInLogs();
  });

  it.each([
    ['a malformed code', { connectCode: 'short', appUserId: 'app-1' }, /malformed/],
    ['an oversized code', { connectCode: 'a'.repeat(5000), appUserId: 'app-1' }, /too long/],
    ['an empty app user id', { connectCode: CODE, appUserId: '' }, /appUserId/],
    ['an oversized app user id', { connectCode: CODE, appUserId: 'u'.repeat(257) }, /appUserId/],
  ])('refuses %s with ArgumentError before any I/O', async (_what, request, message) => {
    await pending('app-1');

    const error = await completeConnection(deps(), request).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ArgumentError);
    expect((error as Error).message).toMatch(message);
    expect(sessions.calls).toEqual([]);
    expect(tokens.calls).toEqual([]);
    // The pending connection is still there for the right request.
    await expect(completeConnection(deps(), { connectCode: CODE, appUserId: 'app-1' })).resolves.toEqual({
      userId: 'app-1',
      profileId: 'kroger-1',
    });
  });
});

describe('Function: handleCompleteRequest', () => {
  it('answers the ids only, never a token', async () => {
    await pending('app-1');

    const answer = await handleCompleteRequest({ connectCode: CODE, appUserId: 'app-1' }, deps());

    expect(answer).toEqual({ ok: true, userId: 'app-1', profileId: 'kroger-1' });
  });

  it('answers BAD_REQUEST with the reason for a malformed request, touching nothing', async () => {
    const answer = await handleCompleteRequest({ connectCode: 'x', appUserId: 'app-1' }, deps());

    expect(answer).toEqual({
      ok: false,
      code: 'BAD_REQUEST',
      message: `the connect code is malformed: expected ${CONNECT_CODE_LENGTH} characters of A-Z a-z 0-9 - _`,
    });
    expect(sessions.calls).toEqual([]);
  });

  it("answers a refusal's stable code and message", async () => {
    const answer = await handleCompleteRequest({ connectCode: CODE, appUserId: 'app-1' }, deps());

    expect(answer).toEqual({
      ok: false,
      code: 'CONNECT_CODE_UNKNOWN',
      message: new ConnectionRefusedError('unknown').message,
    });
  });

  it("answers a broker failure's own code: the field key that seals the refresh token is unavailable", async () => {
    await pending('app-1');
    tokens.saveLogin = async () => {
      throw new KeyUnavailableError('the field key is unavailable (throttled)');
    };

    const answer = await handleCompleteRequest({ connectCode: CODE, appUserId: 'app-1' }, deps());

    expect(answer).toEqual({ ok: false, code: 'KEY_UNAVAILABLE', message: 'the field key is unavailable (throttled)' });
    expect(events.published).toEqual([]);
    // Not retryable (no retry advice sent): nothing for an operator to read either.
    expect(logs.lines).toEqual([]);
  });

  it('answers INTERNAL for an unexpected error, logs it, and never throws', async () => {
    sessions.consumePending = async () => {
      throw new TypeError('boom');
    };

    const answer = await handleCompleteRequest({ connectCode: CODE, appUserId: 'app-1' }, deps());

    expect(answer).toEqual({ ok: false, code: 'INTERNAL', message: 'completing the connection failed unexpectedly' });
    expect(logged()).toEqual([
      expect.objectContaining({
        level: 'ERROR',
        message: 'completing a connection failed unexpectedly',
        error: expect.objectContaining({ name: 'TypeError' }),
      }),
    ]);
  });
});
