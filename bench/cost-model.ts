/**
 * What the broker costs per month, per refresh policy and number of connected users: per-user-per-day
 * counts from a simulated day of the broker's own code under each policy with a stated read pattern
 * (bench/policy-sim.ts: token calls, DynamoDB requests and units, log bytes, refresh function
 * invocations, sweep runs), and per-operation figures the other sections measured (the `due` index
 * units per due user, an item's size), multiplied out and priced at dated us-east-1 list prices.
 * What cannot be measured here (latencies inside AWS, Lambda's own log records, KMS caching) is an
 * assumption, named in {@link ASSUMPTIONS} and printed with the tables.
 */
import { REFRESH_SHARDS, REFRESHER_STOP_BEFORE_TIMEOUT_MS } from '../functions/core/schema';
import type { PolicyCounts, PolicySimResult } from './policy-sim';
import { int, table } from './stats';

/**
 * us-east-1 list prices, on-demand, without free tiers (a month of this broker alone rarely fits
 * them, and the account's other workloads share them). As published on 2025-11-01; re-check before
 * quoting a bill. Source pages (aws.amazon.com): "AWS Lambda Pricing", "Amazon DynamoDB Pricing for
 * On-Demand Capacity", "AWS Key Management Service Pricing", "AWS Secrets Manager Pricing",
 * "Amazon EventBridge Pricing", "Amazon CloudWatch Pricing", "Amazon API Gateway Pricing".
 */
export const PRICES = {
  date: '2025-11-01',
  region: 'us-east-1',
  /** Lambda, arm64 (what the construct deploys): per GB-second, first 7.5 billion GB-s of a month. */
  lambdaGbSecondArm: 0.0000133334,
  /** Lambda: per request. */
  lambdaRequest: 0.2 / 1e6,
  /** DynamoDB on-demand (since the November 2024 price cut): per write request unit. */
  dynamoWriteUnit: 0.625 / 1e6,
  /** DynamoDB on-demand: per read request unit (a strongly consistent read of up to 4 KB). */
  dynamoReadUnit: 0.125 / 1e6,
  /** DynamoDB Standard storage per GB-month (table and indexes). */
  dynamoStorageGbMonth: 0.25,
  /** Point-in-time recovery (continuous backups), per GB-month. */
  dynamoPitrGbMonth: 0.2,
  /** KMS: customer managed key per month, and per request. */
  kmsKeyMonth: 1.0,
  kmsRequest: 0.03 / 10_000,
  /** Secrets Manager: per secret-month, per 10,000 API calls. */
  secretMonth: 0.4,
  secretRequest: 0.05 / 10_000,
  /** EventBridge: custom events put on a bus, per event. Rules on a schedule (the refresher's) cost nothing. */
  eventBridgeEvent: 1.0 / 1e6,
  eventBridgeScheduledRule: 0,
  /** CloudWatch Logs: ingestion (standard class) per GB, storage per GB-month. */
  logsIngestGb: 0.5,
  logsStorageGbMonth: 0.03,
  /** CloudWatch: a custom metric per month (first 10,000), a standard-resolution alarm per month. */
  metricMonth: 0.3,
  alarmMonth: 0.1,
  /** API Gateway HTTP API, per request (first 300 million a month). */
  httpApiRequest: 1.0 / 1e6,
} as const;

/** What the cost model assumes beyond what the bench measures: each named, so it can be argued with. */
export const ASSUMPTIONS = {
  /** Hours in a month (AWS bills with 730). */
  monthHours: 730,
  /** Kroger's access token lifetime (its documentation: 30 minutes), seconds. */
  tokenLifetimeSeconds: 1800,
  /** The construct's defaults: refresher every 5 minutes, refreshing what expires within 10. */
  scheduleSeconds: 300,
  windowSeconds: 600,
  refresherConcurrency: 8,
  refresherMemoryGb: 0.5,
  refreshFunctionMemoryGb: 0.25,
  /** The refresher stops starting users a whole refresh's budget before its 5-minute timeout. */
  refresherBudgetSeconds: 300 - REFRESHER_STOP_BEFORE_TIMEOUT_MS / 1000,
  /** Not measurable here: one Kroger token call from Lambda in us-east-1, milliseconds. */
  providerCallMs: 300,
  /** Not measurable here: one DynamoDB request from Lambda in the same region, milliseconds. */
  dynamoRequestMs: 6,
  /** Fixed work of a refresher run besides its index queries (handler, metric line), milliseconds. */
  refresherRunOverheadMs: 20,
  /**
   * Lambda's own log records per invocation with the JSON log format (`platform.start`,
   * `platform.report`), bytes. An estimate of their size.
   */
  platformLogBytesPerInvocation: 800,
  /**
   * KMS: DynamoDB decrypts a table key for each caller (IAM principal) at most every 5 minutes of
   * activity, and caches it. Principals calling the tokens table: the refresher, the refresh
   * function, one reader service.
   */
  kmsPrincipals: 3,
  /**
   * CloudWatch alarm metrics and custom metrics the construct creates: errors and throttles of three
   * functions, API 5xx, three on the refresher, and two fault alarms of two metrics each (a metric
   * math alarm is billed per metric it reads: client credentials refused, mass refusals held, each
   * from the refresh function and the refresher); metrics due, refreshed, failed, reauth, deferred
   * (the fault metrics exist only in a month with a fault, so they cost nothing otherwise).
   */
  alarms: 14,
  customMetrics: 5,
} as const;

/** Per-operation figures the other sections measured (see bench/run.ts for where each comes from). */
export interface MeasuredCounts {
  /** Index read units per user returned by the `due` queries (the refresher cost section). */
  readonly indexReadUnitsPerDueUser: number;
  /** Stored bytes per user. */
  readonly itemBytes: number;
}

/** Operations of one policy for one number of users, per month. */
export interface MonthlyOperations {
  readonly users: number;
  readonly providerCalls: number;
  readonly dynamoReadUnits: number;
  readonly dynamoWriteUnits: number;
  readonly invocations: number;
  readonly gbSeconds: number;
  readonly kmsRequests: number;
  readonly secretRequests: number;
  readonly scheduleInvocations: number;
  readonly events: number;
  readonly logBytes: number;
  readonly storageGb: number;
  /** Refresher runs that cannot finish their due users within the run's time budget. */
  readonly overCapacity?: string;
}

const month = () => ASSUMPTIONS.monthHours * 3600;
const daysPerMonth = () => ASSUMPTIONS.monthHours / 24;
const runsPerMonth = () => month() / ASSUMPTIONS.scheduleSeconds;
/** The time one scheduled refresh keeps a lane of the refresher busy, seconds: lease, call, save. */
const laneSeconds = (writesPerRefresh: number) =>
  (ASSUMPTIONS.providerCallMs + writesPerRefresh * ASSUMPTIONS.dynamoRequestMs) / 1000;

/** KMS and Secrets Manager calls: per principal / per container at most every 5 minutes of activity. */
const perFiveMinutes = (callers: number) => callers * runsPerMonth();

/**
 * A month of one policy for `users` connected users: the simulated day's counts per user, times the
 * users and the days, plus what every run of the scheduled refresher costs whoever is due.
 */
export function policyMonth(counts: PolicyCounts, measured: MeasuredCounts, users: number): MonthlyOperations {
  const day = counts.perUserDay;
  const userDays = users * daysPerMonth();
  const runs = runsPerMonth();
  const sweepRefreshesPerRun = (users * day.sweepRefreshes * daysPerMonth()) / runs;
  // DynamoDB bills at least 0.5 RRU per query (eventually consistent, as index queries are).
  const indexUnits = runs * Math.max(REFRESH_SHARDS * 0.5, sweepRefreshesPerRun * measured.indexReadUnitsPerDueUser);
  const lane = laneSeconds(counts.writesPerRefresh.sweep || 2);
  const runSeconds =
    (ASSUMPTIONS.refresherRunOverheadMs + REFRESH_SHARDS * ASSUMPTIONS.dynamoRequestMs) / 1000 +
    (sweepRefreshesPerRun * lane) / ASSUMPTIONS.refresherConcurrency;
  const capacity = (ASSUMPTIONS.refresherBudgetSeconds * ASSUMPTIONS.refresherConcurrency) / lane;
  // The refresh function: one invocation per stale read; its requests and one token call when it refreshes.
  const invocations = userDays * day.staleReads;
  const functionRequests = Object.entries(day.requests)
    .filter(([kind]) => kind.startsWith('refresh fn'))
    .reduce((sum, [, n]) => sum + n, 0);
  const functionSeconds =
    day.staleReads > 0
      ? (day.readRefreshes * ASSUMPTIONS.providerCallMs + functionRequests * ASSUMPTIONS.dynamoRequestMs) /
        1000 /
        day.staleReads
      : 0;
  return {
    users,
    providerCalls: userDays * day.providerCalls,
    dynamoReadUnits: userDays * day.readUnits + indexUnits,
    dynamoWriteUnits: userDays * day.writeUnits,
    invocations: runs + invocations,
    gbSeconds:
      runs * runSeconds * ASSUMPTIONS.refresherMemoryGb +
      invocations * functionSeconds * ASSUMPTIONS.refreshFunctionMemoryGb,
    kmsRequests: perFiveMinutes(ASSUMPTIONS.kmsPrincipals),
    secretRequests: perFiveMinutes(invocations > 0 ? 2 : 1),
    scheduleInvocations: runs,
    // Events are published on changes of state only (connected, reauth_required, ...): none in a steady month.
    events: 0,
    logBytes:
      userDays * day.logBytes +
      runs * (counts.logBytesPerRun + ASSUMPTIONS.platformLogBytesPerInvocation) +
      invocations * ASSUMPTIONS.platformLogBytesPerInvocation,
    storageGb: (users * measured.itemBytes) / 1e9,
    overCapacity:
      sweepRefreshesPerRun > capacity
        ? `${int(sweepRefreshesPerRun)} refreshes per run, a run can do about ${int(capacity)} (${ASSUMPTIONS.refresherConcurrency} lanes × ${Math.round(ASSUMPTIONS.refresherBudgetSeconds)} s at ${Math.round(lane * 1000)} ms each): raise REFRESH_CONCURRENCY or the rest expires and is refreshed on read`
        : undefined,
  };
}

/** What each policy is, for the tables. */
export const POLICY_NOTES: Record<string, string> = {
  eager: 'the default: every active user refreshed before the token expires, read or not',
  'on-read': 'refreshed when a reader finds the token stale; unread grants kept alive by the schedule',
};

/** USD per month by line. */
export interface MonthlyCost {
  readonly lambda: number;
  readonly dynamo: number;
  readonly kms: number;
  readonly secrets: number;
  readonly schedule: number;
  readonly logs: number;
  readonly fixed: number;
  readonly total: number;
}

/** Prices a month of operations. Fixed: the KMS key, the secret, metrics, alarms. */
export function price(ops: MonthlyOperations): MonthlyCost {
  const p = PRICES;
  const logGb = ops.logBytes / 1e9;
  const lambda = ops.invocations * p.lambdaRequest + ops.gbSeconds * p.lambdaGbSecondArm;
  const dynamo =
    ops.dynamoReadUnits * p.dynamoReadUnit +
    ops.dynamoWriteUnits * p.dynamoWriteUnit +
    ops.storageGb * (p.dynamoStorageGbMonth + p.dynamoPitrGbMonth);
  const kms = ops.kmsRequests * p.kmsRequest;
  const secrets = ops.secretRequests * p.secretRequest;
  const schedule = ops.scheduleInvocations * p.eventBridgeScheduledRule + ops.events * p.eventBridgeEvent;
  // With one month of retention, about one month of logs is stored at any time (before compression).
  const logs = logGb * (p.logsIngestGb + p.logsStorageGbMonth);
  const fixed =
    p.kmsKeyMonth + p.secretMonth + ASSUMPTIONS.customMetrics * p.metricMonth + ASSUMPTIONS.alarms * p.alarmMonth;
  return {
    lambda,
    dynamo,
    kms,
    secrets,
    schedule,
    logs,
    fixed,
    total: lambda + dynamo + kms + secrets + schedule + logs + fixed,
  };
}

/** The model's output for the report. */
export interface CostResult {
  readonly prices: typeof PRICES;
  readonly assumptions: typeof ASSUMPTIONS;
  readonly measured: MeasuredCounts;
  /** The simulated day each policy's rows are multiplied out from. */
  readonly policies: PolicySimResult;
  readonly rows: Array<{ policy: string; note: string; ops: MonthlyOperations; cost: MonthlyCost }>;
}

/** Prices every simulated policy for every number of users. */
export function costModel(measured: MeasuredCounts, policies: PolicySimResult, users: readonly number[]): CostResult {
  return {
    prices: PRICES,
    assumptions: ASSUMPTIONS,
    measured,
    policies,
    rows: policies.policies.flatMap((counts) =>
      users.map((u) => {
        const ops = policyMonth(counts, measured, u);
        return { policy: counts.policy.name, note: POLICY_NOTES[counts.policy.name] ?? '', ops, cost: price(ops) };
      }),
    ),
  };
}

const usd = (v: number) => (v >= 100 ? `$${int(v)}` : `$${v.toFixed(2)}`);
const big = (v: number) =>
  v >= 1e9
    ? `${(v / 1e9).toFixed(2)} B`
    : v >= 1e6
      ? `${(v / 1e6).toFixed(2)} M`
      : v >= 1e4
        ? `${(v / 1e3).toFixed(1)} k`
        : int(v);

/** The section as markdown. */
export function costMarkdown(result: CostResult): string {
  const a = result.assumptions;
  const m = result.measured;
  const pattern = result.policies.pattern;
  const lines = [
    `### Cost per month, by refresh policy (us-east-1 list prices of ${result.prices.date})`,
    '',
    `Read pattern (as simulated above): ${Math.round(pattern.activeShare * 100)}% of connected users active on a given day, ` +
      `${pattern.sessionsPerDay} sessions of ${pattern.readsPerSession} reads ${pattern.readEverySeconds / 60} minutes apart; logins are left ` +
      "out (once per user). Per user: the simulated day's counts × the month's days; per refresher run: its 16 index queries " +
      `(at least 0.5 RRU each in AWS) and ${m.indexReadUnitsPerDueUser.toFixed(3)} RRU per due user (measured above); an item is ` +
      `${m.itemBytes} bytes. Assumed (not measurable here): a Kroger token call ${a.providerCallMs} ms, a DynamoDB request ` +
      `${a.dynamoRequestMs} ms in AWS, ${a.platformLogBytesPerInvocation} bytes of Lambda platform log per invocation, KMS ` +
      `decrypts by ${a.kmsPrincipals} principals at most every 5 minutes; all in \`bench/cost-model.ts\`.`,
  ];
  for (const policy of [...new Set(result.rows.map((r) => r.policy))]) {
    const rows = result.rows.filter((r) => r.policy === policy);
    lines.push(
      '',
      `**${policy}** (${rows[0].note}):`,
      '',
      table(
        [
          'users',
          'Kroger token calls',
          'DynamoDB RRU',
          'DynamoDB WRU',
          'Lambda invocations',
          'GB-s',
          'KMS calls',
          'schedule runs',
          'log GB',
          'Lambda',
          'DynamoDB',
          'KMS + secret + schedule',
          'logs',
          'fixed',
          '**USD / month**',
        ],
        rows.map(({ ops, cost }) => [
          int(ops.users),
          big(ops.providerCalls),
          big(ops.dynamoReadUnits),
          big(ops.dynamoWriteUnits),
          big(ops.invocations),
          big(ops.gbSeconds),
          big(ops.kmsRequests),
          big(ops.scheduleInvocations),
          (ops.logBytes / 1e9).toFixed(2),
          usd(cost.lambda),
          usd(cost.dynamo),
          usd(cost.kms + cost.secrets + cost.schedule),
          usd(cost.logs),
          usd(cost.fixed),
          `**${usd(cost.total)}**`,
        ]),
      ),
    );
    for (const row of rows.filter((r) => r.ops.overCapacity)) {
      lines.push('', `${int(row.ops.users)} users, ${policy}: **over capacity**: ${row.ops.overCapacity}.`);
    }
  }
  const perDay = (policy: string, users: number) => {
    const row = result.rows.find((r) => r.policy === policy && r.ops.users === users);
    return row ? row.ops.providerCalls / (a.monthHours / 24) : undefined;
  };
  const largest = Math.max(...result.rows.map((r) => r.ops.users));
  const eagerCalls = perDay('eager', largest);
  const onReadCalls = perDay('on-read', largest);
  lines.push(
    '',
    `Kroger token calls a day at ${int(largest)} users: ${eagerCalls === undefined ? '?' : big(eagerCalls)} eager, ` +
      `${onReadCalls === undefined ? '?' : big(onReadCalls)} on-read. Kroger does not publish its token endpoint's limits here; ` +
      'that column is what they must allow.',
  );
  return lines.join('\n');
}
