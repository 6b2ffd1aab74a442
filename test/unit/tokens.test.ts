import {
  DEFAULT_EXPIRES_IN_SECONDS,
  isFresh,
  MAX_GRANT_IDLE_SECONDS,
  nextRefreshAt,
  refreshShard,
  retryDelaySeconds,
  toTokenSet,
} from '../../functions/core/tokens';
import { REFRESH_SHARDS } from '../../functions/core/schema';

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
