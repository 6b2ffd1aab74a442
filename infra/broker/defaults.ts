/**
 * The defaults of {@link KrogerTokenBrokerProps} in one place (each prop's `@default` says the same),
 * applied once by {@link withDefaults}; the rest of the construct reads the resolved props only.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as events from 'aws-cdk-lib/aws-events';
import * as logs from 'aws-cdk-lib/aws-logs';
import { DEFAULT_SCOPES } from '../../functions/core/config';
import {
  DEFAULT_REFRESH_POLICY,
  REFRESH_POLICY_SETTINGS,
  REFRESHER_SETTINGS,
  type RefreshPolicyName,
} from '../../functions/core/schema';
import type { BrokerLogLevel, KrogerTokenBrokerProps } from './props';

/** Kroger's OAuth2 endpoints live under this base (`/authorize`, `/token`). */
export const DEFAULT_OAUTH2_BASE_URL = 'https://api.kroger.com/v1/connect/oauth2';
/** Kroger's API base (`/v1/identity/profile`). */
export const DEFAULT_API_BASE_URL = 'https://api.kroger.com';

/** The run period assumed for a schedule that is not a rate (a cron schedule has no fixed period). */
const FALLBACK_RUN_PERIOD = Duration.minutes(5);

/** {@link KrogerTokenBrokerProps} with every default applied, and the schedule's period. */
export interface ResolvedBrokerProps extends KrogerTokenBrokerProps {
  readonly scopes: readonly string[];
  readonly oauth2BaseUrl: string;
  readonly apiBaseUrl: string;
  readonly removalPolicy: RemovalPolicy;
  readonly refreshSchedule: events.Schedule;
  readonly refreshWindow: Duration;
  readonly refreshConcurrency: number;
  readonly refreshPolicy: RefreshPolicyName;
  readonly keepAliveInterval: Duration;
  readonly logRetention: logs.RetentionDays;
  readonly logLevel: BrokerLogLevel;
  readonly pkce: boolean;
  readonly apiThrottle: apigwv2.ThrottleSettings;
  readonly publicLogin: boolean;
  /** The period of a rate schedule; undefined for a cron schedule. */
  readonly schedulePeriod: Duration | undefined;
}

/** Applies the defaults of every optional prop; call after `validateProps`. */
export function withDefaults(props: KrogerTokenBrokerProps): ResolvedBrokerProps {
  const refreshSchedule = props.refreshSchedule ?? events.Schedule.rate(Duration.minutes(5));
  return {
    ...props,
    scopes: props.scopes ?? DEFAULT_SCOPES,
    oauth2BaseUrl: props.oauth2BaseUrl ?? DEFAULT_OAUTH2_BASE_URL,
    apiBaseUrl: props.apiBaseUrl ?? DEFAULT_API_BASE_URL,
    removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    refreshSchedule,
    refreshWindow: props.refreshWindow ?? Duration.seconds(REFRESHER_SETTINGS.REFRESH_WINDOW_SECONDS.default),
    refreshConcurrency: props.refreshConcurrency ?? REFRESHER_SETTINGS.REFRESH_CONCURRENCY.default,
    refreshPolicy: props.refreshPolicy ?? DEFAULT_REFRESH_POLICY,
    keepAliveInterval: props.keepAliveInterval ?? Duration.seconds(REFRESH_POLICY_SETTINGS.KEEP_ALIVE_SECONDS.default),
    logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    logLevel: props.logLevel ?? 'INFO',
    pkce: props.pkce ?? true,
    apiThrottle: props.apiThrottle ?? { rateLimit: 20, burstLimit: 40 },
    publicLogin: props.publicLogin ?? true,
    schedulePeriod: ratePeriod(refreshSchedule),
  };
}

/**
 * The period of one refresher run (a rate schedule's period, else 5 minutes), clamped to
 * `[minSeconds, maxSeconds]`: how stale a run may get before it is dropped, and the period of the
 * refresher's metric alarms (one run per datapoint).
 */
export function runPeriod(props: ResolvedBrokerProps, minSeconds: number, maxSeconds: number): Duration {
  const period = props.schedulePeriod ?? FALLBACK_RUN_PERIOD;
  return Duration.seconds(Math.min(maxSeconds, Math.max(minSeconds, period.toSeconds())));
}

/** The period of a `rate(...)` schedule; undefined for cron schedules. */
function ratePeriod(schedule: events.Schedule): Duration | undefined {
  const match = /^rate\((\d+) (minute|hour|day)s?\)$/.exec(schedule.expressionString);
  if (!match) return undefined;
  const amount = Number(match[1]);
  return { minute: Duration.minutes, hour: Duration.hours, day: Duration.days }[match[2] as 'minute' | 'hour' | 'day'](
    amount,
  );
}
