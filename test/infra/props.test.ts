/**
 * Props are validated before anything is created, with a message that names the prop and says what
 * to fix. These fail before bundling, so they need no synth.
 */
import { App, Duration, Stack } from 'aws-cdk-lib';
import { KrogerTokenBroker, KrogerTokenBrokerProps } from '../../infra/broker';
import { tempDir } from './support';

function create(props: Partial<KrogerTokenBrokerProps>): KrogerTokenBroker {
  const stack = new Stack(new App({ outdir: tempDir(), context: { 'aws:cdk:bundling-stacks': [] } }), 'PropsTest');
  return new KrogerTokenBroker(stack, 'Broker', { clientId: 'client', ...props } as KrogerTokenBrokerProps);
}

describe('Construct: KrogerTokenBroker', () => {
  describe('props validation', () => {
    it.each<[string, Partial<KrogerTokenBrokerProps>, RegExp]>([
      [
        'clientId is empty',
        { clientId: '  ' },
        /invalid "clientId": set it to the client id of your Kroger application/,
      ],
      ['clientId is missing', { clientId: undefined }, /invalid "clientId"/],
      ['scopes lack a profile scope', { scopes: ['product.compact'] }, /invalid "scopes": .*profile\.compact/],
      ['scopes are empty', { scopes: [] }, /invalid "scopes": .*at least one scope/],
      [
        'a scope has a character RFC 6749 forbids',
        { scopes: ['profile.compact', 'a"b'] },
        /invalid "scopes": .*invalid scope "a"b"/,
      ],
      ['oauth2BaseUrl is not a URL', { oauth2BaseUrl: 'api.kroger.com' }, /invalid "oauth2BaseUrl": .*absolute URL/],
      [
        'oauth2BaseUrl is plain http',
        { oauth2BaseUrl: 'http://api.kroger.com/v1/connect/oauth2' },
        /invalid "oauth2BaseUrl": .*https/,
      ],
      [
        'apiBaseUrl is on localhost over http',
        { apiBaseUrl: 'http://localhost:8080' },
        /invalid "apiBaseUrl": must be an https URL/,
      ],
      [
        'revocationUrl carries credentials',
        { revocationUrl: 'https://u:p@api.kroger.com/revoke' },
        /invalid "revocationUrl": .*credentials/,
      ],
      [
        'redirectUrl has a fragment',
        { redirectUrl: 'https://broker.example.com/callback#x' },
        /invalid "redirectUrl": .*fragment/,
      ],
      [
        'redirectUrl does not end in /callback (no /login to derive on its host)',
        { redirectUrl: 'https://auth.example.com/kroger/return' },
        /invalid "redirectUrl": its path must end in \/callback/,
      ],
      [
        'a returnToAllowlist entry is http',
        { returnToAllowlist: ['http://app.example.com'] },
        /invalid "returnToAllowlist": .*https/,
      ],
      [
        'successRedirect is not on the allow-list',
        { successRedirect: 'https://evil.example.com/', returnToAllowlist: ['https://app.example.com'] },
        /invalid "successRedirect": "https:\/\/evil\.example\.com\/" must be on returnToAllowlist/,
      ],
      [
        'successRedirect only shares a host prefix with the allow-list',
        { successRedirect: 'https://app.example.com.evil.test/', returnToAllowlist: ['https://app.example.com'] },
        /invalid "successRedirect"/,
      ],
      [
        'refreshWindow is not whole seconds',
        { refreshWindow: Duration.millis(1500) },
        /invalid "refreshWindow": must be whole seconds between 1 second and 1 day, got 1 second 500 millis/,
      ],
      ['refreshWindow is longer than a day', { refreshWindow: Duration.hours(25) }, /invalid "refreshWindow"/],
      ['refreshWindow is zero', { refreshWindow: Duration.seconds(0) }, /invalid "refreshWindow"/],
      [
        'refreshConcurrency is zero',
        { refreshConcurrency: 0 },
        /invalid "refreshConcurrency": must be a whole number between 1 and 64, got 0/,
      ],
      ['refreshConcurrency is above 64', { refreshConcurrency: 65 }, /invalid "refreshConcurrency"/],
      ['refreshConcurrency is fractional', { refreshConcurrency: 2.5 }, /invalid "refreshConcurrency"/],
      [
        'refresherReservedConcurrency is zero (that would stop the refresher)',
        { refresherReservedConcurrency: 0 },
        /invalid "refresherReservedConcurrency": must be a whole number of at least 1 \(leave it unset/,
      ],
      [
        'refresherReservedConcurrency is fractional',
        { refresherReservedConcurrency: 1.5 },
        /invalid "refresherReservedConcurrency"/,
      ],
    ])('throws when %s', (_, props, message) => {
      expect(() => create(props)).toThrow(message);
    });

    it('accepts a successRedirect under an allow-listed prefix', () => {
      expect(() =>
        create({
          successRedirect: 'https://app.example.com/done/ok',
          returnToAllowlist: ['https://app.example.com/done'],
        }),
      ).not.toThrow();
    });
  });
});
