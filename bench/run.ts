/**
 * `npm run bench`: what the broker costs, measured on this machine.
 *
 * 1. cold start: each handler bundle `cdk synth` produces against the AWS SDK floor, under this
 *    machine's Node and Node 24 (Lambda's), interleaved (bench/cold-start.ts)
 * 2. callback overhead from outside: /callback through the local stack in its own process (as under
 *    `npm start`) against the same I/O done directly, and CPU profiles of both
 *    (bench/callback-latency.ts)
 * 3. the read path: `getAccessToken` for a fresh token, an expired one, and 100 concurrent readers
 *    of one expired token (bench/read-path.ts)
 * 4. refresher cost: DynamoDB read units per cycle as the table grows, writes per refresh
 *    (bench/refresher-cost.ts)
 * 5. refresh policies: a simulated day of the broker's code under `eager` and `on-read` with a
 *    stated read pattern (bench/policy-sim.ts)
 * 6. cost per month by refresh policy and users, from the counts above (bench/cost-model.ts)
 * 7. field encryption: KMS calls per refresh, cold-start cost of the encryption code (bench/kms-calls.ts)
 *
 * Prints a markdown table per section (also saved as bench/results/latest.md), writes
 * bench/results/latest.json with the machine it ran on and bench/results/report.html (charts as
 * inline SVG), and logs progress on stderr. Figures are ratios measured in the same run, because
 * the machine is shared and noisy.
 *
 * `npm run bench -- --quick`: fewer runs and no 100,000-user table (about a minute less).
 * Knobs (environment): BENCH_IMPORT_RUNS (default 21, at least 9), BENCH_LOGINS (callback pairs per
 * round, default 30), BENCH_CALLBACK_ROUNDS (stack processes, default 3),
 * BENCH_USERS (default "1000,10000,100000"), BENCH_SEED_BUDGET_SECONDS (default 360),
 * BENCH_SECTIONS (default "cold,callback,read,refresher,policies,cost,kms,faults"). A run of only some
 * sections writes bench/results/partial-<sections>.{json,md}, and leaves latest.* to the whole run.
 */
import '../functions/adapters/quiet';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { startDynamoLocal, type DynamoLocalHandle } from '../infra/local/dynamodb-local';
import { createDynamoClient } from '../functions/adapters/dynamo';
import { readStoreConfig } from '../functions/core/config';
import { callbackMarkdown, measureCallbackLatency, type CallbackLatencyResult } from './callback-latency';
import { coldStartMarkdown, measureColdStart, type ColdStartResult } from './cold-start';
import { costMarkdown, costModel, type CostResult, type MeasuredCounts } from './cost-model';
import { faultsMarkdown, type FaultsResult, measureFaults } from './faults';
import { kmsCallsMarkdown, measureKmsCalls, type KmsCallsResult } from './kms-calls';
import { type BenchStack, startBenchStack } from './local';
import { nodeBinaries } from './node-binaries';
import { measurePolicies, policiesMarkdown, type PolicySimResult } from './policy-sim';
import { measureReadPath, readPathMarkdown, type ReadPathResult } from './read-path';
import { measureRefresherCost, refresherMarkdown, type RefresherCostResult } from './refresher-cost';
import { reportHtml } from './report-html';
import { progress } from './stats';

const RESULTS_DIR = join(__dirname, 'results');

/** What bench/results/latest.json holds. */
export interface BenchResults {
  readonly machine: {
    readonly node: string;
    readonly cpu: string;
    readonly cores: number;
    readonly memoryGiB: number;
    readonly os: string;
    readonly date: string;
  };
  readonly durationSeconds: number;
  readonly quick: boolean;
  coldStart?: ColdStartResult;
  callback?: CallbackLatencyResult;
  readPath?: ReadPathResult;
  refresher?: RefresherCostResult;
  policies?: PolicySimResult;
  cost?: CostResult;
  kms?: KmsCallsResult;
  faults?: FaultsResult;
  /** Sections that failed, with their error message. */
  readonly errors: Record<string, string>;
}

function setting(name: string, fallback: number, min: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be a whole number of at least ${min}`);
  return value;
}

/** Users the cost tables are priced for, whatever sizes the refresher section seeded. */
const COST_USERS = [1_000, 10_000, 100_000];

/** The per-operation figures the cost model takes from the refresher section. */
function measuredCounts(refresher: RefresherCostResult): MeasuredCounts {
  const largest = refresher.sizes[refresher.sizes.length - 1];
  return {
    indexReadUnitsPerDueUser: largest.indexReadUnits / Math.max(1, largest.itemsReturned),
    itemBytes: largest.itemBytes ?? 1024,
  };
}

async function main(): Promise<number> {
  const started = performance.now();
  const quick = process.argv.includes('--quick');
  const importRuns = setting('BENCH_IMPORT_RUNS', quick ? 11 : 21, 9);
  const logins = setting('BENCH_LOGINS', quick ? 15 : 30, 1);
  const callbackRounds = setting('BENCH_CALLBACK_ROUNDS', quick ? 2 : 3, 1);
  const seedBudgetSeconds = setting('BENCH_SEED_BUDGET_SECONDS', 360, 1);
  const sizes = (process.env.BENCH_USERS ?? (quick ? '1000,10000' : '1000,10000,100000')).split(',').map(Number);
  const sections = new Set(
    (process.env.BENCH_SECTIONS ?? 'cold,callback,read,refresher,policies,cost,kms,faults').split(','),
  );
  const workDir = mkdtempSync(join(tmpdir(), 'kroger-bench-'));
  mkdirSync(RESULTS_DIR, { recursive: true });
  let dynamo: DynamoLocalHandle | undefined;
  let bench: BenchStack | undefined;
  const cleanup = async () => {
    await bench?.stop();
    bench = undefined;
    await dynamo?.stop();
    dynamo = undefined;
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

  const results: BenchResults = {
    machine: {
      node: process.version,
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      os: `${process.platform} ${release()} ${process.arch}`,
      date: new Date().toISOString(),
    },
    durationSeconds: 0,
    quick,
    errors: {},
  };
  const markdown: string[] = [];
  /** Runs one section; a failure is reported and the other sections still run. */
  const section = async <T>(name: string, measure: () => Promise<T>, render: (result: T) => string) => {
    try {
      const result = await measure();
      markdown.push(render(result));
      return result;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      progress(`${name} failed: ${message}`);
      results.errors[name] = message;
      markdown.push(`### ${name}\n\n**Failed:** ${message.split('\n')[0]}`);
      return undefined;
    }
  };

  try {
    if (sections.has('cold')) {
      results.coldStart = await section(
        'cold start',
        async () => {
          const nodes = await nodeBinaries();
          return measureColdStart(workDir, importRuns, nodes.binaries, nodes.skipped);
        },
        coldStartMarkdown,
      );
    }
    const needsStack = sections.has('read');
    if (
      needsStack ||
      sections.has('callback') ||
      sections.has('refresher') ||
      sections.has('policies') ||
      sections.has('faults')
    ) {
      progress('starting DynamoDB Local...');
      dynamo = await startDynamoLocal();
      const endpoint = dynamo.endpoint;
      if (sections.has('callback')) {
        // The bench's own client for the direct path; the stack runs in its own process.
        const direct = createDynamoClient(readStoreConfig({ DYNAMODB_ENDPOINT: endpoint }));
        results.callback = await section(
          'callback overhead',
          () =>
            measureCallbackLatency(
              endpoint,
              { dynamo: direct, resultsDir: RESULTS_DIR },
              {
                rounds: callbackRounds,
                logins,
                warmup: Number(process.env.BENCH_WARMUP ?? 5),
                splitLogins: quick ? 10 : 20,
                profileLogins: quick ? 10 : 30,
                adapterCalls: quick ? 30 : 100,
                warmCalls: 200,
              },
            ),
          callbackMarkdown,
        );
        direct.destroy();
      }
      if (needsStack) {
        progress('starting the local stack (sandbox provider, handlers behind the HTTP adapter)...');
        bench = await startBenchStack(endpoint);
        const b = bench;
        if (sections.has('read')) {
          results.readPath = await section(
            'read path',
            () =>
              measureReadPath(
                b.stack,
                { counter: b.counter, handlerDynamo: b.handlerDynamo, logs: b.logs },
                quick
                  ? { freshReads: 20, expiredReads: 8, readers: 100, rounds: 1 }
                  : { freshReads: 50, expiredReads: 20, readers: 100, rounds: 3 },
              ),
            readPathMarkdown,
          );
        }
        await b.stop();
        bench = undefined;
      }
      if (sections.has('refresher') || sections.has('cost')) {
        results.refresher = await section(
          'refresher cost',
          () => measureRefresherCost(endpoint, { sizes, dueFraction: 0.01, seedBudgetSeconds }),
          refresherMarkdown,
        );
      }
      if (sections.has('policies') || sections.has('cost')) {
        results.policies = await section(
          'refresh policies',
          () =>
            measurePolicies(
              endpoint,
              quick ? { eagerUsers: 5, onReadUsers: 40, days: 1 } : { eagerUsers: 10, onReadUsers: 100, days: 1 },
            ),
          policiesMarkdown,
        );
      }
      if (sections.has('faults')) {
        results.faults = await section(
          'faults',
          () =>
            measureFaults(endpoint, {
              shares: quick ? [0, 0.3, 0.6, 0.9] : [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
              users: 5,
              readersPerUser: 4,
              seed: 20261127,
            }),
          faultsMarkdown,
        );
      }
    }
    if (sections.has('cost')) {
      const { refresher, policies } = results;
      results.cost = await section(
        'cost model',
        async () => {
          if (!refresher?.sizes.length || !policies) throw new Error('needs the refresher and policy sections');
          return costModel(measuredCounts(refresher), policies, COST_USERS);
        },
        costMarkdown,
      );
    }
    if (sections.has('kms')) {
      const endpoint = dynamo?.endpoint;
      results.kms = await section(
        'kms calls',
        () => measureKmsCalls(workDir, { dynamoEndpoint: endpoint, importRuns }),
        kmsCallsMarkdown,
      );
    }
  } finally {
    await cleanup();
  }

  const seconds = (performance.now() - started) / 1000;
  (results as { durationSeconds: number }).durationSeconds = Math.round(seconds);
  const { machine } = results;
  const report = [
    '## Benchmarks',
    '',
    `${machine.date.slice(0, 16).replace('T', ' ')} UTC, node ${machine.node}, ${machine.cpu} (${machine.cores} cores), ` +
      `${machine.os}; whole run ${Math.round(seconds)} s. Command: \`npm run bench${quick ? ' -- --quick' : ''}\`.`,
    '',
    ...markdown.flatMap((part) => [part, '']),
  ].join('\n');
  // A run of some sections only must not replace the whole run's figures the docs cite.
  const name = process.env.BENCH_SECTIONS ? `partial-${[...sections].join('-')}` : 'latest';
  writeFileSync(join(RESULTS_DIR, `${name}.md`), report);
  writeFileSync(join(RESULTS_DIR, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
  if (name === 'latest') writeFileSync(join(RESULTS_DIR, 'report.html'), reportHtml(results, markdown.join('\n\n')));
  process.stdout.write(report);
  progress(`done in ${Math.round(seconds)} s; wrote bench/results/${name}.json and ${name}.md`);
  return Object.keys(results.errors).length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
