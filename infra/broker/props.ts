/**
 * The public shapes of {@link KrogerTokenBroker}: its props (each optional one with its `@default`,
 * applied in `defaults.ts`) and the environments it hands to token readers and connect-link creators.
 */
import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as events from 'aws-cdk-lib/aws-events';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';

import type { PlaintextFieldPolicy, RefreshPolicyName } from '../../functions/core/schema';

export type { RefresherMetricName, RefreshPolicyName } from '../../functions/core/schema';

/** Log levels the handlers understand (`LOG_LEVEL`); the handlers' own logger is the only filter. */
export type BrokerLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** Properties of {@link KrogerTokenBroker}. */
export interface KrogerTokenBrokerProps {
  /** The Kroger application's client id (developer portal). Not a secret. */
  readonly clientId: string;
  /**
   * Scopes requested at /login. Must include a `profile.*` scope: tokens are stored under the
   * Kroger profile id.
   * @default - `product.compact cart.basic:write profile.compact`
   */
  readonly scopes?: readonly string[];
  /**
   * Base of the authorization server's `/authorize` and `/token` endpoints.
   * @default - `https://api.kroger.com/v1/connect/oauth2`
   */
  readonly oauth2BaseUrl?: string;
  /**
   * Base of the Kroger API (the profile lookup).
   * @default - `https://api.kroger.com`
   */
  readonly apiBaseUrl?: string;
  /**
   * Expected `iss` authorization response parameter (RFC 9207).
   * @default - `iss` is not checked (a single authorization server, see RFC 9700 section 4.4)
   */
  readonly issuer?: string;
  /**
   * RFC 7009 token revocation endpoint.
   * @default - tokens are not revoked at the provider
   */
  readonly revocationUrl?: string;
  /**
   * The exact redirect URI registered with Kroger, e.g. on a custom domain in front of the API. Its
   * path must end in `/callback`; {@link KrogerTokenBroker.loginUrl} is then the same URL with
   * `/login` instead, so the login and the callback share a host (the browser-binding cookie set at
   * /login must come back to /callback).
   * @default - the API's own `${apiEndpoint}/callback`
   */
  readonly redirectUrl?: string;
  /**
   * An existing secret holding the client secret as a plain SecretString.
   * @default - a new secret, named by CloudFormation (so a stack deployed again after a destroy never
   * meets the retained secret of the last one), with a generated placeholder value; put the real
   * client secret into it after the first deploy
   */
  readonly clientSecret?: secretsmanager.ISecret;
  /**
   * URL prefixes a `returnTo` may point at after a successful login.
   * @default - none: the callback shows its own success page
   */
  readonly returnToAllowlist?: readonly string[];
  /**
   * Where to send the browser after a successful login; must be on `returnToAllowlist`.
   * @default - the callback's own success page
   */
  readonly successRedirect?: string;
  /**
   * What happens to the tables, their KMS key, the secret and the log groups when the stack is
   * deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * How often the scheduled refresher looks for tokens that are due. Keep the period shorter than
   * `refreshWindow`, or a token can expire between two runs (readers then refresh it on demand). A
   * rate schedule also sets the period of the refresher's metric alarms.
   * @default - every 5 minutes
   */
  readonly refreshSchedule?: events.Schedule;
  /**
   * Each run refreshes the tokens that expire within this window (and grants not refreshed for a
   * day). Longer than the schedule period, and well below the access-token lifetime (about 30
   * minutes at Kroger), or every run refreshes every user. Whole seconds, at most one day.
   * @default Duration.minutes(10)
   */
  readonly refreshWindow?: Duration;
  /**
   * How many users one refresher run refreshes at once (1 to 64).
   * @default 8
   */
  readonly refreshConcurrency?: number;
  /**
   * How tokens are kept fresh. `eager`: the scheduled refresher refreshes every active user before
   * the access token expires, read or not, so the table always holds a valid token for services that
   * read it directly (about 64 Kroger token calls per user a day). `on-read`: a token is refreshed
   * when a reader (`getAccessToken`) finds it too close to expiry, and the scheduled refresher only
   * refreshes a grant nobody read for `keepAliveInterval`, so it does not lapse; services reading the
   * table directly then find expired tokens for idle users. Changing it reschedules each user at its
   * next refresh (from `eager`, one more scheduled refresh; to `eager`, an unread user waits for its
   * keep-alive or its next read).
   * @default 'eager'
   */
  readonly refreshPolicy?: RefreshPolicyName;
  /**
   * `on-read` only: an unread grant is refreshed this long after its last tokens, so it does not
   * lapse. Kroger's refresh tokens are reported to live about six months; the default keeps some 25
   * chances inside that. Whole seconds, between one hour and 30 days.
   * @default Duration.days(7)
   */
  readonly keepAliveInterval?: Duration;
  /**
   * Reserved concurrency of the scheduled refresher, e.g. 1 for one run at a time. Reserving takes
   * that much from the account's unreserved concurrency, and deploying fails when less than 100
   * would remain: accounts at the default limit of 10 concurrent executions cannot reserve any.
   * @default - none: overlapping runs are safe, each user is single-flight through a DynamoDB lease
   */
  readonly refresherReservedConcurrency?: number;
  /**
   * The bus lifecycle events (`token.connected`, `token.refresh_failed`, `token.reauth_required`,
   * `token.recovered`, source `kroger-token-broker`) are put on. A bus in another account needs a
   * resource policy there that lets this account put events.
   * @default - the account's default event bus
   */
  readonly eventBus?: events.IEventBus;
  /**
   * Retention of the function and API access log groups.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Level of the handlers' logs (`LOG_LEVEL`).
   * @default 'INFO'
   */
  readonly logLevel?: BrokerLogLevel;
  /**
   * Send PKCE S256 (RFC 7636); turn off only for a provider that rejects it.
   * @default true
   */
  readonly pkce?: boolean;
  /**
   * Default-route throttling of the HTTP API stage; /login and /callback are public.
   * @default - 20 requests per second, bursts of 40
   */
  readonly apiThrottle?: apigwv2.ThrottleSettings;
  /**
   * Serve `/login` without a connect link (a public sign-in, stored under the Kroger profile id).
   * Turn it off for deployments that connect accounts only through links (`createLoginLink` and
   * `completeConnection`): `/login` then refuses requests without a link (`PUBLIC_LOGIN=false`).
   * @default true
   */
  readonly publicLogin?: boolean;
  /**
   * What the functions do with a refresh token or code verifier stored without encryption, as items
   * written before fields were encrypted hold until their next write (`FIELD_PLAINTEXT`). `accept`
   * reads it and seals it at the next write, so an upgrade signs nobody out. `refuse` fails the read
   * (`DECRYPTION_FAILED`), so someone who can write to the table but not use the field key cannot
   * plant a refresh token for a user. Switch to `refuse` once every item is sealed: with `eager`,
   * one refresh cycle after the upgrade (every active item is rewritten); with `on-read`, one
   * `keepAliveInterval`. See docs/security.md.
   * @default 'accept'
   */
  readonly plaintextFields?: PlaintextFieldPolicy;
  /**
   * The app's name as the login and callback pages show it ("Return to <appName>", "finish in
   * <appName>"): `APP_NAME`, at most 64 printable characters.
   * @default - "the app"
   */
  readonly appName?: string;
  /**
   * An action every alarm of the broker runs when it goes into ALARM and when it returns to OK.
   * @default - none; see `alarmTopic` and `alarmEmail`
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
  /**
   * An existing SNS topic (in the stack's region) every alarm of the broker notifies, on alarm and
   * on OK. A topic encrypted with the AWS managed key `alias/aws/sns` cannot receive alarms: use a
   * customer managed key whose policy lets `cloudwatch.amazonaws.com` use it.
   * @default - none, unless `alarmEmail` creates one
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * An e-mail address every alarm of the broker notifies, on alarm and on OK, through a new SNS
   * topic (encrypted under its own KMS key, publishing over TLS only). The address receives a
   * confirmation mail from AWS first; nothing arrives until the link in it is followed.
   * Not together with `alarmTopic` (subscribe the address to that topic instead).
   * @default - no e-mail
   */
  readonly alarmEmail?: string;
}

/** What a token reader (another service) needs in its environment. */
export interface TokenReaderEnvironment {
  readonly TOKENS_TABLE: string;
  readonly REFRESH_FUNCTION_NAME: string;
}

/**
 * What an app backend creating connect links (`createLoginLink`) and completing them
 * (`completeConnection`) needs in its environment.
 */
export interface LoginLinkEnvironment {
  readonly SESSIONS_TABLE: string;
  /** The broker's `/login` ({@link KrogerTokenBroker.loginUrl}); a link is this URL plus `?session=`. */
  readonly LOGIN_URL: string;
  /** The broker's complete function, which `completeConnection` invokes. */
  readonly COMPLETE_FUNCTION_NAME: string;
  /**
   * Set only when the broker has a `returnToAllowlist`: `createLoginLink` checks a `returnTo`
   * against it before writing the link (/login checks it again).
   */
  readonly RETURN_TO_ALLOWLIST?: string;
}
