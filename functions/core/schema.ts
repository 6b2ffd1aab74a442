/**
 * Facts about the broker's storage and telemetry that both the functions and the infrastructure rely
 * on, in one place, as plain data: the tables' keys, index and TTL attribute, what a token reader may
 * read, the metrics namespace, and the scheduled refresher's limits. `functions/adapters/tables.ts`
 * (DynamoDB Local) and `infra/` (CDK) derive their tables from here, so the two cannot drift apart.
 *
 * No SDK import: infra imports this module, and must not load the DynamoDB client to synthesize.
 */
import { MAX_REFRESH_TIMEOUT_MS, refreshCallBudgetMs } from './budget';

/** A DynamoDB key attribute: its name and scalar type (`S` string, `N` number). */
export interface KeyAttribute {
  readonly name: string;
  readonly type: 'S' | 'N';
}

/** A global secondary index of a table. */
export interface IndexSchema {
  readonly name: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  /** Only `KEYS_ONLY` is used: an index entry says who is due, the item is read where it is needed. */
  readonly projection: 'KEYS_ONLY';
}

/** The shape of one table, as both DynamoDB Local and CloudFormation need it. */
export interface TableSchema {
  readonly partitionKey: KeyAttribute;
  /** Items are deleted by DynamoDB some time after this attribute's epoch-seconds value. */
  readonly ttlAttribute: string;
  readonly indexes: readonly IndexSchema[];
}

/** The attribute DynamoDB's TTL reads on both tables (epoch seconds). */
export const TTL_ATTRIBUTE = 'ttl';

/** Name of the tokens table's sparse index the scheduled refresher queries (present only on active users). */
export const DUE_INDEX = 'due';

/** Shards of the due index: spreads its partitions; the refresher queries them one by one. */
export const REFRESH_SHARDS = 16;

/** The tokens table: one item per user, keyed by the user id. */
export const TOKENS_TABLE: TableSchema = {
  partitionKey: { name: 'userId', type: 'S' },
  ttlAttribute: TTL_ATTRIBUTE,
  indexes: [
    {
      name: DUE_INDEX,
      partitionKey: { name: 'refreshShard', type: 'N' },
      sortKey: { name: 'nextRefreshAt', type: 'N' },
      projection: 'KEYS_ONLY',
    },
  ],
};

/**
 * The sessions table: login attempts, connect links and pending connections, keyed by a prefixed id;
 * never granted to readers. It also holds the mass-refusal counters under {@link REFUSAL_COUNTER_KEY_PREFIX}.
 */
export const SESSIONS_TABLE: TableSchema = {
  partitionKey: { name: 'id', type: 'S' },
  ttlAttribute: TTL_ATTRIBUTE,
  indexes: [],
};

/**
 * The key prefix of connect links in the sessions table: an app backend may write items under it,
 * and nothing else there (IAM `dynamodb:LeadingKeys`).
 */
export const LINK_KEY_PREFIX = 'link#';

/**
 * The only attributes of the tokens table a token reader may read (IAM `dynamodb:Attributes` holds
 * readers to this list): never the refresh token, the lease or the failure details.
 */
export const READER_ATTRIBUTES = [
  'userId',
  'accessToken',
  'expiresAt',
  'scope',
  'tokenType',
  'status',
  'statusReason',
  'version',
] as const;

/** How long the item of a user who must sign in again is kept before DynamoDB's TTL deletes it. */
export const REAUTH_RETENTION_SECONDS = 90 * 86_400;

/**
 * How the broker keeps grants fresh (`REFRESH_POLICY`), one fact for every function that writes a
 * user's place in the `due` index (the callback, the connect-link completion, the refresh function,
 * the scheduled refresher, in-process readers):
 * - `eager` (the default): the scheduled refresher refreshes every active user before the access
 *   token expires, read or not, so the table always holds a valid token for services that read it
 *   directly. About 64 token calls per user a day at Kroger's 30-minute tokens.
 * - `on-read`: a token is refreshed when a reader finds it too close to expiry; the scheduled
 *   refresher refreshes only a grant nobody has read for `KEEP_ALIVE_SECONDS`, so it cannot lapse.
 *   Services that read the table directly then find expired tokens for idle users.
 */
export const REFRESH_POLICIES = ['eager', 'on-read'] as const;

/** One of {@link REFRESH_POLICIES}. */
export type RefreshPolicyName = (typeof REFRESH_POLICIES)[number];

/** The policy when `REFRESH_POLICY` is not set: today's broker. */
export const DEFAULT_REFRESH_POLICY: RefreshPolicyName = 'eager';

/**
 * What a store does with a secret field stored without encryption (no `v1.` envelope prefix): items
 * written before fields were encrypted hold their refresh token in plaintext until their next write.
 * - `accept` (the default): read it, and seal it at the next write, so an upgrade signs nobody out.
 * - `refuse`: fail the read with `DECRYPTION_FAILED`, as for a ciphertext moved from another item. Once
 *   every item is sealed, this stops someone who can write to the table (but not use the field key)
 *   from planting a refresh token of their choosing for a user.
 */
export const PLAINTEXT_FIELD_POLICIES = ['accept', 'refuse'] as const;

/** One of {@link PLAINTEXT_FIELD_POLICIES}. */
export type PlaintextFieldPolicy = (typeof PLAINTEXT_FIELD_POLICIES)[number];

/**
 * The refresh policy's settings, read from the environment variable of the same key by every
 * function that writes schedules, and validated by the construct against the same range.
 */
export const REFRESH_POLICY_SETTINGS = {
  /**
   * `on-read`: an unread grant is refreshed this long after its last tokens. Kroger's refresh tokens
   * are reported (not documented) to live about six months; a week keeps some 25 keep-alive chances
   * inside that, so a provider outage of days or a run of failures (retried with back-off) cannot
   * let a grant lapse, for about 4 token calls per idle user a month. At most 30 days (6 chances);
   * at least an hour (more often is eager with extra steps).
   */
  KEEP_ALIVE_SECONDS: { default: 7 * 86_400, min: 3_600, max: 30 * 86_400 },
} as const satisfies Record<string, IntSetting>;

/** CloudWatch namespace of the scheduled refresher's Embedded Metric Format line. */
export const METRICS_NAMESPACE = 'KrogerTokenBroker';

/**
 * The one dimension of the refresher's metrics: the function name (the logger's `function` field),
 * so two broker stacks in one account and region keep their metrics apart.
 */
export const METRICS_DIMENSION = 'function';

/** The counts the scheduled refresher publishes once per run. */
export const REFRESHER_METRICS = ['due', 'refreshed', 'failed', 'reauth', 'deferred'] as const;

/** One of {@link REFRESHER_METRICS}. */
export type RefresherMetricName = (typeof REFRESHER_METRICS)[number];

/** A whole-number setting: its default and the closed range it must lie in. */
export interface IntSetting {
  readonly default: number;
  readonly min: number;
  readonly max: number;
}

/**
 * The scheduled refresher's settings, read by its handler from the environment variable of the same
 * key and validated by the construct against the same range.
 */
export const REFRESHER_SETTINGS = {
  /** Refresh tokens that expire within this many seconds (and grants idle for a day). */
  REFRESH_WINDOW_SECONDS: { default: 600, min: 1, max: 86_400 },
  /** Users refreshed at once by one run. */
  REFRESH_CONCURRENCY: { default: 8, min: 1, max: 64 },
} as const satisfies Record<string, IntSetting>;

/**
 * How long before its timeout a scheduled run stops starting users: one user can wait up to the
 * reader's wait for another process's lease, then make a provider call, then retry its write
 * (see `budget.ts`; about 93 s).
 */
export const REFRESHER_STOP_BEFORE_TIMEOUT_MS = refreshCallBudgetMs(MAX_REFRESH_TIMEOUT_MS);

/**
 * Limits on refreshes, read from the environment variables of the same names by every process that
 * refreshes (the refresh function, the scheduled refresher, in-process readers).
 */
export const REFRESH_LIMIT_SETTINGS = {
  /** A forced refresh is honoured at most once per user in this many seconds; 0: every time. */
  FORCE_REFRESH_MIN_INTERVAL_SECONDS: { default: 60, min: 0, max: 86_400 },
  /** Grants marked `reauth_required` per window and refusal shape before the rest are held; 0: no guard. */
  MASS_REFUSAL_THRESHOLD: { default: 20, min: 0, max: 100_000 },
  /** The mass-refusal guard's window. */
  MASS_REFUSAL_WINDOW_SECONDS: { default: 600, min: 60, max: 86_400 },
} as const satisfies Record<string, IntSetting>;

/**
 * Key prefix of the mass-refusal counters in the sessions table (one item per refusal shape). The
 * refresh function and the scheduled refresher may update items under this prefix only (IAM
 * `dynamodb:LeadingKeys`); token readers are never granted the sessions table.
 */
export const REFUSAL_COUNTER_KEY_PREFIX = 'guard#refusals#';

/**
 * Metrics the refreshing functions publish at the moment something needs an operator (one Embedded
 * Metric Format line each, same namespace and dimension as the refresher's): the provider refused
 * the client credentials, or refusals of grants were held back by the mass-refusal guard.
 */
export const FAULT_METRICS = ['clientRejected', 'refusalsHeld'] as const;

/** One of {@link FAULT_METRICS}. */
export type FaultMetricName = (typeof FAULT_METRICS)[number];
