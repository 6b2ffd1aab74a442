/**
 * What each refresh policy really does with a stated read pattern: a simulated day (or more) of the
 * broker's own code on a clock of its own, against DynamoDB Local. The scheduled sweep runs every
 * 5 minutes (`runRefreshSweep` with the policy's refresher), and readers read as the pattern says
 * through the production reader's path (read; when the token is too close to expiry, the refresh
 * function's `handleRefreshRequest`; read again). The provider is an instant stub that counts its
 * calls and takes 300 ms of the simulation's clock; every DynamoDB request is counted by kind with
 * its consumed capacity, and every log line
 * the refresher and the refresh function write is measured. The cost model (bench/cost-model.ts)
 * multiplies these per-user-per-day counts out.
 *
 * Users start in their policy's steady state: under `eager` each token was issued within the last
 * refresh period; under `on-read` an active user's last tokens are from their last session (within
 * the last day) and a dormant user's from within the last keep-alive interval, so a simulated day
 * sees the share of keep-alive refreshes a real day would.
 */
import { randomBytes } from 'node:crypto';
import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteTableCommand,
  type DynamoDBClient,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { readStoreConfig } from '../functions/core/config';
import { capMarginSeconds } from '../functions/core/refresh-protocol';
import { REFRESH_POLICY_SETTINGS, REFRESHER_SETTINGS, TOKENS_TABLE } from '../functions/core/schema';
import { DEFAULT_MARGIN_SECONDS, isFresh, type RefreshPolicy, type TokenSet } from '../functions/core/tokens';
import { createDynamoClient } from '../functions/adapters/dynamo';
import { logEventPublisher } from '../functions/adapters/events';
import { createLogger } from '../functions/adapters/logger';
import { createFieldCipher } from '../functions/adapters/field-cipher';
import { localKeyProvider } from '../functions/adapters/local-key';
import { tableDefinition } from '../functions/adapters/tables';
import { DynamoTokenStore } from '../functions/adapters/token-store';
import { handleRefreshRequest } from '../functions/flows/refresh-function-flow';
import { runRefreshSweep } from '../functions/flows/refresh-sweep';
import { createTokenRefresher } from '../functions/flows/single-flight-refresh';
import { seededRandom } from '../test/support/random';
import { seededItem } from '../test/support/seed';
import { benchAdminClient, DynamoCounter, type DynamoRequest } from './instrument';
import { int, progress, round, table } from './stats';

/** The read pattern the policies are compared on. */
export const READ_PATTERN = {
  /** Share of connected users who use the app on a given day; the others read nothing. */
  activeShare: 0.7,
  /** Sessions per active user a day, each starting at a random time. */
  sessionsPerDay: 2,
  /** Reads of the user's token in a session, one every `readEverySeconds`. */
  readsPerSession: 6,
  readEverySeconds: 300,
} as const;

/** The scheduled refresher's period the simulation runs it at (the construct's default). */
const SWEEP_SECONDS = 300;
/** Kroger's access token lifetime. */
const TOKEN_SECONDS = 1800;
/** How long a token call takes on the simulation's clock (as `providerCallMs` in the cost model). */
const PROVIDER_MS = 300;

/** Counts of one policy, per connected user per day unless named otherwise. */
export interface PolicyCounts {
  readonly policy: RefreshPolicy;
  readonly users: number;
  readonly days: number;
  readonly perUserDay: {
    readonly reads: number;
    /** Reads that found the token too close to expiry and invoked the refresh function. */
    readonly staleReads: number;
    readonly providerCalls: number;
    /** Refreshes made by the scheduled sweep (under on-read: keep-alives). */
    readonly sweepRefreshes: number;
    /** Refreshes made by the refresh function for a reader. */
    readonly readRefreshes: number;
    /** DynamoDB item requests (the `due` index queries apart), by who sent them and what they did. */
    readonly requests: Record<string, number>;
    /** Read and write units of those requests (with the index's share of writes). */
    readonly readUnits: number;
    readonly writeUnits: number;
    /** Log bytes the refresh function and the refresher write for refreshes and reads. */
    readonly logBytes: number;
  };
  /** Sweep runs simulated, and their index queries' read units per run (mean). */
  readonly sweepRuns: number;
  readonly indexReadUnitsPerRun: number;
  /** Log bytes of a sweep run itself (its metric line). */
  readonly logBytesPerRun: number;
  /** Item writes per refresh: by the sweep, and for a reader (the floor is 2: the lease, the pair). */
  readonly writesPerRefresh: { readonly sweep: number; readonly read: number };
}

/** Everything the section measured. */
export interface PolicySimResult {
  readonly pattern: typeof READ_PATTERN;
  readonly policies: PolicyCounts[];
}

/** What a request did, for the counts: the command, and for an UpdateItem which write it was. */
function kindOf(r: DynamoRequest): string {
  const command = r.command.replace(/Command$/, '');
  if (command !== 'UpdateItem') return command;
  if (/#leaseOwner = :leaseOwner/.test(r.update ?? '')) return 'UpdateItem (take the lease)';
  if (/^REMOVE #leaseOwner, #leaseUntil$/.test(r.update ?? '')) return 'UpdateItem (release the lease)';
  if (/#accessToken/.test(r.update ?? '')) return 'UpdateItem (save the tokens)';
  return 'UpdateItem (record a failure)';
}

/**
 * Simulates `days` days of `users` users under `policy` on the DynamoDB Local at `endpoint`, in a
 * table of its own (deleted afterwards).
 */
async function simulate(
  endpoint: string,
  policy: RefreshPolicy,
  options: { users: number; days: number },
): Promise<PolicyCounts> {
  const client: DynamoDBClient = createDynamoClient(
    readStoreConfig({ DYNAMODB_ENDPOINT: endpoint, TOKENS_TABLE: 'unused', SESSIONS_TABLE: 'unused' }),
  );
  const admin = benchAdminClient(endpoint);
  const tableName = `bench-policy-${policy.name}-${randomBytes(4).toString('hex')}`;
  await admin.send(new CreateTableCommand(tableDefinition(tableName, TOKENS_TABLE)));
  try {
    const rand = seededRandom(policy.name === 'eager' ? 1 : 2);
    const start = Math.floor(Date.now() / 1000);
    let clock = start * 1000;
    const nowMs = () => clock;
    const seconds = () => Math.floor(clock / 1000);

    // Steady state at the start (see the module documentation).
    const active = Math.round(options.users * READ_PATTERN.activeShare);
    const userIds = Array.from({ length: options.users }, (_, i) => `sim-${i}`);
    const requests: WriteRequest[] = userIds.map((userId, i) => {
      const age =
        policy.name === 'eager'
          ? rand() * (TOKEN_SECONDS - REFRESHER_SETTINGS.REFRESH_WINDOW_SECONDS.default)
          : i < active
            ? rand() * 86_400
            : rand() * policy.keepAliveSeconds;
      const issuedAt = Math.floor(start - age);
      return {
        PutRequest: { Item: seededItem(userId, { issuedAt, expiresAt: issuedAt + TOKEN_SECONDS }, 'sim', policy) },
      };
    });
    for (let i = 0; i < requests.length; i += 25) {
      let batch = requests.slice(i, i + 25);
      while (batch.length > 0) {
        const out = await admin.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: batch } }));
        batch = out.UnprocessedItems?.[tableName] ?? [];
      }
    }

    // The broker: its store, a refresher for the sweep and one for the refresh function, the stub.
    const logBytes = { refresher: 0, function: 0 };
    const logger = (to: keyof typeof logBytes) =>
      createLogger({ write: (line) => void (logBytes[to] += Buffer.byteLength(line) + 1), now: () => new Date(clock) });
    // Refresh tokens sealed as in the broker, under a throwaway local key.
    const tokens = new DynamoTokenStore(client, tableName, createFieldCipher(localKeyProvider(randomBytes(32))));
    let providerCalls = 0;
    const provider = {
      refresh: async ({ scope }: { scope: string }): Promise<TokenSet> => {
        providerCalls++;
        // Kroger's answer takes time on the simulation's clock too: a refresh late in a run saves
        // its tokens a second or more after the run began, which decides when it is next due.
        clock += PROVIDER_MS;
        return {
          accessToken: `sim-access-${providerCalls}`,
          refreshToken: `sim-refresh-${providerCalls}`,
          tokenType: 'bearer',
          scope,
          expiresAt: seconds() + TOKEN_SECONDS,
        };
      },
    };
    const refresher = (to: keyof typeof logBytes) =>
      createTokenRefresher({
        tokens,
        client: provider,
        events: logEventPublisher(logger(to)),
        logger: logger(to),
        nowMs,
        policy,
      });
    const sweepRefresher = refresher('refresher');
    const sweepLogger = logger('refresher');
    const functionDeps = { refresher: refresher('function'), logger: logger('function') };

    const counter = new DynamoCounter();
    counter.attach(client, 'sim');
    counter.askCapacity = true;

    // The day's events in time order: sweeps every 5 minutes, the readers' sessions.
    type SimEvent = { at: number; kind: 'sweep' } | { at: number; kind: 'read'; userId: string };
    const events: SimEvent[] = [];
    const end = start + options.days * 86_400;
    for (let t = start; t < end; t += SWEEP_SECONDS) events.push({ at: t, kind: 'sweep' });
    for (let day = 0; day < options.days; day++) {
      for (const userId of userIds.slice(0, active)) {
        for (let s = 0; s < READ_PATTERN.sessionsPerDay; s++) {
          const sessionStart = start + day * 86_400 + Math.floor(rand() * 86_400);
          for (let r = 0; r < READ_PATTERN.readsPerSession; r++) {
            events.push({ at: sessionStart + r * READ_PATTERN.readEverySeconds, kind: 'read', userId });
          }
        }
      }
    }
    events.sort((a, b) => a.at - b.at);

    let reads = 0;
    let staleReads = 0;
    let sweepRuns = 0;
    let indexReadUnits = 0;
    let runLogBytes = 0;
    let sweepRefreshes = 0;
    const byRefresh = { sweep: [] as number[], read: [] as number[] };
    let lastReport = performance.now();
    for (const [n, event] of events.entries()) {
      // A scheduled run starts somewhere within its second (EventBridge and Lambda start-up).
      clock = event.at * 1000 + (event.kind === 'sweep' ? Math.floor(rand() * 1000) : 0);
      if (event.kind === 'sweep') {
        counter.tag = 'refresher';
        const mark = counter.mark;
        const before = logBytes.refresher;
        const report = await runRefreshSweep({ tokens, refresher: sweepRefresher, logger: sweepLogger, nowMs });
        sweepRuns++;
        indexReadUnits += report.readUnits;
        sweepRefreshes += report.refreshed;
        if (report.refreshed === 0) runLogBytes = logBytes.refresher - before;
        if (report.refreshed > 0) {
          const writes = counter.since(mark).filter((r) => r.command === 'UpdateItemCommand').length;
          byRefresh.sweep.push(writes / report.refreshed);
        }
      } else {
        // The production reader's path (functions/reader/remote.ts) on the simulation's clock.
        reads++;
        counter.tag = 'reader';
        const record = await tokens.getForReader(event.userId);
        if (!record) throw new Error(`simulation: no item for ${event.userId}`);
        if (!isFresh(record, seconds(), capMarginSeconds(DEFAULT_MARGIN_SECONDS))) {
          staleReads++;
          counter.tag = 'refresh fn';
          const mark = counter.mark;
          const calls = providerCalls;
          const result = await handleRefreshRequest({ userId: event.userId }, functionDeps);
          if (!result.ok) throw new Error(`simulation: the refresh function answered ${JSON.stringify(result)}`);
          if (providerCalls > calls) {
            byRefresh.read.push(counter.since(mark).filter((r) => r.command === 'UpdateItemCommand').length);
          }
          counter.tag = 'reader';
          await tokens.getForReader(event.userId);
        }
      }
      if (performance.now() - lastReport > 10_000) {
        lastReport = performance.now();
        progress(`policies: ${policy.name}: ${int(n + 1)}/${int(events.length)} simulated events`);
      }
    }

    const perDay = (v: number) => round(v / (options.users * options.days), 4);
    const items = counter.requests.filter((r) => r.command !== 'QueryCommand');
    const requestsByKind: Record<string, number> = {};
    for (const r of items) {
      const key = `${r.tag}: ${kindOf(r)}${r.ok ? '' : ', refused'}`;
      requestsByKind[key] = (requestsByKind[key] ?? 0) + 1;
    }
    const leases = items.filter((r) => r.ok && kindOf(r) === 'UpdateItem (take the lease)');
    const refusedUnits = leases.length ? leases.reduce((s, r) => s + (r.writeUnits ?? 0), 0) / leases.length : 1;
    const mean = (list: number[]) => (list.length ? round(list.reduce((s, v) => s + v, 0) / list.length, 2) : 0);
    return {
      policy,
      users: options.users,
      days: options.days,
      perUserDay: {
        reads: perDay(reads),
        staleReads: perDay(staleReads),
        providerCalls: perDay(providerCalls),
        sweepRefreshes: perDay(sweepRefreshes),
        readRefreshes: perDay(providerCalls - sweepRefreshes),
        requests: Object.fromEntries(Object.entries(requestsByKind).map(([k, v]) => [k, perDay(v)])),
        readUnits: perDay(items.reduce((s, r) => s + (r.readUnits ?? 0), 0)),
        // A refused conditional write is billed too (by the size of the item); DynamoDB Local does not
        // say how much, so as much as a lease that was taken.
        writeUnits: perDay(items.reduce((s, r) => s + (r.writeUnits ?? (r.ok ? 0 : refusedUnits)), 0)),
        logBytes: perDay(logBytes.function + logBytes.refresher - runLogBytes * sweepRuns),
      },
      sweepRuns,
      indexReadUnitsPerRun: round(indexReadUnits / Math.max(1, sweepRuns), 3),
      logBytesPerRun: runLogBytes,
      writesPerRefresh: { sweep: mean(byRefresh.sweep), read: mean(byRefresh.read) },
    };
  } finally {
    await admin.send(new DeleteTableCommand({ TableName: tableName })).catch(() => undefined);
    client.destroy();
    admin.destroy();
  }
}

/**
 * Runs the section: `eager` and `on-read` (with the default keep-alive) over `days` simulated days,
 * `eager` with fewer users (every one of them is refreshed every 25 minutes, so a few tell as much).
 */
export async function measurePolicies(
  endpoint: string,
  options: { eagerUsers: number; onReadUsers: number; days: number },
): Promise<PolicySimResult> {
  const keepAliveSeconds = REFRESH_POLICY_SETTINGS.KEEP_ALIVE_SECONDS.default;
  const policies: PolicyCounts[] = [];
  for (const [policy, users] of [
    [{ name: 'eager', keepAliveSeconds }, options.eagerUsers],
    [{ name: 'on-read', keepAliveSeconds }, options.onReadUsers],
  ] as const) {
    progress(`policies: simulating ${options.days} day(s) of ${users} users under ${policy.name}...`);
    policies.push(await simulate(endpoint, policy, { users, days: options.days }));
  }
  return { pattern: READ_PATTERN, policies };
}

/** The section as markdown. */
export function policiesMarkdown(result: PolicySimResult): string {
  const p = result.pattern;
  const reads = p.activeShare * p.sessionsPerDay * p.readsPerSession;
  const fmt = (v: number) => (v >= 10 ? v.toFixed(1) : v.toFixed(3));
  return [
    '### Refresh policies: a simulated day of the broker code',
    '',
    `Read pattern: ${Math.round(p.activeShare * 100)}% of connected users use the app on a given day, in ${p.sessionsPerDay} sessions ` +
      `at random times of ${p.readsPerSession} reads ${p.readEverySeconds / 60} minutes apart (${fmt(reads)} reads per connected user a day); ` +
      'the others read nothing (under on-read they are kept alive every ' +
      `${result.policies[0].policy.keepAliveSeconds / 86_400} days). The sweep every ${SWEEP_SECONDS / 60} minutes, readers through the ` +
      "production reader's path and the refresh function's handler, all on the simulation's clock against DynamoDB Local; the provider " +
      'an instant stub. Per connected user per day:',
    '',
    table(
      [
        'policy',
        'users × days',
        'token calls',
        'by the sweep',
        'for a reader',
        'reads',
        'stale reads',
        'RRU',
        'WRU',
        'writes per refresh (sweep / read; floor 2)',
        'log bytes',
      ],
      result.policies.map((c) => [
        c.policy.name,
        `${c.users} × ${c.days}`,
        fmt(c.perUserDay.providerCalls),
        fmt(c.perUserDay.sweepRefreshes),
        fmt(c.perUserDay.readRefreshes),
        fmt(c.perUserDay.reads),
        fmt(c.perUserDay.staleReads),
        fmt(c.perUserDay.readUnits),
        fmt(c.perUserDay.writeUnits),
        `${c.writesPerRefresh.sweep || '–'} / ${c.writesPerRefresh.read || '–'}`,
        int(c.perUserDay.logBytes),
      ]),
    ),
    '',
    ...result.policies.flatMap((c) => [
      '',
      `${c.policy.name}: DynamoDB item requests per user a day: ${Object.entries(c.perUserDay.requests)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${fmt(v)} × ${k}`)
        .join(
          ', ',
        )}; ${c.sweepRuns} sweep runs, ${c.indexReadUnitsPerRun} index RRU per run (DynamoDB Local reports 0 for a query ` +
        'that finds nothing).',
    ]),
  ].join('\n');
}
