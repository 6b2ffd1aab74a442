/**
 * How much DynamoDB throttling the readers survive: 20 concurrent `tokens get` (5 users x 4 readers,
 * every access token expired, so each user needs exactly one refresh) through a seeded fault proxy in
 * front of DynamoDB Local that answers a share of all requests with DynamoDB's own
 * `ProvisionedThroughputExceededException` (test/support/fault-proxy.ts), the sandbox provider
 * counting every refresh it is asked for.
 *
 * Per share it counts the readers' exit codes (0 ok, 5 "try again", anything else is a bug), refresh
 * tokens presented twice (sandbox refreshes beyond one per user), users marked `reauth_required`, and
 * whether every user reads once the faults stop. Each reader is the real CLI (`runCli`) with its own
 * DynamoDB client, so its SDK retries and adaptive rate limiter start fresh as a new process's would.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readProviderConfig, readStoreConfig } from '../functions/core/config';
import { createDynamoClient } from '../functions/adapters/dynamo';
import { createFieldCipher } from '../functions/adapters/field-cipher';
import { ensureLocalKeyFile, localKeyProvider, readLocalKeyFile } from '../functions/adapters/local-key';
import { createLogger } from '../functions/adapters/logger';
import { DynamoSessionStore } from '../functions/adapters/session-store';
import { ensureTables } from '../functions/adapters/tables';
import { DynamoTokenStore } from '../functions/adapters/token-store';
import { runCli } from '../functions/reader/cli';
import { startSandbox } from '../infra/local/sandbox/launch';
import { brokerEnv, connectUser, expireAccessToken } from '../test/support/connect';
import { startFaultProxy } from '../test/support/fault-proxy';
import type { TestStores } from '../test/support/stores';
import { int, progress, table } from './stats';

/** One throttling share's outcome. */
export interface FaultRow {
  readonly share: number;
  readonly readers: number;
  readonly exit0: number;
  readonly exit5: number;
  /** Exit codes other than 0 and 5: each one a bug (a raw error, a wrong verdict). */
  readonly otherExits: number;
  /** Refreshes the sandbox was asked for beyond one per user: a refresh token presented twice. */
  readonly reused: number;
  readonly reauthRequired: number;
  /** Every user read with exit 0 once the faults stopped. */
  readonly recovered: boolean;
  /** Requests the proxy saw, and how many it throttled. */
  readonly requests: number;
  readonly throttled: number;
  /** Wall time of the 20 concurrent reads. */
  readonly seconds: number;
}

export interface FaultsResult {
  readonly users: number;
  readonly readersPerUser: number;
  readonly seed: number;
  readonly rows: readonly FaultRow[];
  /** The largest share at which every reader exited 0. */
  readonly allReadersSucceedUpTo: number | null;
  /** The smallest share at which some reader exited 5 (typed, retryable). */
  readonly readsStartFailingAt: number | null;
  /** True when no share produced another exit code, a reuse, a re-auth or a user left unreadable. */
  readonly nothingLost: boolean;
}

const REDIRECT = 'http://localhost:3998/callback';

/** Tables and a local field key of the bench's own on `endpoint`. */
async function benchStores(endpoint: string, keyDir: string): Promise<TestStores> {
  const suffix = randomBytes(4).toString('hex');
  const config = readStoreConfig({
    DYNAMODB_ENDPOINT: endpoint,
    TOKENS_TABLE: `bench-faults-tokens-${suffix}`,
    SESSIONS_TABLE: `bench-faults-sessions-${suffix}`,
  });
  const client = createDynamoClient(config);
  await ensureTables(client, config);
  const fieldKeyFile = join(keyDir, 'field.key');
  ensureLocalKeyFile(fieldKeyFile);
  const cipher = createFieldCipher(localKeyProvider(readLocalKeyFile(fieldKeyFile)));
  return {
    config,
    client,
    tokens: new DynamoTokenStore(client, config.tokensTable, cipher),
    sessions: new DynamoSessionStore(client, config.sessionsTable, cipher),
    fieldKeyFile,
    cipher,
  };
}

/** Measures the readers at each share of `shares` (0 to 1). */
export async function measureFaults(
  endpoint: string,
  options: { shares: readonly number[]; users: number; readersPerUser: number; seed: number },
): Promise<FaultsResult> {
  const keyDir = mkdtempSync(join(tmpdir(), 'bench-faults-'));
  const sandbox = await startSandbox({
    clientId: 'bench-faults',
    clientSecret: 'bench-faults-secret',
    redirectUris: [REDIRECT],
  });
  const stores = await benchStores(endpoint, keyDir);
  const proxy = await startFaultProxy({ target: endpoint, seed: options.seed });
  const quiet = createLogger({ level: 'error', write: () => undefined });
  const direct = brokerEnv(sandbox, stores, REDIRECT);
  const env = { ...direct, DYNAMODB_ENDPOINT: proxy.url, LOG_LEVEL: 'error' };
  const silent = { out: () => undefined, err: () => undefined };
  const rows: FaultRow[] = [];
  try {
    for (const share of options.shares) {
      progress(`faults: ${Math.round(share * 100)}% of DynamoDB requests throttled...`);
      const users = Array.from({ length: options.users }, (_, i) => `faults-${Math.round(share * 100)}-${i}`);
      for (const login of users) {
        await connectUser(login, {
          provider: readProviderConfig(direct),
          secret: sandbox.clientSecret,
          stores,
          logger: quiet,
        });
        await expireAccessToken(stores, login);
      }
      await sandbox.resetStats();
      proxy.resetStats();
      proxy.setRules([{ share, fault: 'throttle' }]);
      const started = performance.now();
      const codes = await Promise.all(
        users.flatMap((user) =>
          Array.from({ length: options.readersPerUser }, () => runCli(['get', user], env, silent)),
        ),
      );
      const seconds = (performance.now() - started) / 1000;
      const stats = Object.values(proxy.stats());
      proxy.setRules([]);
      const after = await Promise.all(users.map((user) => runCli(['get', user], env, silent)));
      const records = await Promise.all(users.map((user) => stores.tokens.get(user)));
      rows.push({
        share,
        readers: codes.length,
        exit0: codes.filter((code) => code === 0).length,
        exit5: codes.filter((code) => code === 5).length,
        otherExits: codes.filter((code) => code !== 0 && code !== 5).length,
        reused: Math.max(0, (await sandbox.stats()).refreshToken - options.users),
        reauthRequired: records.filter((record) => record?.status !== 'active').length,
        recovered: after.every((code) => code === 0),
        requests: stats.reduce((sum, op) => sum + op.requests, 0),
        throttled: stats.reduce((sum, op) => sum + (op.faults.throttle ?? 0), 0),
        seconds,
      });
    }
  } finally {
    await proxy.stop();
    await sandbox.stop();
    stores.client.destroy();
    rmSync(keyDir, { recursive: true, force: true });
  }
  const clean = rows.filter((row) => row.exit0 === row.readers);
  const failing = rows.filter((row) => row.exit5 > 0);
  return {
    users: options.users,
    readersPerUser: options.readersPerUser,
    seed: options.seed,
    rows,
    allReadersSucceedUpTo: clean.length ? Math.max(...clean.map((row) => row.share)) : null,
    readsStartFailingAt: failing.length ? Math.min(...failing.map((row) => row.share)) : null,
    nothingLost: rows.every(
      (row) => row.otherExits === 0 && row.reused === 0 && row.reauthRequired === 0 && row.recovered,
    ),
  };
}

const percent = (share: number | null) => (share === null ? 'none' : `${Math.round(share * 100)}%`);

/** The section's markdown. */
export function faultsMarkdown(result: FaultsResult): string {
  return [
    '### DynamoDB throttling under concurrent readers',
    '',
    `${result.users * result.readersPerUser} concurrent \`tokens get\` (${result.users} users x ${result.readersPerUser}, every token expired), ` +
      `a seeded proxy (seed ${result.seed}) throttling a share of every DynamoDB request. ` +
      `Every reader succeeds up to **${percent(result.allReadersSucceedUpTo)}**; reads start failing (exit 5, typed and retryable) at ` +
      `**${percent(result.readsStartFailingAt)}**; ${result.nothingLost ? 'at no share was anything lost (no other exit code, no refresh token presented twice, nobody re-auth, everyone read afterwards)' : '**something was lost at some share: see the table**'}.`,
    '',
    table(
      [
        'throttled',
        'exit 0',
        'exit 5',
        'other exits',
        'reused',
        'reauth',
        'recovered',
        'requests (throttled)',
        'seconds',
      ],
      result.rows.map((row) => [
        percent(row.share),
        int(row.exit0),
        int(row.exit5),
        int(row.otherExits),
        int(row.reused),
        int(row.reauthRequired),
        row.recovered ? 'yes' : '**no**',
        `${int(row.requests)} (${int(row.throttled)})`,
        row.seconds.toFixed(1),
      ]),
    ),
  ].join('\n');
}
