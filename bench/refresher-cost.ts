/**
 * Section 3, refresher cost: DynamoDB read units one scheduled refresh cycle consumes with 1,000,
 * 10,000 and 100,000 stored users of which 1% are due. The provider is a stub that answers at once:
 * this measures the table reads, not Kroger. For contrast, what one full Scan of the same table
 * costs, which is what a refresher that scans would pay on every run.
 */
import { randomBytes } from 'node:crypto';
import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ScanCommand,
  type AttributeValue,
  UpdateItemCommand,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { readStoreConfig } from '../functions/core/config';
import type { TokenSet } from '../functions/core/tokens';
import { REFRESH_SHARDS, TOKENS_TABLE } from '../functions/core/schema';
import { createDynamoClient } from '../functions/adapters/dynamo';
import { logEventPublisher } from '../functions/adapters/events';
import { createFieldCipher } from '../functions/adapters/field-cipher';
import { localKeyProvider } from '../functions/adapters/local-key';
import { createLogger } from '../functions/adapters/logger';
import { tableDefinition } from '../functions/adapters/tables';
import { DynamoTokenStore } from '../functions/adapters/token-store';
import { createTokenRefresher } from '../functions/flows/single-flight-refresh';
import { runRefreshSweep } from '../functions/flows/refresh-sweep';
import { seededItem } from '../test/support/seed';
import { benchAdminClient, DynamoCounter, forgetResolvedMiddleware } from './instrument';
import { int, num, progress, round, table } from './stats';

/** One table size. */
export interface RefresherSizeResult {
  readonly users: number;
  readonly due: number;
  readonly seedSeconds: number;
  /** `report.readUnits` of the cycle: index queries plus item reads. */
  readonly readUnits: number;
  /** Of which the `due` index queries. */
  readonly indexReadUnits: number;
  readonly indexQueries: number;
  /** Of which the item reads (a strongly consistent GetItem per due user). */
  readonly itemReadUnits: number;
  readonly itemReads: number;
  /** User ids the index queries returned (`report.due`). */
  readonly itemsReturned: number;
  readonly refreshed: number;
  readonly readUnitsPerDueUser: number;
  readonly cycleSeconds: number;
  /** A second cycle right after, when nobody is due any more. */
  readonly idleCycleReadUnits: number;
  /** A third cycle with exactly {@link FIXED_DUE} users made due: the same work at every table size. */
  readonly fixedDueCycleReadUnits: number;
  /** One full Scan of the table (all pages), as a scanning refresher would pay per run. */
  readonly scanReadUnits: number;
  readonly scanPages: number;
  /**
   * One scheduled refresh, measured on the fixed-due cycle (ConsumedCapacity asked for): DynamoDB
   * requests and write units (table and the `due` index), and log bytes, per refreshed user.
   */
  readonly perRefresh: {
    readonly writes: number;
    readonly reads: number;
    readonly writeUnits: number;
    readonly indexWriteUnits: number;
    readonly logBytes: number;
  };
  /** Log bytes of a run with nobody due (the run's metric line). */
  readonly logBytesPerRun: number;
  /** Stored bytes per item (the table's size over its items, from DescribeTable). */
  readonly itemBytes?: number;
}

/** Everything section 3 measured. */
export interface RefresherCostResult {
  readonly dueFraction: number;
  readonly shards: number;
  readonly sizes: RefresherSizeResult[];
  /** Sizes not measured, and why. */
  readonly skipped: Array<{ users: number; reason: string }>;
  /** Whether DynamoDB Local returned ConsumedCapacity for the cycle's Query and GetItem calls. */
  readonly consumedCapacityReported: boolean;
}

const SEED_WORKERS = 8;
/** Users made due for the fixed-work cycle, at every table size. */
export const FIXED_DUE = 10;
const BATCH = 25;

/**
 * Runs the section against the DynamoDB Local at `dynamoEndpoint`, one fresh tokens table per size.
 * A size whose estimated seeding time (from the rate measured so far) exceeds `seedBudgetSeconds`
 * is skipped and reported as such.
 */
export async function measureRefresherCost(
  dynamoEndpoint: string,
  options: { sizes: number[]; dueFraction: number; seedBudgetSeconds: number },
): Promise<RefresherCostResult> {
  const suffix = randomBytes(4).toString('hex');
  // The broker's own client for the refresh cycles, the bench's for its table work.
  const client = createDynamoClient(
    readStoreConfig({ DYNAMODB_ENDPOINT: dynamoEndpoint, TOKENS_TABLE: 'unused', SESSIONS_TABLE: 'unused' }),
  );
  const admin = benchAdminClient(dynamoEndpoint);
  const sizes: RefresherSizeResult[] = [];
  const skipped: RefresherCostResult['skipped'] = [];
  let itemsPerSecond: number | undefined;
  try {
    for (const users of options.sizes) {
      const estimate = itemsPerSecond ? users / itemsPerSecond : 0;
      if (estimate > options.seedBudgetSeconds) {
        const reason = `seeding would take about ${Math.round(estimate)} s at the ${Math.round(itemsPerSecond!)} items/s measured, over the ${options.seedBudgetSeconds} s budget`;
        progress(`refresher: skipping ${int(users)} users: ${reason}`);
        skipped.push({ users, reason });
        continue;
      }
      const tableName = `bench-refresher-${users}-${suffix}`;
      await admin.send(new CreateTableCommand(tableDefinition(tableName, TOKENS_TABLE)));
      try {
        const due = Math.round(users * options.dueFraction);
        const seedStarted = performance.now();
        await seed(admin, tableName, users, due);
        const seedSeconds = (performance.now() - seedStarted) / 1000;
        itemsPerSecond = users / seedSeconds;
        sizes.push({
          ...(await measureSize(client, admin, tableName, users, due)),
          seedSeconds: round(seedSeconds, 1),
        });
      } finally {
        // Free DynamoDB Local's memory before the next (larger) table.
        await admin.send(new DeleteTableCommand({ TableName: tableName }));
      }
    }
  } finally {
    client.destroy();
    admin.destroy();
  }
  return {
    dueFraction: options.dueFraction,
    shards: REFRESH_SHARDS,
    sizes,
    skipped,
    // Item reads may rightly be 0 (the refresher takes the lease, which returns the item, instead of
    // reading it first), so only the index queries tell whether DynamoDB Local reports capacity.
    consumedCapacityReported: sizes.some((s) => s.indexReadUnits > 0),
  };
}

/**
 * Writes `users` token items: every (users/due)-th one due (token expired, scheduled in the past),
 * the rest fresh for two hours, as a login would have stored them (`seededItem`, shared with the
 * tests). BatchWriteItem, 25 items a request, several at once.
 */
async function seed(client: DynamoDBClient, tableName: string, users: number, due: number): Promise<void> {
  const t = Math.floor(Date.now() / 1000);
  const every = due > 0 ? Math.floor(users / due) : Number.POSITIVE_INFINITY;
  const item = (i: number): Record<string, AttributeValue> => {
    const userId = `user-${String(i).padStart(6, '0')}`;
    const isDue = i % every === 0 && i / every < due;
    const issuedAt = isDue ? t - 1860 : t;
    const expiresAt = isDue ? t - 60 : t + 7200;
    return seededItem(userId, { issuedAt, expiresAt }, `fake-${randomBytes(18).toString('base64url')}`);
  };

  let next = 0;
  let written = 0;
  let lastReport = performance.now();
  const worker = async () => {
    while (next < users) {
      const start = next;
      const end = Math.min(users, start + BATCH);
      next = end;
      let requests: WriteRequest[] = [];
      for (let i = start; i < end; i++) requests.push({ PutRequest: { Item: item(i) } });
      // DynamoDB may hand some items back unprocessed under load: resend them until none is left.
      for (let attempt = 0; requests.length > 0; attempt++) {
        if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * 2 ** attempt)));
        const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: requests } }));
        requests = out.UnprocessedItems?.[tableName] ?? [];
      }
      written += end - start;
      if (performance.now() - lastReport > 5000) {
        lastReport = performance.now();
        progress(
          `refresher: seeding ${int(users)} users: ${int(written)} written (${Math.round((100 * written) / users)}%)`,
        );
      }
    }
  };
  progress(`refresher: seeding ${int(users)} users (${int(due)} due)...`);
  await Promise.all(Array.from({ length: SEED_WORKERS }, worker));
}

/** One refresh cycle over the seeded table, an idle cycle right after it, and one full Scan. */
async function measureSize(
  client: DynamoDBClient,
  admin: DynamoDBClient,
  tableName: string,
  users: number,
  due: number,
): Promise<Omit<RefresherSizeResult, 'seedSeconds'>> {
  // Lines are formatted as in production and counted, not written.
  const logged = { bytes: 0 };
  const logger = createLogger({ write: (line) => void (logged.bytes += Buffer.byteLength(line) + 1) });
  // Field encryption as in production, under a throwaway local key (KMS calls: bench/kms-calls.ts).
  const store = new DynamoTokenStore(client, tableName, createFieldCipher(localKeyProvider(randomBytes(32))));
  // Split the store's read units into index queries and item reads, by wrapping the two calls.
  const counts = { indexUnits: 0, queries: 0, itemReads: 0 };
  const tokens = Object.create(store) as DynamoTokenStore;
  tokens.queryDue = async (...args) => {
    const page = await store.queryDue(...args);
    counts.indexUnits += page.readUnits;
    counts.queries++;
    return page;
  };
  tokens.get = async (userId) => {
    counts.itemReads++;
    return store.get(userId);
  };
  // The provider stands in as a stub: a new token set at once, valid for 30 minutes.
  let issued = 0;
  const refresher = createTokenRefresher({
    tokens,
    client: {
      refresh: async ({ scope }): Promise<TokenSet> => ({
        accessToken: `bench-access-${++issued}`,
        refreshToken: `bench-refresh-${issued}`,
        tokenType: 'bearer',
        scope,
        expiresAt: Math.floor(Date.now() / 1000) + 1800,
      }),
    },
    events: logEventPublisher(logger),
    logger,
  });

  progress(`refresher: refresh cycle over ${int(users)} users...`);
  const started = performance.now();
  const report = await runRefreshSweep({ tokens, refresher, logger });
  const cycleSeconds = (performance.now() - started) / 1000;
  const cycle = { ...counts };
  if (report.refreshed !== due || report.failed > 0) {
    throw new Error(`expected ${due} users refreshed, got ${JSON.stringify(report)}`);
  }
  const idleLogStart = logged.bytes;
  const idle = await runRefreshSweep({ tokens, refresher, logger });
  const logBytesPerRun = logged.bytes - idleLogStart;

  // The same number of due users at every size: if the cycle is flat in the number of users, this
  // costs the same on 1,000 as on 100,000.
  const past = String(Math.floor(Date.now() / 1000) - 60);
  for (let k = 0; k < FIXED_DUE; k++) {
    const userId = `user-${String(k * Math.floor(users / FIXED_DUE) + 1).padStart(6, '0')}`;
    await client.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: { userId: { S: userId } },
        UpdateExpression: 'SET expiresAt = :past, nextRefreshAt = :past',
        ExpressionAttributeValues: { ':past': { N: past } },
      }),
    );
  }
  // The requests of this cycle are counted with their capacity: what one refresh writes.
  const counter = new DynamoCounter();
  counter.attach(client, 'refresher');
  counter.askCapacity = true;
  const fixedLogStart = logged.bytes;
  const fixed = await runRefreshSweep({ tokens, refresher, logger });
  const fixedLogBytes = logged.bytes - fixedLogStart - logBytesPerRun;
  client.middlewareStack.remove('bench-counter-refresher');
  forgetResolvedMiddleware(client);
  const items = counter.requests.filter((r) => r.command !== 'QueryCommand');
  const perRefresh = {
    writes: round(items.filter((r) => r.writeUnits !== undefined || !r.ok).length / FIXED_DUE, 2),
    reads: round(items.filter((r) => r.readUnits !== undefined).length / FIXED_DUE, 2),
    writeUnits: round(items.reduce((sum, r) => sum + (r.writeUnits ?? 0), 0) / FIXED_DUE, 2),
    indexWriteUnits: round(items.reduce((sum, r) => sum + (r.indexUnits ?? 0), 0) / FIXED_DUE, 2),
    logBytes: Math.round(fixedLogBytes / FIXED_DUE),
  };
  if (fixed.refreshed !== FIXED_DUE)
    throw new Error(`expected ${FIXED_DUE} users refreshed, got ${JSON.stringify(fixed)}`);

  progress(`refresher: full Scan of ${int(users)} users for contrast...`);
  let scanReadUnits = 0;
  let scanPages = 0;
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    // COUNT: the same read units as returning the items (DynamoDB reads them either way), less to ship.
    const page = await admin.send(
      new ScanCommand({
        TableName: tableName,
        Select: 'COUNT',
        ExclusiveStartKey: startKey,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    scanReadUnits += page.ConsumedCapacity?.CapacityUnits ?? 0;
    if (++scanPages % 10 === 0) progress(`refresher: Scan page ${scanPages} (${int(scanReadUnits)} RCU so far)`);
    startKey = page.LastEvaluatedKey;
  } while (startKey);

  return {
    users,
    due,
    readUnits: report.readUnits,
    indexReadUnits: cycle.indexUnits,
    indexQueries: cycle.queries,
    itemReadUnits: round(report.readUnits - cycle.indexUnits, 1),
    itemReads: cycle.itemReads,
    itemsReturned: report.due,
    refreshed: report.refreshed,
    readUnitsPerDueUser: round(report.readUnits / Math.max(1, report.due), 3),
    cycleSeconds: round(cycleSeconds, 2),
    idleCycleReadUnits: idle.readUnits,
    fixedDueCycleReadUnits: fixed.readUnits,
    scanReadUnits,
    scanPages,
    perRefresh,
    logBytesPerRun,
    itemBytes: await itemBytes(admin, tableName),
  };
}

/** Average stored item size from DescribeTable (DynamoDB Local keeps it current). */
async function itemBytes(client: DynamoDBClient, tableName: string): Promise<number | undefined> {
  const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
  return Table?.ItemCount ? Math.round((Table.TableSizeBytes ?? 0) / Table.ItemCount) : undefined;
}

/** The section as markdown. */
export function refresherMarkdown(result: RefresherCostResult): string {
  const lines = [
    '### Refresher cost: DynamoDB read units per refresh cycle',
    '',
    `${Math.round(result.dueFraction * 100)}% of the users due; the provider is an instant stub. ` +
      `Read units are DynamoDB Local's ConsumedCapacity (RCU) for the cycle's ${result.shards} index queries and its item reads. Goal: flat in the number of users.`,
    '',
    table(
      [
        'users',
        'due',
        'items returned',
        'index RCU (queries)',
        'item RCU (reads)',
        'cycle RCU',
        'RCU per due user',
        'idle cycle RCU',
        `cycle RCU, ${FIXED_DUE} due`,
        'one full Scan RCU',
        'Scan / cycle',
      ],
      result.sizes.map((s) => [
        int(s.users),
        int(s.due),
        int(s.itemsReturned),
        `${num(s.indexReadUnits)} (${s.indexQueries})`,
        `${num(s.itemReadUnits)} (${int(s.itemReads)})`,
        num(s.readUnits),
        s.readUnitsPerDueUser.toFixed(2),
        s.idleCycleReadUnits,
        s.fixedDueCycleReadUnits,
        int(s.scanReadUnits),
        `${(s.scanReadUnits / Math.max(s.readUnits, 0.5)).toFixed(0)}x`,
      ]),
    ),
  ];
  lines.push(
    '',
    `"idle cycle" runs right after, when nobody is due; "${FIXED_DUE} due" makes exactly ${FIXED_DUE} users due at every size. ` +
      'DynamoDB Local reports 0 RCU for an index query that matches nothing; the service may charge a minimum per query ' +
      `(at most ${result.shards} × 0.5 RCU per cycle). A Scan reads every item at 0.5 RCU per 4 KB.`,
  );
  const last = result.sizes[result.sizes.length - 1];
  if (last) {
    const p = last.perRefresh;
    lines.push(
      '',
      `**Writes per refresh**: ${p.writes} (floor: 2, take the lease and save the pair), ${p.reads} item reads; ` +
        `${p.writeUnits} WCU per refresh, of which ${p.indexWriteUnits} on the \`due\` index (saving moves the user in it: ` +
        `a delete and a put); ${p.logBytes} log bytes per refresh and ${last.logBytesPerRun} per run. ` +
        `Measured on the "${FIXED_DUE} due" cycle of ${int(last.users)} users with ConsumedCapacity; an item is ${last.itemBytes ?? '?'} bytes ` +
        "(seeded tokens are short; Kroger's longer access tokens make the item, and each write, larger).",
    );
  }
  for (const skip of result.skipped) lines.push('', `Not measured: ${int(skip.users)} users (${skip.reason}).`);
  if (!result.consumedCapacityReported) {
    lines.push(
      '',
      '**DynamoDB Local did not report ConsumedCapacity for Query**: the read units above are incomplete.',
    );
  }
  return lines.join('\n');
}
