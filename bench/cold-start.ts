/**
 * Section 1, cold start: every handler bundle `cdk synth` produces, its size and the time a fresh
 * Node process takes to import it, against the floor a broker handler pays for the SDK clients it
 * needs: DynamoDB, Secrets Manager and KMS (`bench/floor.ts`, bundled with the construct's options).
 *
 * Import time is what Lambda's init phase spends loading the module: measured inside the child
 * around `await import(bundle)`, so process start-up is not counted. All bundles are timed round
 * robin (run 1 of each, then run 2 of each, ...) so a noisy moment on the machine hits all alike.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build, type BuildOptions, type Metafile } from 'esbuild';
import { ENTRY_FILES } from '../infra/broker';
import type { NodeBinary } from './node-binaries';
import { int, median, progress, quantile, ratio, round, table } from './stats';

const run = promisify(execFile);
const PROJECT_ROOT = join(__dirname, '..');

/** Goal of the issue: every handler imports within 1.10x of the floor. */
export const COLD_START_GOAL = 1.1;

/**
 * esbuild options equal to what `NodejsFunction` runs for the broker (`BUNDLING` in infra/broker/functions.ts):
 * ESM, minified (names kept), node22, `module` before `main`, external source map without sources, the SDK
 * bundled, and the createRequire banner. Each handler is rebuilt with them and compared with the
 * synthesized bundle, so a drift between this copy and the construct shows in the report.
 */
export const CONSTRUCT_ESBUILD_OPTIONS: BuildOptions = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  mainFields: ['module', 'main'],
  minify: true,
  sourcemap: true,
  sourcesContent: false,
  external: ['@aws-sdk/client-eventbridge'],
  banner: {
    js: "import { createRequire as __brokerCreateRequire } from 'node:module'; const require = __brokerCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
};

/** Import-time statistics of one bundle in one mode, in milliseconds. */
export interface ImportTimes {
  readonly p50: number;
  readonly p90: number;
  readonly runs: number[];
}

/** One measured bundle (a handler, or the floor). */
export interface BundleMeasurement {
  readonly name: string;
  /** Source entry, relative to the project. */
  readonly entry?: string;
  /** The bundle that was timed, relative to the synth output (or the work dir for the floor). */
  readonly bundle: string;
  readonly bytes: number;
  readonly gzipBytes: number;
  readonly sourceMapBytes: number;
  /** With the function's environment as the stack sets it, `NODE_OPTIONS` included; this machine's Node. */
  readonly importMs: ImportTimes;
  /**
   * The same without `NODE_OPTIONS` (source maps), when the stack sets any; this machine's Node.
   */
  readonly importMsNoSourceMaps?: ImportTimes;
  /** Median import time over the floor's median, as deployed, this machine's Node. */
  readonly ratio: number;
  readonly ratioNoSourceMaps?: number;
  /** As deployed, under each Node binary of the run (this machine's first), against the floor under the same. */
  readonly byNode: Array<{
    readonly node: string;
    readonly version: string;
    /** Wall time of the import. */
    readonly importMs: ImportTimes;
    readonly ratio: number;
    /**
     * CPU time of the import (user + system, all threads of the child): what a busy machine does
     * not inflate, so the figure the goal is judged on; on an idle machine the import is CPU-bound
     * and wall time follows it.
     */
    readonly cpuMs: ImportTimes;
    readonly cpuRatio: number;
  }>;
  /** Size of the same entry rebuilt here with {@link CONSTRUCT_ESBUILD_OPTIONS}. */
  readonly rebuiltBytes?: number;
  /** Packages (or project files) by bytes in the bundle, from esbuild's metafile. */
  readonly topInputs?: Array<{ input: string; bytes: number }>;
  /** What this bundle carries that the floor does not, by package, largest first. */
  readonly addedOverFloor?: Array<{ input: string; bytes: number }>;
  /**
   * The same entry with the packages it only loads through `import()` left out of the bundle (as
   * esbuild `splitting` or `external` would): what its import costs when those are really deferred.
   */
  readonly withoutDynamicImports?: {
    readonly packages: string[];
    readonly bytes: number;
    readonly importMs: ImportTimes;
    readonly ratio: number;
  };
}

/** Everything section 1 measured. */
export interface ColdStartResult {
  readonly runsPerBundle: number;
  readonly synthSeconds: number;
  /** The Node binaries every bundle was timed under, interleaved. */
  readonly nodes: ReadonlyArray<{ readonly label: string; readonly version: string }>;
  /** Why a Node binary is missing, when one is. */
  readonly nodeSkipped?: string;
  /** `NODE_OPTIONS` the stack gives the functions (also given to the floor). */
  readonly nodeOptions?: string;
  readonly floor: BundleMeasurement;
  readonly handlers: BundleMeasurement[];
  readonly goal: number;
}

interface Target {
  name: string;
  entry?: string;
  file: string;
  displayPath: string;
  env: Record<string, string>;
  metafile?: Metafile;
  rebuiltBytes?: number;
  /** Import times as deployed, by Node binary label (wall, and CPU in `cpuByNode`); without NODE_OPTIONS (machine's Node). */
  times: { byNode: Record<string, number[]>; cpuByNode: Record<string, number[]>; noMaps: number[] };
  /** The entry rebuilt without its dynamically imported packages, when it has any. */
  lazyVariant?: Target & { packages: string[] };
}

/**
 * Runs the section.
 * @param workDir a scratch directory (synth output, floor bundle, rebuilt bundles)
 * @param runs import runs per bundle and mode (at least 9)
 */
export async function measureColdStart(
  workDir: string,
  runs: number,
  nodes: readonly NodeBinary[],
  nodeSkipped?: string,
): Promise<ColdStartResult> {
  const emptyTimes = () => ({
    byNode: Object.fromEntries(nodes.map((n) => [n.label, [] as number[]])),
    cpuByNode: Object.fromEntries(nodes.map((n) => [n.label, [] as number[]])),
    noMaps: [],
  });
  const outDir = join(workDir, 'cdk.out');
  progress('cold start: cdk synth (bundles every handler with esbuild)...');
  const synthStarted = performance.now();
  await synth(outDir);
  const synthSeconds = (performance.now() - synthStarted) / 1000;
  const handlers = findHandlerBundles(outDir);
  if (handlers.length === 0) throw new Error(`no Lambda function with a bundled asset in ${outDir}`);
  for (const handler of handlers) handler.times = emptyTimes();
  progress(`cold start: synth took ${synthSeconds.toFixed(1)} s; handlers: ${handlers.map((h) => h.name).join(', ')}`);

  // The floor gets what the construct gives every function that matters at import: NODE_OPTIONS.
  const nodeOptions = handlers[0].env.NODE_OPTIONS;
  const floorFile = join(workDir, 'floor', 'index.mjs');
  const floorBuild = await build({
    ...CONSTRUCT_ESBUILD_OPTIONS,
    entryPoints: [join(__dirname, 'floor.ts')],
    outfile: floorFile,
    metafile: true,
  });
  const floor: Target = {
    name: 'floor (DynamoDB + Secrets Manager + KMS clients)',
    entry: 'bench/floor.ts',
    file: floorFile,
    displayPath: 'bench/floor.ts, bundled here',
    env: lambdaEnv('Floor', nodeOptions === undefined ? {} : { NODE_OPTIONS: nodeOptions }),
    metafile: floorBuild.metafile,
    times: emptyTimes(),
  };

  // Rebuild each entry with our copy of the options: its metafile says what the bundle is made of.
  for (const handler of handlers) {
    if (!handler.entry) continue;
    const file = join(workDir, 'rebuilt', handler.name, 'index.mjs');
    const result = await build({
      ...CONSTRUCT_ESBUILD_OPTIONS,
      entryPoints: [join(PROJECT_ROOT, handler.entry)],
      outfile: file,
      metafile: true,
    });
    handler.metafile = result.metafile;
    handler.rebuiltBytes = statSync(file).size;

    // esbuild inlines what `import()` loads (there is no splitting here), so a client meant to load
    // on first use is still parsed at init. Time a variant without it, to show what that costs.
    const packages = onlyDynamicallyImported(result.metafile);
    if (packages.length > 0) {
      const lazyFile = join(workDir, 'without-dynamic-imports', handler.name, 'index.mjs');
      await build({
        ...CONSTRUCT_ESBUILD_OPTIONS,
        entryPoints: [join(PROJECT_ROOT, handler.entry)],
        outfile: lazyFile,
        external: packages,
      });
      handler.lazyVariant = {
        ...handler,
        file: lazyFile,
        metafile: undefined,
        lazyVariant: undefined,
        packages,
        times: emptyTimes(),
      };
    }
  }

  const timer = writeImportTimer(workDir);
  const targets = [floor, ...handlers, ...handlers.flatMap((h) => (h.lazyVariant ? [h.lazyVariant] : []))];
  for (let pass = 0; pass < runs; pass++) {
    // Rotate the starting bundle each round, so none always runs first (or right after synth).
    for (let i = 0; i < targets.length; i++) {
      const target = targets[(i + pass) % targets.length];
      // Each Node binary right after the other on the same bundle, alternating which goes first.
      const order = pass % 2 === 0 ? nodes : [...nodes].reverse();
      for (const node of order) {
        const measured = await importTime(node.path, timer, target.file, target.env);
        target.times.byNode[node.label].push(measured.ms);
        target.times.cpuByNode[node.label].push(measured.cpuMs);
      }
      if (nodeOptions !== undefined) {
        const { NODE_OPTIONS: _dropped, ...withoutMaps } = target.env;
        target.times.noMaps.push((await importTime(nodes[0].path, timer, target.file, withoutMaps)).ms);
      }
    }
    progress(`cold start: import round ${pass + 1}/${runs} done`);
  }

  const floorMeasured = summarize(floor, undefined, outDir, nodes);
  return {
    runsPerBundle: runs,
    synthSeconds: round(synthSeconds, 1),
    nodes: nodes.map(({ label, version }) => ({ label, version })),
    nodeSkipped,
    nodeOptions,
    floor: floorMeasured,
    handlers: handlers.map((h) => summarize(h, floor, outDir, nodes)),
    goal: COLD_START_GOAL,
  };
}

/** `cdk synth` into `outDir`; needs no AWS credentials. Telemetry and notices off: no network here. */
async function synth(outDir: string): Promise<void> {
  try {
    // A client id is required to synth; the bundles do not depend on its value.
    await run('npx', ['cdk', 'synth', '--quiet', '--no-notices', '-o', outDir, '-c', 'clientId=bench-client'], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true' },
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(
      `cdk synth failed:\n${`${stdout ?? ''}\n${stderr ?? ''}`.trim().split('\n').slice(-30).join('\n')}`,
    );
  }
}

/** Reads every stack template of the synth output and finds each function's bundle and environment. */
function findHandlerBundles(outDir: string): Target[] {
  const targets: Target[] = [];
  const entries: Record<string, string> = ENTRY_FILES;
  for (const templateFile of readdirSync(outDir).filter((f) => f.endsWith('.template.json'))) {
    const template = JSON.parse(readFileSync(join(outDir, templateFile), 'utf8')) as {
      Resources: Record<string, { Type: string; Metadata?: Record<string, string>; Properties?: any }>;
    };
    for (const resource of Object.values(template.Resources)) {
      const assetPath = resource.Metadata?.['aws:asset:path'];
      if (resource.Type !== 'AWS::Lambda::Function' || !assetPath) continue;
      const file = ['index.mjs', 'index.js'].map((f) => join(outDir, assetPath, f)).find((f) => existsSync(f));
      if (!file) continue;
      // "Stack/Broker/Callback/Resource" -> "Callback"
      const name = (resource.Metadata?.['aws:cdk:path'] ?? assetPath).split('/').slice(-2, -1)[0] ?? assetPath;
      const entryFile =
        entries[name.charAt(0).toLowerCase() + name.slice(1)] ??
        join(PROJECT_ROOT, 'functions', `${name.toLowerCase()}.ts`);
      const variables = (resource.Properties?.Environment?.Variables ?? {}) as Record<string, unknown>;
      targets.push({
        name,
        entry: existsSync(entryFile) ? relative(PROJECT_ROOT, entryFile) : undefined,
        file,
        displayPath: relative(outDir, file),
        env: lambdaEnv(name, harmless(variables)),
        times: { byNode: {}, cpuByNode: {}, noMaps: [] },
      });
    }
  }
  return targets.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The function's environment with CloudFormation references (table names, the API URL, the secret
 * ARN) replaced by plausible values: the handlers validate their config at import.
 */
function harmless(variables: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(variables)) {
    if (typeof value === 'string') out[name] = value;
    else if (name.endsWith('_URL')) out[name] = 'https://abcdef1234.execute-api.us-east-1.amazonaws.com/callback';
    else if (name.endsWith('KEY_ARN')) out[name] = 'arn:aws:kms:us-east-1:123456789012:key/bench-0000-0000';
    else if (name.endsWith('_ARN')) out[name] = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-AbCdEf';
    else out[name] = `bench-${name.toLowerCase().replace(/_/g, '-')}`;
  }
  return out;
}

/** What Lambda itself puts in every function's environment (that the code might read at import). */
function lambdaEnv(name: string, fnEnv: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_LAMBDA_FUNCTION_NAME: name,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
    // Node 20 here: the SDK would warn that it wants Node 22, which Lambda runs. Same for every bundle.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...fnEnv,
  };
}

/**
 * Writes the script that imports a bundle (its path the first argument) and prints the import's wall
 * and CPU time as JSON; returns its path. Run by {@link importTime} in a fresh Node process.
 */
export function writeImportTimer(workDir: string): string {
  const timer = join(workDir, 'import-timer.mjs');
  writeFileSync(
    timer,
    [
      "import { pathToFileURL } from 'node:url';",
      'const cpu = process.cpuUsage();',
      'const started = performance.now();',
      'await import(pathToFileURL(process.argv[2]).href);',
      'const ms = performance.now() - started;',
      'const used = process.cpuUsage(cpu);',
      'process.stdout.write(JSON.stringify({ ms, cpuMs: (used.user + used.system) / 1000 }));',
    ].join('\n'),
  );
  return timer;
}

/** Imports `bundle` in a fresh Node process and returns how long the import took inside it. */
export async function importTime(
  node: string,
  timer: string,
  bundle: string,
  env: Record<string, string>,
): Promise<{ ms: number; cpuMs: number }> {
  try {
    const { stdout } = await run(node, [timer, bundle], { env, timeout: 60_000 });
    return JSON.parse(stdout) as { ms: number; cpuMs: number };
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`importing ${bundle} failed: ${(stderr ?? String(error)).trim().slice(0, 2000)}`);
  }
}

/** The package of a node_modules path, e.g. `@aws-sdk/client-eventbridge`. */
const packageOf = (path: string): string | undefined => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1];

/**
 * Packages the project's own code loads only through `import()` (and nothing imports statically):
 * safe to leave out for an import-time measurement, since nothing loads them at init. The SDK's own
 * lazy imports (credential providers) are left alone: the floor carries them too.
 */
function onlyDynamicallyImported(metafile: Metafile): string[] {
  const dynamic = new Set<string>();
  const staticallyUsed = new Set<string>();
  for (const [from, input] of Object.entries(metafile.inputs)) {
    for (const edge of input.imports) {
      const pkg = packageOf(edge.path);
      if (!pkg || packageOf(from) === pkg) continue;
      if (edge.kind !== 'dynamic-import') staticallyUsed.add(pkg);
      else if (!packageOf(from)) dynamic.add(pkg);
    }
  }
  return [...dynamic].filter((pkg) => !staticallyUsed.has(pkg));
}

/** Bytes in the output per package (`@scope/name`) or project file, from an esbuild metafile. */
function bytesByInput(metafile: Metafile): Map<string, number> {
  const totals = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const pkg = packageOf(input) ?? input;
      totals.set(pkg, (totals.get(pkg) ?? 0) + bytesInOutput);
    }
  }
  return totals;
}

function times(values: number[]): ImportTimes {
  return { p50: round(median(values)), p90: round(quantile(values, 0.9)), runs: values.map((v) => round(v)) };
}

function summarize(
  target: Target,
  floor: Target | undefined,
  outDir: string,
  nodes: readonly NodeBinary[],
): BundleMeasurement {
  const content = readFileSync(target.file);
  const mapFile = `${target.file}.map`;
  const machine = nodes[0].label;
  const floorTimes = floor ?? target;
  const byNode = nodes.map((node) => {
    const own = target.times.byNode[node.label];
    return {
      node: node.label,
      version: node.version,
      importMs: times(own),
      ratio: round(median(own) / median(floorTimes.times.byNode[node.label]), 3),
      cpuMs: times(target.times.cpuByNode[node.label]),
      cpuRatio: round(median(target.times.cpuByNode[node.label]) / median(floorTimes.times.cpuByNode[node.label]), 3),
    };
  });
  const noMaps = target.times.noMaps.length > 0 ? times(target.times.noMaps) : undefined;
  const inputs = target.metafile ? bytesByInput(target.metafile) : undefined;
  const floorInputs = floor?.metafile ? bytesByInput(floor.metafile) : undefined;
  const sorted = (entries: Iterable<[string, number]>) =>
    [...entries]
      .filter(([, bytes]) => bytes > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([input, bytes]) => ({ input, bytes }));
  return {
    name: target.name,
    entry: target.entry,
    bundle: target.displayPath ?? relative(outDir, target.file),
    bytes: content.length,
    gzipBytes: gzipSync(content).length,
    sourceMapBytes: existsSync(mapFile) ? statSync(mapFile).size : 0,
    importMs: byNode[0].importMs,
    importMsNoSourceMaps: noMaps,
    ratio: byNode[0].ratio,
    ratioNoSourceMaps: noMaps && round(median(target.times.noMaps) / median(floorTimes.times.noMaps), 3),
    byNode,
    rebuiltBytes: target.rebuiltBytes,
    topInputs: inputs ? sorted(inputs).slice(0, 12) : undefined,
    withoutDynamicImports: target.lazyVariant && {
      packages: target.lazyVariant.packages,
      bytes: statSync(target.lazyVariant.file).size,
      importMs: times(target.lazyVariant.times.byNode[machine]),
      ratio: round(median(target.lazyVariant.times.byNode[machine]) / median(floorTimes.times.byNode[machine]), 3),
    },
    addedOverFloor:
      inputs && floorInputs
        ? sorted([...inputs].map(([input, bytes]): [string, number] => [input, bytes - (floorInputs.get(input) ?? 0)]))
        : undefined,
  };
}

/** The section as markdown. */
export function coldStartMarkdown(result: ColdStartResult): string {
  // Judged on the figure as printed (two decimals), so a row never reads "1.10x ... no".
  const withinGoal = (value: number) => round(value, 2) <= result.goal;
  const all = [result.floor, ...result.handlers];
  const withMaps = result.floor.importMsNoSourceMaps !== undefined;
  const lines = [
    `### Cold start: handler bundles vs the SDK floor`,
    '',
    `Import time of each bundle in a fresh \`node\` (median and p90 of ${result.runsPerBundle} runs), under ` +
      `${result.nodes.map((n) => n.label).join(' and ')}, interleaved: every bundle round robin, each Node right after the other ` +
      `on the same bundle. Lambda runs these bundles on Node 24 (arm64; the x64 build runs here). ` +
      `Each ratio is against the floor under the same Node. CPU time (user + system of the child, around the import) is what ` +
      `the goal is judged on: on this shared machine wall time moves with the other work on it, CPU time much less. Environment: the function's, from the template` +
      `${result.nodeOptions ? `, including \`NODE_OPTIONS=${result.nodeOptions}\`` : ' (no `NODE_OPTIONS`)'}. Goal: ratio ≤ ${result.goal.toFixed(2)}x.`,
    '',
    table(
      [
        'bundle',
        'bytes',
        'gzip bytes',
        ...result.nodes.flatMap((n) => [`${n.label}: CPU p50`, 'ratio', 'wall p50', 'p90', 'ratio']),
        'within goal (CPU)',
        ...(withMaps ? ['wall p50 without NODE_OPTIONS', 'ratio'] : []),
      ],
      all.map((m) => {
        const isFloor = m === result.floor;
        return [
          isFloor ? `**${m.name}**` : m.name,
          int(m.bytes),
          int(m.gzipBytes),
          ...m.byNode.flatMap((n) => [
            `${n.cpuMs.p50.toFixed(1)} ms`,
            isFloor ? '1.00x' : ratio(n.cpuRatio),
            `${n.importMs.p50.toFixed(1)} ms`,
            `${n.importMs.p90.toFixed(1)} ms`,
            isFloor ? '1.00x' : ratio(n.ratio),
          ]),
          isFloor ? '' : m.byNode.every((n) => withinGoal(n.cpuRatio)) ? 'yes' : '**no**',
          ...(withMaps && m.importMsNoSourceMaps
            ? [`${m.importMsNoSourceMaps.p50.toFixed(1)} ms`, isFloor ? '1.00x' : ratio(m.ratioNoSourceMaps ?? 0)]
            : []),
        ];
      }),
    ),
  ];
  if (result.nodeSkipped) lines.push('', `Not measured: ${result.nodeSkipped}.`);
  const drift = result.handlers.filter((h) => h.rebuiltBytes !== undefined && h.rebuiltBytes !== h.bytes);
  lines.push(
    '',
    drift.length === 0
      ? `Rebuilding each entry with the bench's copy of the construct's esbuild options gives byte-identical sizes, so the floor is bundled the same way. Synth took ${result.synthSeconds} s.`
      : `**Option drift:** rebuilt sizes differ for ${drift.map((h) => `${h.name} (${h.rebuiltBytes} vs ${h.bytes})`).join(', ')}: update CONSTRUCT_ESBUILD_OPTIONS in bench/cold-start.ts from BUNDLING in infra/broker/functions.ts.`,
  );
  const lazy = result.handlers.filter((h) => h.withoutDynamicImports);
  if (lazy.length > 0) {
    lines.push(
      '',
      "Packages the handler code loads only through `import()` (to defer them to first use) are still inlined in the bundle, since it is built without code splitting, so they are parsed at init. The same entries rebuilt without them (this machine's Node):",
      '',
      table(
        ['bundle', 'left out', 'bytes', 'import p50', 'ratio', 'within goal'],
        lazy.map((h) => {
          const v = h.withoutDynamicImports!;
          return [
            h.name,
            v.packages.join(', '),
            int(v.bytes),
            `${v.importMs.p50.toFixed(1)} ms`,
            ratio(v.ratio),
            withinGoal(v.ratio) ? 'yes' : '**no**',
          ];
        }),
      ),
    );
  }
  for (const handler of result.handlers.filter(
    // The goal is judged on CPU time, as the table's last column.
    (h) => !h.byNode.every((n) => withinGoal(n.cpuRatio)) && h.addedOverFloor,
  )) {
    lines.push(
      '',
      `${handler.name} is over the goal (CPU ${handler.byNode.map((n) => `${ratio(n.cpuRatio)} on ${n.node}`).join(', ')}). What its bundle adds over the floor (esbuild metafile, bytes in output):`,
      '',
      table(
        ['input', 'bytes added'],
        handler.addedOverFloor!.slice(0, 8).map((a) => [a.input, int(a.bytes)]),
      ),
    );
  }
  return lines.join('\n');
}
