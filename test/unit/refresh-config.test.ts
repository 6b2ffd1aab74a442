/**
 * The settings of issue 12's limits: the refresh call's own timeout (longer than the callback's),
 * the forced-refresh interval and the mass-refusal guard, each failing at start with its name.
 */
import { readProviderConfig, readRefreshLimits } from '../../functions/core/config';
import { ConfigError } from '../../functions/core/errors';
import { createServices, tokenRefresher } from '../../functions/services';

const base = {
  CLIENT_ID: 'client',
  OAUTH2_BASE_URL: 'https://api.kroger.com/v1/connect/oauth2',
  API_BASE_URL: 'https://api.kroger.com',
  REDIRECT_URL: 'https://broker.example.com/callback',
};

describe('Function: readProviderConfig (refresh timeout)', () => {
  it("gives the refresh call 15 s by default, nearly twice the callback's 8 s", () => {
    expect(readProviderConfig(base)).toMatchObject({ timeoutMs: 8000, refreshTimeoutMs: 15_000 });
  });

  it('reads REFRESH_TIMEOUT_MS up to 25 s', () => {
    expect(readProviderConfig({ ...base, REFRESH_TIMEOUT_MS: '25000' }).refreshTimeoutMs).toBe(25_000);
    expect(() => readProviderConfig({ ...base, REFRESH_TIMEOUT_MS: '25001' })).toThrow(
      /REFRESH_TIMEOUT_MS must be a whole number between 1 and 25000/,
    );
  });

  it('refuses a refresh timeout not longer than PROVIDER_TIMEOUT_MS, naming both', () => {
    expect(() => readProviderConfig({ ...base, PROVIDER_TIMEOUT_MS: '9000', REFRESH_TIMEOUT_MS: '9000' })).toThrow(
      new ConfigError(
        'REFRESH_TIMEOUT_MS (9000) must be longer than PROVIDER_TIMEOUT_MS (9000): a refresh abandoned after it was sent may have used up the refresh token',
      ),
    );
  });
});

describe('Function: readRefreshLimits', () => {
  it('defaults to a forced refresh a minute and 20 marked grants per 10 minutes and refusal shape', () => {
    expect(readRefreshLimits({})).toEqual({
      forceRefreshMinIntervalSeconds: 60,
      massRefusalThreshold: 20,
      massRefusalWindowSeconds: 600,
    });
  });

  it('accepts 0 to turn the interval or the guard off', () => {
    expect(readRefreshLimits({ FORCE_REFRESH_MIN_INTERVAL_SECONDS: '0', MASS_REFUSAL_THRESHOLD: '0' })).toMatchObject({
      forceRefreshMinIntervalSeconds: 0,
      massRefusalThreshold: 0,
    });
  });

  it.each([
    ['FORCE_REFRESH_MIN_INTERVAL_SECONDS', '-1'],
    ['MASS_REFUSAL_THRESHOLD', 'many'],
    ['MASS_REFUSAL_WINDOW_SECONDS', '59'],
  ])('fails naming %s for %s', (name, value) => {
    expect(() => readRefreshLimits({ [name]: value })).toThrow(new RegExp(`^${name} must be a whole number`));
  });

  it('fails the refresher at build time, not on the first refresh', () => {
    const services = createServices({ ...base, CLIENT_SECRET: 's', MASS_REFUSAL_WINDOW_SECONDS: '10' });
    expect(() => tokenRefresher(services)).toThrow(ConfigError);
  });
});
