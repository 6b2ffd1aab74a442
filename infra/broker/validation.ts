/**
 * Checks of {@link KrogerTokenBrokerProps}, run before anything is created, with messages that say
 * which prop to fix; and the warning for a combination that is valid but leaves a gap.
 */
import { Annotations, Duration, Token } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { isAllowedTarget, parseScopes, parseUrlSetting, readAppName } from '../../functions/core/config';
import {
  PLAINTEXT_FIELD_POLICIES,
  REFRESH_POLICIES,
  REFRESH_POLICY_SETTINGS,
  REFRESHER_SETTINGS,
} from '../../functions/core/schema';
import type { ResolvedBrokerProps } from './defaults';
import type { KrogerTokenBrokerProps } from './props';

/**
 * Validates props before anything is created, with messages that say which prop to fix. The URL
 * and scope rules are the handlers' own (functions/core/config.ts), so infra and runtime agree.
 */
export function validateProps(props: KrogerTokenBrokerProps): void {
  const fail = (prop: string, message: string): never => {
    throw new Error(`KrogerTokenBroker: invalid "${prop}": ${message}`);
  };
  const check = (prop: string, run: () => unknown): void => {
    try {
      run();
    } catch (error) {
      fail(prop, (error as Error).message);
    }
  };
  const resolved = (value: string | undefined): value is string => value !== undefined && !Token.isUnresolved(value);

  if (typeof props.clientId !== 'string' || (!Token.isUnresolved(props.clientId) && props.clientId.trim() === '')) {
    fail('clientId', 'set it to the client id of your Kroger application (developer portal)');
  }
  if (props.scopes !== undefined && !props.scopes.some((s) => Token.isUnresolved(s))) {
    check('scopes', () => parseScopes(props.scopes!.join(' ')));
  }
  const urls: Array<[string, string | undefined]> = [
    ['oauth2BaseUrl', props.oauth2BaseUrl],
    ['apiBaseUrl', props.apiBaseUrl],
    ['issuer', props.issuer],
    ['revocationUrl', props.revocationUrl],
    ['redirectUrl', props.redirectUrl],
    ['successRedirect', props.successRedirect],
    ...(props.returnToAllowlist ?? []).map((entry): [string, string] => ['returnToAllowlist', entry]),
  ];
  for (const [prop, value] of urls) {
    if (!resolved(value)) continue;
    check(prop, () => parseUrlSetting(prop, value));
    // The handlers accept plain http on localhost for local runs; a deployed broker never does.
    if (new URL(value).protocol !== 'https:') fail(prop, `must be an https URL, got "${value}"`);
  }
  if (resolved(props.redirectUrl) && new URL(props.redirectUrl).hash) {
    fail('redirectUrl', 'a redirect URI must not have a fragment (RFC 6749 section 3.1.2)');
  }
  if (resolved(props.redirectUrl) && !/\/callback\/?$/.test(new URL(props.redirectUrl).pathname)) {
    fail(
      'redirectUrl',
      `its path must end in /callback (the broker's route), so /login can be served from the same host; got "${props.redirectUrl}"`,
    );
  }
  if (props.refreshWindow !== undefined && !props.refreshWindow.isUnresolved()) {
    const seconds = props.refreshWindow.toSeconds({ integral: false });
    const { min, max } = REFRESHER_SETTINGS.REFRESH_WINDOW_SECONDS;
    if (!Number.isInteger(seconds) || seconds < min || seconds > max) {
      fail(
        'refreshWindow',
        `must be whole seconds between ${Duration.seconds(min).toHumanString()} and ${Duration.seconds(max).toHumanString()}, got ${props.refreshWindow.toHumanString()}`,
      );
    }
  }
  if (props.refreshConcurrency !== undefined && !Token.isUnresolved(props.refreshConcurrency)) {
    const n = props.refreshConcurrency;
    const { min, max } = REFRESHER_SETTINGS.REFRESH_CONCURRENCY;
    if (!Number.isInteger(n) || n < min || n > max) {
      fail('refreshConcurrency', `must be a whole number between ${min} and ${max}, got ${n}`);
    }
  }
  if (props.refreshPolicy !== undefined && !(REFRESH_POLICIES as readonly string[]).includes(props.refreshPolicy)) {
    fail('refreshPolicy', `must be one of ${REFRESH_POLICIES.join(', ')}, got "${props.refreshPolicy}"`);
  }
  if (
    props.plaintextFields !== undefined &&
    !(PLAINTEXT_FIELD_POLICIES as readonly string[]).includes(props.plaintextFields)
  ) {
    fail('plaintextFields', `must be one of ${PLAINTEXT_FIELD_POLICIES.join(', ')}, got "${props.plaintextFields}"`);
  }
  if (props.keepAliveInterval !== undefined && !props.keepAliveInterval.isUnresolved()) {
    const seconds = props.keepAliveInterval.toSeconds({ integral: false });
    const { min, max } = REFRESH_POLICY_SETTINGS.KEEP_ALIVE_SECONDS;
    if (!Number.isInteger(seconds) || seconds < min || seconds > max) {
      fail(
        'keepAliveInterval',
        `must be whole seconds between ${Duration.seconds(min).toHumanString()} and ${Duration.seconds(max).toHumanString()}, got ${props.keepAliveInterval.toHumanString()}`,
      );
    }
  }
  const reserved = props.refresherReservedConcurrency;
  if (reserved !== undefined && !Token.isUnresolved(reserved) && (!Number.isInteger(reserved) || reserved < 1)) {
    fail(
      'refresherReservedConcurrency',
      `must be a whole number of at least 1 (leave it unset for no reservation), got ${reserved}`,
    );
  }
  if (resolved(props.appName)) {
    check('appName', () => readAppName({ APP_NAME: props.appName }));
  }
  if (props.alarmTopic && props.alarmEmail !== undefined) {
    fail(
      'alarmEmail',
      'give either alarmTopic or alarmEmail (a new topic): to mail from your topic, subscribe the address to it',
    );
  }
  if (resolved(props.alarmEmail) && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(props.alarmEmail)) {
    fail('alarmEmail', `must be one e-mail address, got "${props.alarmEmail}"`);
  }
  if (resolved(props.successRedirect)) {
    const allowlist = props.returnToAllowlist ?? [];
    if (!isAllowedTarget(props.successRedirect, allowlist)) {
      fail(
        'successRedirect',
        `"${props.successRedirect}" must be on returnToAllowlist; add its origin or a prefix of it there`,
      );
    }
  }
}

/**
 * Warns when the refresh window is shorter than a rate schedule's period: a token can then expire
 * between two runs (readers refresh it on demand, so this is a warning, not an error).
 */
export function warnOnRefreshGap(scope: Construct, props: ResolvedBrokerProps): void {
  const { refreshWindow, schedulePeriod } = props;
  if (
    schedulePeriod &&
    !refreshWindow.isUnresolved() &&
    schedulePeriod.toSeconds() > refreshWindow.toSeconds({ integral: false })
  ) {
    Annotations.of(scope).addWarningV2(
      'kroger-token-broker:refreshWindow',
      `refreshWindow (${refreshWindow.toHumanString()}) is shorter than the refresh schedule period (${schedulePeriod.toHumanString()}): tokens can expire between two runs; readers then refresh them on demand`,
    );
  }
}
