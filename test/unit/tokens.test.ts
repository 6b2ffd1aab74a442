import { createHash } from 'node:crypto';
import {
  afterTransientFailure,
  DEFAULT_EXPIRES_IN_SECONDS,
  isFresh,
  MAX_GRANT_IDLE_SECONDS,
  nextRefreshAt,
  reauthDeleteAfter,
  refreshShard,
  retryDelaySeconds,
  scheduleAfterTokens,
  toTokenSet,
} from '../../functions/core/tokens';
import { REAUTH_RETENTION_SECONDS, REFRESH_SHARDS } from '../../functions/core/schema';

describe('Function: toTokenSet', () => {
  it('computes expiresAt from expires_in and normalises the token type', () => {
    const set = toTokenSet(
      { access_token: 'a', refresh_token: 'r', token_type: 'Bearer', expires_in: 1800, scope: 'profile.compact' },
      { now: 100, requestedScope: 'x' },
    );
    expect(set).toEqual({
      accessToken: 'a',
      refreshToken: 'r',
      tokenType: 'bearer',
      scope: 'profile.compact',
      expiresAt: 1900,
    });
  });
  it('takes the requested scope when the response omits it (RFC 6749 section 5.1)', () => {
    expect(
      toTokenSet({ access_token: 'a', token_type: 'bearer', expires_in: 10 }, { now: 0, requestedScope: 'p q' }).scope,
    ).toBe('p q');
  });
  it('has no refresh token when the response has none, so the stored one is kept', () => {
    expect(
      toTokenSet({ access_token: 'a', token_type: 'bearer' }, { now: 0, requestedScope: '' }).refreshToken,
    ).toBeUndefined();
  });
  it('assumes the documented lifetime when expires_in is missing', () => {
    expect(toTokenSet({ access_token: 'a', token_type: 'bearer' }, { now: 5, requestedScope: '' }).expiresAt).toBe(
      5 + DEFAULT_EXPIRES_IN_SECONDS,
    );
  });
});

describe('Function: isFresh', () => {
  it('needs at least the margin left', () => {
    expect(isFresh({ expiresAt: 1000 }, 600, 300)).toBe(true);
    expect(isFresh({ expiresAt: 1000 }, 700, 300)).toBe(false);
    expect(isFresh({ expiresAt: 1000 }, 1001, 0)).toBe(false);
  });
});

describe('Function: nextRefreshAt', () => {
  it('is the expiry, or a day after the last tokens for long-lived ones', () => {
    expect(nextRefreshAt({ expiresAt: 2000, tokensIssuedAt: 100 })).toBe(2000);
    expect(nextRefreshAt({ expiresAt: 10 ** 9, tokensIssuedAt: 100 })).toBe(100 + MAX_GRANT_IDLE_SECONDS);
  });
  it('is pushed back by a retry after failures', () => {
    expect(nextRefreshAt({ expiresAt: 2000, tokensIssuedAt: 100, retryAt: 2600 })).toBe(2600);
  });
});

describe('Function: retryDelaySeconds', () => {
  it('backs off exponentially and caps at an hour', () => {
    expect([1, 2, 3].map(retryDelaySeconds)).toEqual([60, 120, 240]);
    expect(retryDelaySeconds(20)).toBe(3600);
  });
});

describe('Function: refreshShard', () => {
  it('is stable and within range', () => {
    expect(refreshShard('user-1')).toBe(refreshShard('user-1'));
    const shards = new Set(Array.from({ length: 200 }, (_, i) => refreshShard(`u${i}`)));
    expect([...shards].every((s) => s >= 0 && s < REFRESH_SHARDS)).toBe(true);
    expect(shards.size).toBeGreaterThan(REFRESH_SHARDS / 2);
  });
});

describe('Function: scheduleAfterTokens', () => {
  it('puts the user in its shard, due when the new access token expires', () => {
    expect(scheduleAfterTokens('user-1', { expiresAt: 5_000 }, 1_000)).toEqual({
      shard: refreshShard('user-1'),
      nextRefreshAt: 5_000,
    });
  });

  it('is due a day after the tokens when the access token outlives that', () => {
    const now = 1_000;
    expect(scheduleAfterTokens('user-1', { expiresAt: now + 10 * MAX_GRANT_IDLE_SECONDS }, now).nextRefreshAt).toBe(
      now + MAX_GRANT_IDLE_SECONDS,
    );
  });
});

describe('Function: toTokenSet (odd responses)', () => {
  it.each([
    ['zero', 0],
    ['negative', -5],
    ['not a number', '60' as unknown as number],
  ])('assumes the documented lifetime when expires_in is %s', (_name, expiresIn) => {
    expect(
      toTokenSet({ access_token: 'a', token_type: 'bearer', expires_in: expiresIn }, { now: 5, requestedScope: '' })
        .expiresAt,
    ).toBe(5 + DEFAULT_EXPIRES_IN_SECONDS);
  });
  it('takes whole seconds of a fractional expires_in', () => {
    expect(
      toTokenSet({ access_token: 'a', token_type: 'bearer', expires_in: 1.9 }, { now: 5, requestedScope: '' })
        .expiresAt,
    ).toBe(6);
  });
  it('trims the granted scope, and takes the requested one when it is blank', () => {
    const set = (scope: string) =>
      toTokenSet({ access_token: 'a', token_type: 'bearer', scope }, { now: 0, requestedScope: 'req' }).scope;
    expect(set(' a b ')).toBe('a b');
    expect(set('   ')).toBe('req');
  });
  it('has no refresh token when the response has an empty one', () => {
    expect(
      toTokenSet({ access_token: 'a', refresh_token: '', token_type: 'bearer' }, { now: 0, requestedScope: '' })
        .refreshToken,
    ).toBeUndefined();
  });
});

describe('Function: isFresh (the boundary)', () => {
  it('is stale with exactly the margin left', () => {
    expect(isFresh({ expiresAt: 1000 }, 700, 300)).toBe(false);
    expect(isFresh({ expiresAt: 1000 }, 699, 300)).toBe(true);
  });
});

describe('Function: nextRefreshAt (retries)', () => {
  it('never brings a user forward for a retry', () => {
    expect(nextRefreshAt({ expiresAt: 2000, tokensIssuedAt: 100, retryAt: 1500 })).toBe(2000);
  });
  it('is due exactly a day after the last tokens', () => {
    expect(nextRefreshAt({ expiresAt: 100 + MAX_GRANT_IDLE_SECONDS + 1, tokensIssuedAt: 100 })).toBe(
      100 + MAX_GRANT_IDLE_SECONDS,
    );
  });
});

describe('Function: afterTransientFailure', () => {
  it('counts the failure and pushes the next attempt back by the back-off for that count', () => {
    const record = { consecutiveFailures: 2, expiresAt: 1_000, tokensIssuedAt: 0 };
    expect(afterTransientFailure(record, 900)).toEqual({ failures: 3, nextRefreshAt: 900 + retryDelaySeconds(3) });
  });

  it('never schedules the retry before the token is due anyway', () => {
    const record = { consecutiveFailures: 0, expiresAt: 100_000, tokensIssuedAt: 99_000 };
    expect(afterTransientFailure(record, 1_000)).toEqual({ failures: 1, nextRefreshAt: 100_000 });
  });
});

describe('Function: reauthDeleteAfter', () => {
  it('keeps a dead grant for the retention period', () => {
    expect(reauthDeleteAfter(1_000)).toBe(1_000 + REAUTH_RETENTION_SECONDS);
    expect(REAUTH_RETENTION_SECONDS).toBe(90 * 86_400);
  });
});

describe('Function: retryDelaySeconds (bounds)', () => {
  it('waits a minute after the first failure (and for nonsense counts), an hour at most', () => {
    expect(retryDelaySeconds(0)).toBe(60);
    expect(retryDelaySeconds(-3)).toBe(60);
    expect(retryDelaySeconds(6)).toBe(1920);
    expect(retryDelaySeconds(7)).toBe(3600);
  });
});

describe('Function: refreshShard (values)', () => {
  it('is the first four bytes of the SHA-256 of the user id, modulo the shard count', () => {
    expect(refreshShard('user-1')).toBe(
      createHash('sha256').update('user-1').digest().readUInt32BE(0) % REFRESH_SHARDS,
    );
    expect(REFRESH_SHARDS).toBe(16);
  });
});
