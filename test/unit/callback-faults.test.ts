/**
 * GET /callback when a dependency is down (issue: faults survived, and said clearly), fast, on the
 * in-memory stores: Secrets Manager or KMS unavailable before the exchange gives a 503 page with
 * Retry-After and consumes nothing, so the very same callback works once it is back; DynamoDB
 * unavailable at any step gives the same page and leaves nothing half-written. The same sign-in
 * under real throttling of DynamoDB Local is in test/integration/faults.test.ts.
 */
import { KeyUnavailableError, SecretUnavailableError, StoreUnavailableError } from '../../functions/core/errors';
import type { HttpResult } from '../../functions/core/http';
import { bindingCookieName, hashBinding } from '../../functions/core/login';
import { decodeOutcome, RESULT_COOKIE, RETRY_AFTER_SECONDS } from '../../functions/core/result-page';
import { type CallbackDeps, handleCallback, UNKEPT_REVOKE_TIMEOUT_MS } from '../../functions/flows/callback-flow';
import { limitMs, withDeadline } from '../../functions/adapters/deadline';
import { cookiePair, getEvent } from '../support/events';
import { FakeProvider, RecordingEvents } from '../support/fakes';
import { captureLogger } from '../support/logs';
import { MemorySessionStore } from '../support/memory-session-store';
import { MemoryTokenStore } from '../support/memory-token-store';

const NOW = 1_000_000;
const STATE = 'state-1';
const COOKIE = `${bindingCookieName(STATE)}=binding-1`;
const CALLBACK = 'https://broker.example.com/kroger/callback';

let sessions: MemorySessionStore;
let tokens: MemoryTokenStore;
let provider: FakeProvider;
let events: RecordingEvents;
let logs: ReturnType<typeof captureLogger>;

const deps = (extra: Partial<CallbackDeps> = {}): CallbackDeps => ({
  provider: { redirectUri: CALLBACK },
  client: provider,
  sessions,
  tokens,
  events,
  logger: logs.logger,
  now: () => NOW,
  ...extra,
});

const callback = (d: CallbackDeps) => handleCallback(getEvent('/callback', `code=c-1&state=${STATE}`, [COOKIE]), d);

/** The clean page the 303 leads to, rendered as the browser would get it. */
async function page(result: HttpResult): Promise<HttpResult> {
  expect(result.statusCode).toBe(303);
  const cookie = result.cookies?.find((c) => c.startsWith(`${RESULT_COOKIE}=`));
  return handleCallback(getEvent('/callback', '', [cookiePair(cookie)]), deps());
}

const kindOf = (result: HttpResult) => {
  const cookie = result.cookies?.find((c) => c.startsWith(`${RESULT_COOKIE}=`));
  return decodeOutcome(cookiePair(cookie).slice(RESULT_COOKIE.length + 1))?.kind;
};

const throttled = (operation: string) =>
  new StoreUnavailableError(`DynamoDB ${operation} failed: throttled (ProvisionedThroughputExceededException)`, {
    operation,
    retryAfterSeconds: 1,
  });

beforeEach(async () => {
  sessions = new MemorySessionStore();
  tokens = new MemoryTokenStore();
  provider = new FakeProvider();
  provider.now = NOW;
  provider.profileId = 'profile-9';
  events = new RecordingEvents();
  logs = captureLogger();
  await sessions.putAttempt({
    state: STATE,
    codeVerifier: 'verifier-1',
    bindingHash: hashBinding('binding-1'),
    expiresAt: NOW + 600,
  });
});

describe('Flow: callback, with a dependency down', () => {
  it.each([
    ['Secrets Manager is throttled', new SecretUnavailableError('Secrets Manager is throttling', { retryable: true })],
    [
      'KMS is throttled',
      new KeyUnavailableError('kms:GenerateDataKey failed (ThrottlingException)', { retryable: true }),
    ],
  ])(
    'answers 503 with Retry-After when %s, and consumes nothing: the same callback works once it is back',
    async (_, error) => {
      let down = true;
      const ready = async () => {
        if (down) throw error;
      };

      const first = await callback(deps({ ready }));

      expect(kindOf(first)).toBe('storage-unavailable');
      const shown = await page(first);
      expect(shown.statusCode).toBe(503);
      expect(shown.headers['retry-after']).toBe(String(RETRY_AFTER_SECONDS));
      expect(sessions.attempts.has(STATE)).toBe(true);
      expect(provider.calls.exchangeCode).toBe(0);
      expect(tokens.raw('profile-9')).toBeUndefined();

      down = false;
      const second = await callback(deps({ ready }));

      expect(kindOf(second)).toBe('connected');
      expect(tokens.raw('profile-9')).toMatchObject({ refreshToken: 'refresh-1' });
      expect(provider.calls.exchangeCode).toBe(1);
    },
  );

  it('answers 503 when DynamoDB cannot consume the attempt, with no call to Kroger', async () => {
    sessions.consumeAttempt = async () => {
      throw throttled('DeleteItem');
    };

    const result = await callback(deps());

    expect(kindOf(result)).toBe('storage-unavailable');
    expect((await page(result)).statusCode).toBe(503);
    expect(provider.calls.exchangeCode).toBe(0);
    expect(logs.lines.map((l) => JSON.parse(l))).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ level: 'WARN', errorCode: 'STORE_UNAVAILABLE', dependency: 'dynamodb' }),
      ]),
    );
  });

  it('answers 503 when DynamoDB refuses to store the tokens (throttled), and revokes the grant nobody holds', async () => {
    tokens.saveLogin = async () => {
      throw throttled('UpdateItem');
    };

    const result = await callback(deps());

    expect(kindOf(result)).toBe('storage-unavailable');
    expect(tokens.raw('profile-9')).toBeUndefined();
    expect(events.published).toEqual([]);
    // A throttled write never landed: the new grant would stay live at Kroger with nobody holding it.
    expect(provider.revoked).toEqual(['refresh-1']);
    expect(logs.text()).not.toContain('refresh-1');
  });

  it('does not revoke when the store write timed out: it may have landed, and revoking would kill a stored grant', async () => {
    tokens.saveLogin = async () => {
      throw new StoreUnavailableError('DynamoDB UpdateItem failed: unavailable (TimeoutError)', {
        operation: 'UpdateItem',
        outcomeUnknown: true,
      });
    };

    const result = await callback(deps());

    expect(kindOf(result)).toBe('storage-unavailable');
    expect(provider.calls.revoke).toBe(0);
  });

  it('gives the revocation of an unkept grant its own time, even when the request deadline has passed', async () => {
    tokens.saveLogin = async () => {
      throw throttled('UpdateItem');
    };
    const timeLeft: number[] = [];
    provider.onRevoke = async () => {
      // What a real provider client would get for its request: the time the deadline leaves.
      timeLeft.push(limitMs(UNKEPT_REVOKE_TIMEOUT_MS));
      return true;
    };

    // The steps' deadline passes during the failed write.
    await withDeadline(Date.now() + 5, async () => {
      const save = tokens.saveLogin;
      tokens.saveLogin = async (...args) => {
        await new Promise((resolve) => setTimeout(resolve, 10));
        return save(...args);
      };
      await callback(deps());
    });

    expect(timeLeft).toHaveLength(1);
    expect(timeLeft[0]).toBeGreaterThan(UNKEPT_REVOKE_TIMEOUT_MS - 500);
  });
});
