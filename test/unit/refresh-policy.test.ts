/**
 * The refresh policy's rules: where `eager` and `on-read` put a user in the scheduled refresher's
 * index, and how the policy is read from the environment.
 */
import { readRefreshPolicy } from '../../functions/core/config';
import { ConfigError } from '../../functions/core/errors';
import { REFRESH_POLICY_SETTINGS } from '../../functions/core/schema';
import {
  afterTransientFailure,
  DEFAULT_POLICY,
  MAX_GRANT_IDLE_SECONDS,
  nextRefreshAt,
  type RefreshPolicy,
  retryDelaySeconds,
  scheduleAfterTokens,
} from '../../functions/core/tokens';

const WEEK = 7 * 86_400;
const eager: RefreshPolicy = { name: 'eager', keepAliveSeconds: WEEK };
const onRead: RefreshPolicy = { name: 'on-read', keepAliveSeconds: WEEK };

describe('Function: nextRefreshAt (refresh policy)', () => {
  it('eager: is the access token expiry, as the broker always scheduled (the default policy)', () => {
    expect(nextRefreshAt({ expiresAt: 2_800, tokensIssuedAt: 1_000 }, eager)).toBe(2_800);
    expect(nextRefreshAt({ expiresAt: 2_800, tokensIssuedAt: 1_000 })).toBe(2_800);
    expect(DEFAULT_POLICY.name).toBe('eager');
  });

  it('eager: ignores the keep-alive interval (an idle grant is refreshed daily at most anyway)', () => {
    const longLived = { expiresAt: 10 ** 9, tokensIssuedAt: 1_000 };
    expect(nextRefreshAt(longLived, { name: 'eager', keepAliveSeconds: 3_600 })).toBe(1_000 + MAX_GRANT_IDLE_SECONDS);
  });

  it('on-read: is the keep-alive after the last tokens, not the access token expiry', () => {
    expect(nextRefreshAt({ expiresAt: 2_800, tokensIssuedAt: 1_000 }, onRead)).toBe(1_000 + WEEK);
    expect(nextRefreshAt({ expiresAt: 2_800, tokensIssuedAt: 1_000 }, { ...onRead, keepAliveSeconds: 3_600 })).toBe(
      4_600,
    );
  });

  it('on-read: a retry sooner than the keep-alive does not bring the user forward', () => {
    expect(nextRefreshAt({ expiresAt: 2_800, tokensIssuedAt: 1_000, retryAt: 3_000 }, onRead)).toBe(1_000 + WEEK);
  });

  it('on-read: a keep-alive that failed is retried after the back-off', () => {
    const issued = 1_000;
    const failedAt = issued + WEEK + 60;
    expect(nextRefreshAt({ expiresAt: 2_800, tokensIssuedAt: issued, retryAt: failedAt + 120 }, onRead)).toBe(
      failedAt + 120,
    );
  });
});

describe('Function: scheduleAfterTokens (refresh policy)', () => {
  it('puts a new login at its keep-alive under on-read and at its expiry under eager, in the same shard', () => {
    const tokens = { expiresAt: 5_000 + 1_800 };
    const lazy = scheduleAfterTokens('user-1', tokens, 5_000, onRead);
    const busy = scheduleAfterTokens('user-1', tokens, 5_000, eager);
    expect(lazy.nextRefreshAt).toBe(5_000 + WEEK);
    expect(busy.nextRefreshAt).toBe(6_800);
    expect(lazy.shard).toBe(busy.shard);
  });
});

describe('Function: afterTransientFailure (refresh policy)', () => {
  it('on-read: a failed refresh on read leaves the user at its keep-alive (the next read retries)', () => {
    const record = { consecutiveFailures: 0, expiresAt: 2_800, tokensIssuedAt: 1_000 };
    expect(afterTransientFailure(record, 2_900, onRead)).toEqual({ failures: 1, nextRefreshAt: 1_000 + WEEK });
  });

  it('on-read: a failed keep-alive backs off like any scheduled refresh', () => {
    const record = { consecutiveFailures: 2, expiresAt: 2_800, tokensIssuedAt: 1_000 };
    const at = 1_000 + WEEK + 30;
    expect(afterTransientFailure(record, at, onRead)).toEqual({
      failures: 3,
      nextRefreshAt: at + retryDelaySeconds(3),
    });
  });
});

describe('Function: readRefreshPolicy', () => {
  it('defaults to eager with a week of keep-alive', () => {
    expect(readRefreshPolicy({})).toEqual({ name: 'eager', keepAliveSeconds: WEEK });
    expect(REFRESH_POLICY_SETTINGS.KEEP_ALIVE_SECONDS.default).toBe(WEEK);
  });

  it('reads REFRESH_POLICY (any case) and KEEP_ALIVE_SECONDS', () => {
    expect(readRefreshPolicy({ REFRESH_POLICY: 'On-Read', KEEP_ALIVE_SECONDS: '86400' })).toEqual({
      name: 'on-read',
      keepAliveSeconds: 86_400,
    });
  });

  it.each([
    [{ REFRESH_POLICY: 'lazy' }, /REFRESH_POLICY must be one of eager, on-read, got "lazy"/],
    [{ REFRESH_POLICY: 'on-read', KEEP_ALIVE_SECONDS: '60' }, /KEEP_ALIVE_SECONDS must be a whole number between 3600/],
    [{ KEEP_ALIVE_SECONDS: String(31 * 86_400) }, /KEEP_ALIVE_SECONDS must be a whole number between 3600 and 2592000/],
    [{ KEEP_ALIVE_SECONDS: '7d' }, /KEEP_ALIVE_SECONDS must be a whole number/],
  ])('refuses %j, naming the variable', (env, message) => {
    expect(() => readRefreshPolicy(env)).toThrow(ConfigError);
    expect(() => readRefreshPolicy(env)).toThrow(message);
  });
});
