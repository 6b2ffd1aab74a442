/**
 * Section "kms": what field encryption costs (issue 12).
 *
 * 1. KMS calls per refresh. Users are signed in by one process (the callback's cipher), then refreshed
 *    by another (the refresh function's or the scheduled refresher's), through the real token store
 *    and single-flight refresh against DynamoDB Local, with an instant provider stub. Data-key calls
 *    are counted at the {@link DataKeyProvider} interface, the seam where KMS would be called (the
 *    local key provider stands in for KMS; the cache in front of it is the one Lambda runs). Scenarios:
 *    a warm process, the same process 20 minutes later (the cached keys aged out), a cold container for
 *    every refresh, and no cache at all.
 * 2. The cold-start cost of the encryption code: the floor before encryption (DynamoDB + Secrets
 *    Manager clients; `bench/floor.ts` now carries the KMS client too), the floor with `node:crypto` loaded (every handler already loads it: PKCE, state, lease
 *    owner ids), and that plus the KMS client and the envelope and cache code, bundled with the
 *    construct's esbuild options, sizes and import times measured round robin in one run.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readFileSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';
import { readStoreConfig } from '../functions/core/config';
import type { FieldPurpose } from '../functions/core/envelope';
import type { TokenSet } from '../functions/core/tokens';
import { scheduleAfterTokens } from '../functions/core/tokens';
import { createDynamoClient } from '../functions/adapters/dynamo';
import { logEventPublisher } from '../functions/adapters/events';
import {
  type CachePolicy,
  createFieldCipher,
  type DataKeyProvider,
  DEFAULT_CACHE_POLICY,
} from '../functions/adapters/field-cipher';
import { localKeyProvider } from '../functions/adapters/local-key';
import { createLogger } from '../functions/adapters/logger';
import { ensureTables } from '../functions/adapters/tables';
import { DynamoTokenStore } from '../functions/adapters/token-store';
import { createTokenRefresher } from '../functions/flows/single-flight-refresh';
import { startDynamoLocal } from '../infra/local/dynamodb-local';
import { CONSTRUCT_ESBUILD_OPTIONS, importTime, writeImportTimer } from './cold-start';
import { int, median, progress, ratio, round, table } from './stats';

/** One scenario of part 1. */
export interface KmsCallsRow {
  readonly scenario: string;
  readonly refreshes: number;
  readonly generateDataKey: number;
  readonly decrypt: number;
  /** (GenerateDataKey + Decrypt) / refreshes. */
  readonly perRefresh: number;
}

/** Part 2: one bundle. */
export interface CipherBundle {
  readonly name: string;
  readonly bytes: number;
  readonly gzipBytes: number;
  /** Wall time of the import, median. */
  readonly importP50Ms: number;
  /** CPU time (user + system) of the import, median: what a busy machine inflates least. */
  readonly importCpuP50Ms: number;
}

/** Everything the section measured. */
export interface KmsCallsResult {
  readonly users: number;
  readonly policy: CachePolicy;
  readonly rows: KmsCallsRow[];
  readonly coldStart: {
    readonly runs: number;
    readonly floor: CipherBundle;
    /** The floor with node:crypto loaded: what a handler pays before field encryption. */
    readonly floorWithCrypto: CipherBundle;
    /** As the handlers build it at init: the field key provider over a KMS client, and the cipher. */
    readonly withCipher: CipherBundle;
    /** Of `withCipher` over `floorWithCrypto`: what field encryption adds to a handler's import. */
    readonly addedBytes: number;
    readonly addedImportMs: number;
    readonly addedImportCpuMs: number;
    /** Import CPU p50 of `withCipher` over the floor's (what the cold-start goal is judged on). */
    readonly ratio: number;
  };
}

/** A provider that counts its calls: each one is a KMS call in AWS. */
function counting(inner: DataKeyProvider) {
  const calls = { generateDataKey: 0, decrypt: 0 };
  const provider: DataKeyProvider = {
    keyRef: inner.keyRef,
    generateDataKey: (purpose: FieldPurpose) => (calls.generateDataKey++, inner.generateDataKey(purpose)),
    decryptDataKey: (key: Buffer, purpose: FieldPurpose) => (calls.decrypt++, inner.decryptDataKey(key, purpose)),
  };
  return { provider, calls };
}

/**
 * Runs the section.
 * @param options.dynamoEndpoint a running DynamoDB Local; one is started (and stopped) when absent
 * @param options.users users signed in and refreshed per scenario
 * @param options.importRuns import-time runs per bundle
 */
export async function measureKmsCalls(
  workDir: string,
  options: { dynamoEndpoint?: string; users?: number; importRuns?: number } = {},
): Promise<KmsCallsResult> {
  const users = options.users ?? 200;
  const dynamo = options.dynamoEndpoint ? undefined : await startDynamoLocal();
  try {
    const rows = await countCalls(options.dynamoEndpoint ?? dynamo!.endpoint, users);
    const coldStart = await measureCipherColdStart(workDir, options.importRuns ?? 15);
    return { users, policy: DEFAULT_CACHE_POLICY, rows, coldStart };
  } finally {
    await dynamo?.stop();
  }
}

async function countCalls(endpoint: string, users: number): Promise<KmsCallsRow[]> {
  const suffix = randomBytes(4).toString('hex');
  const config = readStoreConfig({
    DYNAMODB_ENDPOINT: endpoint,
    TOKENS_TABLE: `bench-kms-tokens-${suffix}`,
    SESSIONS_TABLE: `bench-kms-sessions-${suffix}`,
  });
  const client = createDynamoClient(config);
  await ensureTables(client, config);
  const masterKey = randomBytes(32);
  const logger = createLogger({ write: () => undefined });
  const ids = Array.from({ length: users }, (_, i) => `bench-kms-${i}`);
  let clockMs = Date.now();
  const now = () => clockMs;

  /** Signs every user in through a callback process of its own (its own cipher and cache). */
  const signIn = async () => {
    const callback = new DynamoTokenStore(
      client,
      config.tokensTable,
      createFieldCipher(localKeyProvider(masterKey), { now }),
    );
    const at = Math.floor(clockMs / 1000);
    for (const userId of ids) {
      const tokens = { accessToken: randomBytes(16).toString('hex'), refreshToken: randomBytes(32).toString('hex') };
      const set = { ...tokens, tokenType: 'bearer', scope: 'profile.compact', expiresAt: at + 1800 };
      await callback.saveLogin({
        userId,
        profileId: userId,
        tokens: set,
        now: at,
        schedule: scheduleAfterTokens(userId, set, at),
        boundBy: 'public',
      });
    }
  };

  /** A refreshing process: its own cipher over a counted provider. */
  const refreshProcess = (policy?: Partial<CachePolicy>) => {
    const counted = counting(localKeyProvider(masterKey));
    const tokens = new DynamoTokenStore(
      client,
      config.tokensTable,
      createFieldCipher(counted.provider, { policy, now }),
    );
    const refresher = createTokenRefresher({
      tokens,
      client: {
        // An instant provider that rotates the refresh token, as Kroger does.
        refresh: async ({ scope }): Promise<TokenSet> => ({
          accessToken: randomBytes(16).toString('hex'),
          refreshToken: randomBytes(32).toString('hex'),
          tokenType: 'bearer',
          scope,
          expiresAt: Math.floor(clockMs / 1000) + 1800,
        }),
      },
      events: logEventPublisher(logger),
      logger,
      nowMs: now,
      // Every user is refreshed (forced) in each scenario, minutes apart at most.
      forceRefreshMinIntervalSeconds: 0,
    });
    const refreshAll = async (scenario: string, who = ids): Promise<KmsCallsRow> => {
      const before = { ...counted.calls };
      for (const userId of who) await refresher.getAccessToken(userId, { forceRefresh: true });
      const generateDataKey = counted.calls.generateDataKey - before.generateDataKey;
      const decrypt = counted.calls.decrypt - before.decrypt;
      return {
        scenario,
        refreshes: who.length,
        generateDataKey,
        decrypt,
        perRefresh: round((generateDataKey + decrypt) / who.length, 4),
      };
    };
    return refreshAll;
  };

  try {
    progress(`kms: signing ${users} users in, then refreshing them...`);
    await signIn();
    const warm = refreshProcess();
    const rows = [await warm('warm process, tokens written by another (the callback)')];
    rows.push(await warm('the same process again, within the cache bounds'));
    clockMs += 20 * 60_000;
    rows.push(await warm('the same process 20 minutes later (cached keys aged out)'));
    // Every refresh in a container of its own: its cache starts empty each time.
    const cold = { refreshes: 0, generateDataKey: 0, decrypt: 0 };
    for (const userId of ids) {
      const row = await refreshProcess()('cold', [userId]);
      cold.refreshes += row.refreshes;
      cold.generateDataKey += row.generateDataKey;
      cold.decrypt += row.decrypt;
    }
    rows.push({
      scenario: 'a cold container for every refresh',
      ...cold,
      perRefresh: round((cold.generateDataKey + cold.decrypt) / cold.refreshes, 4),
    });
    // No reuse at all: every field a data key of its own, every read an unwrap (the refresh flow
    // reads the item twice: to see whether it is fresh, then under the lease).
    const uncached = refreshProcess({ encryptMaxUses: 1, decryptMaxEntries: 0, decryptMaxAgeMs: 0 });
    rows.push(await uncached('no cache at all'));
    return rows;
  } finally {
    client.destroy();
  }
}

type BundleName = 'floor' | 'floorWithCrypto' | 'withCipher';

/** Bundles the floor, the floor with node:crypto, and that plus the cipher code; times their imports. */
async function measureCipherColdStart(workDir: string, runs: number): Promise<KmsCallsResult['coldStart']> {
  progress('kms: bundling the floor with and without the encryption code...');
  const root = join(__dirname, '..');
  // The floor as it was before encryption at rest: `bench/floor.ts` now includes the KMS client,
  // which is part of what this section measures.
  const floorEntry = join(workDir, 'kms-floor-before-encryption.ts');
  writeFileSync(
    floorEntry,
    [
      "import { DynamoDBClient } from '@aws-sdk/client-dynamodb';",
      "import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';",
      'const dynamo = new DynamoDBClient({});',
      'const secrets = new SecretsManagerClient({});',
      'export const handler = async () => ({ ok: Boolean(dynamo && secrets) });',
    ].join('\n'),
  );
  const module = (path: string) => JSON.stringify(join(root, path));
  // Every handler already loads node:crypto (state, PKCE, lease owner ids): without it in the
  // baseline, its one-time load would be counted as the cost of encryption.
  const sources: Record<Exclude<BundleName, 'floor'>, string[]> = {
    floorWithCrypto: [
      `import { handler as floor } from ${JSON.stringify(floorEntry)};`,
      "import { randomUUID } from 'node:crypto';",
      'const id = randomUUID();',
      'export const handler = async () => ({ ...(await floor()), id });',
    ],
    // Plus what a handler adds for field encryption: the KMS client created at module scope, the KMS
    // key provider and the envelope cache (kept alive so nothing is dropped).
    // Plus what a handler adds for field encryption, as handlers.ts and services.ts build it at init:
    // the KMS key provider (its client created, imported statically) and the envelope cache.
    withCipher: [
      `import { handler as floor } from ${JSON.stringify(floorEntry)};`,
      "import { randomUUID } from 'node:crypto';",
      `import { createFieldCipher } from ${module('functions/adapters/field-cipher')};`,
      `import { createFieldKeyProvider } from ${module('functions/adapters/field-key')};`,
      `import { createKmsKeyProvider } from ${module('functions/adapters/kms-key')};`,
      'const id = randomUUID();',
      "const config = { kind: 'kms', keyArn: 'arn:aws:kms:us-east-1:123456789012:key/x', region: 'us-east-1' } as const;",
      'const cipher = createFieldCipher(createFieldKeyProvider(config, createKmsKeyProvider));',
      'export const handler = async () => ({ ...(await floor()), id, cipher: Boolean(cipher) });',
    ],
  };
  const entries: Record<BundleName, string> = {
    floor: floorEntry,
    floorWithCrypto: join(workDir, 'kms-floor-with-crypto.ts'),
    withCipher: join(workDir, 'kms-floor-with-cipher.ts'),
  };
  const bundles = {} as Record<BundleName, string>;
  for (const name of Object.keys(entries) as BundleName[]) {
    if (name !== 'floor') writeFileSync(entries[name], sources[name].join('\n'));
    bundles[name] = join(workDir, `kms-${name}`, 'index.mjs');
    await build({
      ...CONSTRUCT_ESBUILD_OPTIONS,
      entryPoints: [entries[name]],
      outfile: bundles[name],
      // The generated entries live in the work dir: resolve packages from the project.
      nodePaths: [join(root, 'node_modules')],
    });
  }

  const timer = writeImportTimer(workDir);
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    AWS_REGION: 'us-east-1',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const names = Object.keys(bundles) as BundleName[];
  const times = Object.fromEntries(
    names.map((name) => [name, { ms: [] as number[], cpuMs: [] as number[] }]),
  ) as Record<BundleName, { ms: number[]; cpuMs: number[] }>;
  for (let pass = 0; pass < runs; pass++) {
    // Rotate which goes first, so none always runs on a warmer (or colder) machine.
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + pass) % names.length];
      const { ms, cpuMs } = await importTime(process.execPath, timer, bundles[name], env);
      times[name].ms.push(ms);
      times[name].cpuMs.push(cpuMs);
    }
  }
  const measured = (name: BundleName, label: string): CipherBundle => {
    const content = readFileSync(bundles[name]);
    return {
      name: label,
      bytes: content.length,
      gzipBytes: gzipSync(content).length,
      importP50Ms: round(median(times[name].ms)),
      importCpuP50Ms: round(median(times[name].cpuMs)),
    };
  };
  const floor = measured('floor', 'floor (DynamoDB + Secrets Manager clients)');
  const floorWithCrypto = measured('floorWithCrypto', 'floor + node:crypto (what every handler loads)');
  const withCipher = measured('withCipher', 'floor + node:crypto + KMS client + envelope and cache code');
  return {
    runs,
    floor,
    floorWithCrypto,
    withCipher,
    addedBytes: withCipher.bytes - floorWithCrypto.bytes,
    addedImportMs: round(withCipher.importP50Ms - floorWithCrypto.importP50Ms),
    addedImportCpuMs: round(withCipher.importCpuP50Ms - floorWithCrypto.importCpuP50Ms),
    ratio: round(withCipher.importCpuP50Ms / floor.importCpuP50Ms, 3),
  };
}

/** The section as markdown. */
export function kmsCallsMarkdown(result: KmsCallsResult): string {
  const { policy, coldStart } = result;
  const row = (bundle: CipherBundle) => [
    bundle.name,
    int(bundle.bytes),
    int(bundle.gzipBytes),
    `${bundle.importCpuP50Ms.toFixed(1)} ms`,
    ratio(bundle.importCpuP50Ms / coldStart.floor.importCpuP50Ms),
    `${bundle.importP50Ms.toFixed(1)} ms`,
  ];
  return [
    '### Field encryption: KMS calls per refresh, and its cold-start cost',
    '',
    `${result.users} users signed in by one process, then each refreshed (forced) by another, through the token ` +
      'store and single-flight refresh on DynamoDB Local with an instant provider stub. Data-key calls are counted ' +
      'where KMS would be called (GenerateDataKey, Decrypt). Cache: a data key encrypts for ' +
      `${policy.encryptMaxAgeMs / 60_000} min or ${int(policy.encryptMaxUses)} fields; unwrapped keys are kept ` +
      `${policy.decryptMaxAgeMs / 60_000} min, at most ${policy.decryptMaxEntries}.`,
    '',
    table(
      ['scenario', 'refreshes', 'GenerateDataKey', 'Decrypt', 'KMS calls per refresh'],
      result.rows.map((r) => [r.scenario, r.refreshes, r.generateDataKey, r.decrypt, r.perRefresh.toFixed(3)]),
    ),
    '',
    `Cold start of the encryption code (the construct's esbuild options; medians of ${coldStart.runs} runs each, round robin):`,
    '',
    table(
      ['bundle', 'bytes', 'gzip bytes', 'import CPU p50', 'ratio to the floor', 'import wall p50'],
      [row(coldStart.floor), row(coldStart.floorWithCrypto), row(coldStart.withCipher)],
    ),
    '',
    `Field encryption adds ${int(coldStart.addedBytes)} bytes, ${coldStart.addedImportCpuMs.toFixed(1)} ms of import ` +
      `CPU time and ${coldStart.addedImportMs.toFixed(1)} ms of wall time (p50) to a handler that already loads ` +
      'node:crypto, as every broker handler does. Token readers never load the KMS client.',
  ].join('\n');
}
