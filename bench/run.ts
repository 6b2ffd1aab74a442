/**
 * `npm run bench`: what the broker costs, measured on this machine.
 *
 * 1. cold start: each handler bundle `cdk synth` produces against the AWS SDK floor (bench/cold-start.ts)
 * 2. callback latency on the local stack: server-side time against its I/O (bench/callback-latency.ts)
 * 3. refresher cost: DynamoDB read units per cycle as the table grows (bench/refresher-cost.ts)
 * 4. field encryption: KMS calls per refresh, cold-start cost of the encryption code (bench/kms-calls.ts)
 *
 * Prints a markdown table per section (also saved as bench/results/latest.md), writes
 * bench/results/latest.json with the machine it ran on, and logs progress on stderr. Figures are
 * ratios measured in the same run, because the machine is shared and noisy.
 *
 * Knobs (environment): BENCH_IMPORT_RUNS (default 21, at least 9), BENCH_LOGINS (default 30),
 * BENCH_USERS (default "1000,10000,100000"), BENCH_SEED_BUDGET_SECONDS (default 360),
 * BENCH_SECTIONS (default "cold,callback,refresher,kms").
 */
import '../functions/adapters/quiet';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { startDynamoLocal, type DynamoLocalHandle } from '../infra/local/dynamodb-local';
import { callbackMarkdown, measureCallbackLatency, type CallbackLatencyResult } from './callback-latency';
import { coldStartMarkdown, measureColdStart, type ColdStartResult } from './cold-start';
import { kmsCallsMarkdown, measureKmsCalls, type KmsCallsResult } from './kms-calls';
import { measureRefresherCost, refresherMarkdown, type RefresherCostResult } from './refresher-cost';
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
  coldStart?: ColdStartResult;
  callback?: CallbackLatencyResult;
  refresher?: RefresherCostResult;
  kms?: KmsCallsResult;
  /** Sections that failed, with their error message. */
  readonly errors: Record<string, string>;
}

function setting(name: string, fallback: number, min: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be a whole number of at least ${min}`);
  return value;
}

async function main(): Promise<number> {
  const started = performance.now();
  const importRuns = setting('BENCH_IMPORT_RUNS', 21, 9);
  const logins = setting('BENCH_LOGINS', 30, 1);
  const seedBudgetSeconds = setting('BENCH_SEED_BUDGET_SECONDS', 360, 1);
  const sizes = (process.env.BENCH_USERS ?? '1000,10000,100000').split(',').map(Number);
  const sections = new Set((process.env.BENCH_SECTIONS ?? 'cold,callback,refresher,kms').split(','));
  const workDir = mkdtempSync(join(tmpdir(), 'kroger-bench-'));
  let dynamo: DynamoLocalHandle | undefined;
  const cleanup = async () => {
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
      results.coldStart = await section('cold start', () => measureColdStart(workDir, importRuns), coldStartMarkdown);
    }
    if (sections.has('callback') || sections.has('refresher')) {
      progress('starting DynamoDB Local...');
      dynamo = await startDynamoLocal();
      const endpoint = dynamo.endpoint;
      if (sections.has('callback')) {
        results.callback = await section(
          'callback latency',
          () => measureCallbackLatency(endpoint, { logins, warmup: 5 }),
          callbackMarkdown,
        );
      }
      if (sections.has('refresher')) {
        results.refresher = await section(
          'refresher cost',
          () => measureRefresherCost(endpoint, { sizes, dueFraction: 0.01, seedBudgetSeconds }),
          refresherMarkdown,
        );
      }
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
      `${machine.os}; whole run ${Math.round(seconds)} s. Command: \`npm run bench\`.`,
    '',
    ...markdown.flatMap((part) => [part, '']),
  ].join('\n');
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, 'latest.md'), report);
  writeFileSync(join(RESULTS_DIR, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(report);
  progress(`done in ${Math.round(seconds)} s; wrote bench/results/latest.json and latest.md`);
  return Object.keys(results.errors).length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
