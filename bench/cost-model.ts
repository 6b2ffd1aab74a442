/**
 * What the broker costs per month, per refresh policy and number of connected users: operation
 * counts measured by the other sections (a real refresh through DynamoDB Local: requests, write units
 * with the `due` index, log bytes; the reader's paths), multiplied out by a policy's rates and priced
 * at dated us-east-1 list prices. Everything not measured here is an assumption, named and stated in
 * {@link ASSUMPTIONS} and printed with the tables.
 *
 * A policy is a function from the measured counts and its parameters to operations per month
 * ({@link PolicyModel}). `eager` is today's broker. `on-read` (refresh only when a reader finds the
 * token expired, plus a keep-alive refresh before an idle grant lapses) is not built yet: its model
 * is here so its cost can be compared, with its parameters (the read pattern and the keep-alive
 * interval) in {@link ON_READ_PARAMETERS}; when it is built, measure its paths and update them.
 */
import { REFRESH_SHARDS } from '../functions/core/schema';
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
  /** The refresher stops starting users 45 s before its 5-minute timeout. */
  refresherBudgetSeconds: 255,
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
   * The read pattern: how often other services read one connected user's token through the reader,
   * per day. A guess for an app that calls Kroger on the user's behalf a few times an hour while
   * awake; every figure in the reads column scales with it.
   */
  readsPerUserPerDay: 24,
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

/** The on-read policy's parameters: assumptions until the policy is built and measured. */
export const ON_READ_PARAMETERS = {
  /** Reads come in sessions; the first read of a session finds the token expired (older than 25 minutes). */
  sessionsPerUserPerDay: 4,
  /**
   * Keep-alive: an idle grant is refreshed by the schedule this often so it does not lapse (the
   * broker refreshes a grant at least daily today: `MAX_GRANT_IDLE_SECONDS`).
   */
  keepAliveSeconds: 86_400,
} as const;

/** Per-operation counts the bench measured (see bench/run.ts for where each comes from). */
export interface MeasuredCounts {
  /** One scheduled refresh (refresher path): requests, units with the index, log bytes. */
  readonly scheduledRefresh: {
    readonly writes: number;
    readonly reads: number;
    readonly writeUnits: number;
    readonly readUnits: number;
    readonly logBytes: number;
  };
  /** Index read units per user returned by the `due` queries, and per query at least. */
  readonly indexReadUnitsPerDueUser: number;
  /** Log bytes of one refresher run beyond its refreshes (the metric line). */
  readonly logBytesPerRun: number;
  /** A read of a fresh token through the reader. */
  readonly freshRead: { readonly readUnits: number };
  /** A read of an expired token through the reader and the refresh function (remote path). */
  readonly expiredRead: {
    readonly reads: number;
    readonly writes: number;
    readonly readUnits: number;
    readonly writeUnits: number;
    /** Of the requests, those the refresh function sends (the rest are the reader's). */
    readonly functionRequests: number;
    readonly refreshLogBytes: number;
  };
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

/** A refresh policy's model: counts and its parameters -> monthly operations. */
export type PolicyModel = (measured: MeasuredCounts, users: number) => MonthlyOperations;

const month = () => ASSUMPTIONS.monthHours * 3600;
const runsPerMonth = () => month() / ASSUMPTIONS.scheduleSeconds;
/** The time one scheduled refresh keeps a lane of the refresher busy, seconds. */
const laneSeconds = (m: MeasuredCounts) =>
  (ASSUMPTIONS.providerCallMs + (m.scheduledRefresh.writes + m.scheduledRefresh.reads) * ASSUMPTIONS.dynamoRequestMs) /
  1000;

/**
 * Today's refresher run costs: index queries every run, plus `refreshes` scheduled refreshes spread
 * over the runs, `refreshes` per month.
 */
function scheduledCost(m: MeasuredCounts, users: number, refreshes: number) {
  const runs = runsPerMonth();
  const perRun = refreshes / runs;
  // DynamoDB bills at least 0.5 RRU per query (eventually consistent, as index queries are).
  const indexUnits = runs * Math.max(REFRESH_SHARDS * 0.5, perRun * m.indexReadUnitsPerDueUser);
  const runSeconds =
    (ASSUMPTIONS.refresherRunOverheadMs + REFRESH_SHARDS * ASSUMPTIONS.dynamoRequestMs) / 1000 +
    (perRun * laneSeconds(m)) / ASSUMPTIONS.refresherConcurrency;
  const capacity = (ASSUMPTIONS.refresherBudgetSeconds * ASSUMPTIONS.refresherConcurrency) / laneSeconds(m);
  return {
    refreshes,
    readUnits: indexUnits + refreshes * m.scheduledRefresh.readUnits,
    writeUnits: refreshes * m.scheduledRefresh.writeUnits,
    runs,
    gbSeconds: runs * runSeconds * ASSUMPTIONS.refresherMemoryGb,
    logBytes:
      runs * (m.logBytesPerRun + ASSUMPTIONS.platformLogBytesPerInvocation) + refreshes * m.scheduledRefresh.logBytes,
    overCapacity:
      perRun > capacity
        ? `${int(perRun)} refreshes per run, a run can do about ${int(capacity)} (${ASSUMPTIONS.refresherConcurrency} lanes × ${ASSUMPTIONS.refresherBudgetSeconds} s at ${Math.round(laneSeconds(m) * 1000)} ms each): raise REFRESH_CONCURRENCY or the rest expires and is refreshed on read`
        : undefined,
  };
}

/** KMS and Secrets Manager calls: per principal / per container at most every 5 minutes of activity. */
const perFiveMinutes = (callers: number) => callers * runsPerMonth();

function total(
  users: number,
  m: MeasuredCounts,
  parts: {
    providerCalls: number;
    readUnits: number;
    writeUnits: number;
    invocations: number;
    gbSeconds: number;
    scheduleInvocations: number;
    logBytes: number;
    secretCallers: number;
    overCapacity?: string;
  },
): MonthlyOperations {
  const storageGb = (users * m.itemBytes) / 1e9;
  return {
    users,
    providerCalls: parts.providerCalls,
    dynamoReadUnits: parts.readUnits,
    dynamoWriteUnits: parts.writeUnits,
    invocations: parts.invocations,
    gbSeconds: parts.gbSeconds,
    kmsRequests: perFiveMinutes(ASSUMPTIONS.kmsPrincipals),
    secretRequests: perFiveMinutes(parts.secretCallers),
    scheduleInvocations: parts.scheduleInvocations,
    // Events are published on changes of state only (connected, reauth_required, ...): none in a steady month.
    events: 0,
    logBytes: parts.logBytes,
    storageGb,
    overCapacity: parts.overCapacity,
  };
}

/**
 * `eager` (today): every active user refreshed by the schedule before the token expires, whether
 * anyone reads it or not; reads find a fresh token (one read each).
 */
export const eagerPolicy: PolicyModel = (m, users) => {
  // Due when the token is within the window of expiry; picked up by the next run: on average half a
  // period later. With the defaults: every 1,350 s (22.5 minutes).
  const period = ASSUMPTIONS.tokenLifetimeSeconds - ASSUMPTIONS.windowSeconds + ASSUMPTIONS.scheduleSeconds / 2;
  const refreshes = (users * month()) / period;
  const scheduled = scheduledCost(m, users, refreshes);
  const reads = (users * ASSUMPTIONS.readsPerUserPerDay * month()) / 86_400;
  return total(users, m, {
    providerCalls: refreshes,
    readUnits: scheduled.readUnits + reads * m.freshRead.readUnits,
    writeUnits: scheduled.writeUnits,
    invocations: scheduled.runs,
    gbSeconds: scheduled.gbSeconds,
    scheduleInvocations: scheduled.runs,
    logBytes: scheduled.logBytes,
    secretCallers: 1,
    overCapacity: scheduled.overCapacity,
  });
};

/**
 * `on-read` (projection, not built): a session's first read finds the token expired and refreshes it
 * through the refresh function (the remote path, as measured); the other reads find it fresh; the
 * schedule refreshes grants idle for {@link ON_READ_PARAMETERS.keepAliveSeconds}.
 */
export const onReadPolicy: PolicyModel = (m, users) => {
  const p = ON_READ_PARAMETERS;
  const days = month() / 86_400;
  const sessions = users * p.sessionsPerUserPerDay * days;
  const reads = users * ASSUMPTIONS.readsPerUserPerDay * days;
  // Keep-alive: only grants not refreshed by a read within the interval; with daily sessions, none.
  const idleShare = p.sessionsPerUserPerDay * (p.keepAliveSeconds / 86_400) >= 1 ? 0 : 1;
  const keepAlive = (users * idleShare * month()) / p.keepAliveSeconds;
  const scheduled = scheduledCost(m, users, keepAlive);
  const refreshSeconds =
    (ASSUMPTIONS.providerCallMs + m.expiredRead.functionRequests * ASSUMPTIONS.dynamoRequestMs) / 1000;
  return total(users, m, {
    providerCalls: sessions + keepAlive,
    readUnits: scheduled.readUnits + (reads - sessions) * m.freshRead.readUnits + sessions * m.expiredRead.readUnits,
    writeUnits: scheduled.writeUnits + sessions * m.expiredRead.writeUnits,
    invocations: scheduled.runs + sessions,
    gbSeconds: scheduled.gbSeconds + sessions * refreshSeconds * ASSUMPTIONS.refreshFunctionMemoryGb,
    scheduleInvocations: scheduled.runs,
    logBytes:
      scheduled.logBytes + sessions * (m.expiredRead.refreshLogBytes + ASSUMPTIONS.platformLogBytesPerInvocation),
    secretCallers: 2,
    overCapacity: scheduled.overCapacity,
  });
};

/** The policies priced, in order. */
export const POLICIES: Array<{ name: string; model: PolicyModel; note: string }> = [
  { name: 'eager', model: eagerPolicy, note: "today's broker" },
  { name: 'on-read', model: onReadPolicy, note: 'projection: not built yet; its parameters are assumptions' },
];

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
  readonly onReadParameters: typeof ON_READ_PARAMETERS;
  readonly measured: MeasuredCounts;
  readonly rows: Array<{ policy: string; note: string; ops: MonthlyOperations; cost: MonthlyCost }>;
}

/** Runs every policy for every number of users. */
export function costModel(measured: MeasuredCounts, users: readonly number[]): CostResult {
  return {
    prices: PRICES,
    assumptions: ASSUMPTIONS,
    onReadParameters: ON_READ_PARAMETERS,
    measured,
    rows: POLICIES.flatMap(({ name, model, note }) =>
      users.map((u) => {
        const ops = model(measured, u);
        return { policy: name, note, ops, cost: price(ops) };
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
  const lines = [
    `### Cost per month, by refresh policy (us-east-1 list prices of ${result.prices.date})`,
    '',
    `Read pattern: every connected user's token is read ${a.readsPerUserPerDay} times a day through the reader; logins are left out ` +
      `(once per user). Measured here: a scheduled refresh sends ${m.scheduledRefresh.writes} writes and ${m.scheduledRefresh.reads} reads ` +
      `(floor: 2 writes, take the lease and save the pair) for ${m.scheduledRefresh.writeUnits} WCU with the \`due\` index, and logs ` +
      `${m.scheduledRefresh.logBytes} bytes; a fresh read is ${m.freshRead.readUnits} RCU; an expired read through the refresh function ` +
      `${m.expiredRead.reads} reads and ${m.expiredRead.writes} writes (${m.expiredRead.readUnits} RCU, ${m.expiredRead.writeUnits} WCU); ` +
      `an item is ${m.itemBytes} bytes. Assumed (not measurable here): a Kroger token call ${a.providerCallMs} ms, a DynamoDB request ` +
      `${a.dynamoRequestMs} ms in AWS, ${a.platformLogBytesPerInvocation} bytes of Lambda platform log per invocation; all in \`bench/cost-model.ts\`.`,
  ];
  for (const policy of POLICIES) {
    const rows = result.rows.filter((r) => r.policy === policy.name);
    lines.push(
      '',
      `**${policy.name}** (${policy.note}):`,
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
      lines.push('', `${int(row.ops.users)} users, ${policy.name}: **over capacity**: ${row.ops.overCapacity}.`);
    }
  }
  lines.push(
    '',
    `on-read parameters (assumed): ${ON_READ_PARAMETERS.sessionsPerUserPerDay} reading sessions per user a day, each starting on an ` +
      `expired token; keep-alive every ${ON_READ_PARAMETERS.keepAliveSeconds / 3600} h for idle grants. Kroger's rate limits on its token ` +
      'endpoint are not published here; the token-call column is what they must allow.',
  );
  return lines.join('\n');
}
