/**
 * Another team's CDK app uses the construct from the package: `kroger-token-broker/cdk` from the
 * packed tarball, with only aws-cdk-lib and constructs beside it (no esbuild, no TypeScript, no
 * broker sources). The same app synthesized from this repository's sources (bundling from source)
 * must give the same template, and the prebuilt bundles must be the bytes `cdk deploy` bundles here.
 */
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as ts from 'typescript';
import { KrogerTokenBroker } from '../../infra/broker';
import { packedTarball, ROOT } from '../support/package';
import { cdkJsonContext, newApp, SYNTH_TIMEOUT_MS } from './support';

type Resources = Record<string, { Type: string; Properties?: any; Metadata?: any }>;

const STACK_ENV = { account: '123456789012', region: 'eu-west-1' };
const BROKER_FUNCTIONS = ['Login', 'Callback', 'Refresh', 'Refresher'];

/** The consumer's app: the construct, and a function of its own that reads tokens. */
const APP = `
import { App, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { KrogerTokenBroker } from 'kroger-token-broker/cdk';

const app = new App({ outdir: process.env.OUTDIR, context: JSON.parse(process.env.APP_CONTEXT) });
const stack = new Stack(app, 'Consumer', { env: ${JSON.stringify(STACK_ENV)} });
const broker = new KrogerTokenBroker(stack, 'Broker', { clientId: 'consumer-client' });
const cart = new lambda.Function(stack, 'Cart', {
  runtime: lambda.Runtime.NODEJS_22_X,
  handler: 'index.handler',
  code: lambda.Code.fromInline('export const handler = async () => undefined;'),
});
broker.addTokenReader(cart);
app.synth();

// What this app could load besides the construct: nothing that bundles or compiles.
const resolvable = {};
for (const name of ['esbuild', 'typescript', 'tsx', 'ts-node']) {
  try {
    import.meta.resolve(name);
    resolvable[name] = true;
  } catch {
    resolvable[name] = false;
  }
}
console.log(JSON.stringify({ resolvable }));
`;

let dir: string;
let packageDir: string;
let consumer: { resolvable: Record<string, boolean> };
let consumerOut: string;
let consumerResources: Resources;
let repoOut: string;
let repoResources: Resources;

/**
 * The top-level packages of this repository's node_modules that `roots` need at run time (npm's
 * layout from package-lock.json): what a consumer's `npm install aws-cdk-lib constructs` would put
 * beside them.
 */
function runtimeClosure(roots: string[]): string[] {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> }>;
  };
  const topLevel = new Set<string>();
  const seen = new Set<string>();
  // npm's resolution: the nearest node_modules holding `dep`, from the dependent package upwards.
  const locate = (from: string, dep: string): string | undefined => {
    for (let base = from; ; base = base.slice(0, base.lastIndexOf('/node_modules/'))) {
      if (lock.packages[`${base}/node_modules/${dep}`]) return `${base}/node_modules/${dep}`;
      if (!base.includes('/node_modules/'))
        return lock.packages[`node_modules/${dep}`] ? `node_modules/${dep}` : undefined;
    }
  };
  const visit = (path: string): void => {
    const entry = lock.packages[path];
    if (!entry || seen.has(path)) return;
    seen.add(path);
    if (/^node_modules\/(@[^/]+\/)?[^/]+$/.test(path)) topLevel.add(path.slice('node_modules/'.length));
    for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      const found = locate(path, dep);
      if (found) visit(found);
    }
  };
  for (const root of roots) visit(`node_modules/${root}`);
  return [...topLevel].sort();
}

/** The function at `<path>/Resource` in a synthesized template. */
function resourceAt(resources: Resources, path: string) {
  return Object.values(resources).find((r) => r.Metadata?.['aws:cdk:path'] === `Consumer/${path}/Resource`)!;
}

/** The asset directory of the function at `Broker/<name>`: `asset.<hash>`, as S3Key names it. */
function assetDirOf(outdir: string, resources: Resources, name: string): string {
  return join(outdir, `asset.${resourceAt(resources, `Broker/${name}`).Properties.Code.S3Key.replace(/\.zip$/, '')}`);
}

/** Resources without what depends on where the code was bundled (asset keys and paths). */
function withoutAssetDetails(resources: Resources): Resources {
  return Object.fromEntries(
    Object.entries(resources).map(([id, r]) => {
      const properties =
        r.Type === 'AWS::Lambda::Function' ? { ...r.Properties, Code: { ...r.Properties.Code } } : r.Properties;
      if (r.Type === 'AWS::Lambda::Function' && properties.Code.S3Key) properties.Code.S3Key = '<asset>';
      return [id, { Type: r.Type, Properties: properties }];
    }),
  );
}

beforeAll(() => {
  const tarball = packedTarball();
  dir = mkdtempSync(join(tmpdir(), 'broker-consumer-app-'));
  // The tarball, unpacked where npm would install it; aws-cdk-lib and constructs linked in.
  execFileSync('tar', ['-xzf', tarball, '-C', dir]);
  mkdirSync(join(dir, 'node_modules'));
  packageDir = join(dir, 'node_modules', 'kroger-token-broker');
  renameSync(join(dir, 'package'), packageDir);
  for (const name of runtimeClosure(['aws-cdk-lib', 'constructs'])) {
    mkdirSync(dirname(join(dir, 'node_modules', name)), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules', name), join(dir, 'node_modules', name), 'dir');
  }
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer-app', private: true, type: 'module' }));
  writeFileSync(join(dir, 'app.mjs'), APP);

  const context = { ...cdkJsonContext(), 'aws:cdk:enable-path-metadata': true };
  consumerOut = join(dir, 'cdk.out');
  // Symlinks kept as paths, so nothing resolves from this repository's node_modules (esbuild is there).
  const out = execFileSync(process.execPath, ['--preserve-symlinks', '--preserve-symlinks-main', 'app.mjs'], {
    cwd: dir,
    env: { PATH: '/usr/bin:/bin', HOME: dir, OUTDIR: consumerOut, APP_CONTEXT: JSON.stringify(context) },
    encoding: 'utf8',
  });
  consumer = JSON.parse(out.trim().split('\n').pop()!);
  consumerResources = JSON.parse(readFileSync(join(consumerOut, 'Consumer.template.json'), 'utf8')).Resources;

  // The same app from this repository's sources: NodejsFunction bundling with esbuild.
  const app = newApp();
  const stack = new Stack(app, 'Consumer', { env: STACK_ENV });
  const broker = new KrogerTokenBroker(stack, 'Broker', { clientId: 'consumer-client' });
  const cart = new lambda.Function(stack, 'Cart', {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('export const handler = async () => undefined;'),
  });
  broker.addTokenReader(cart);
  repoOut = app.synth().directory;
  repoResources = JSON.parse(readFileSync(join(repoOut, 'Consumer.template.json'), 'utf8')).Resources;
}, SYNTH_TIMEOUT_MS);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (repoOut) rmSync(repoOut, { recursive: true, force: true });
});

describe('a consumer CDK app with the packaged construct', () => {
  it('synthesizes with nothing that bundles or compiles on its path, and no broker sources', () => {
    expect(consumer.resolvable).toEqual({ esbuild: false, typescript: false, tsx: false, 'ts-node': false });
    const files = readdirSync(packageDir, { recursive: true, encoding: 'utf8' });
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
  });

  it.each(BROKER_FUNCTIONS)('deploys %s from a prebuilt S3 asset with the index.handler export', (name) => {
    const fn = resourceAt(consumerResources, `Broker/${name}`);
    expect(fn.Properties.Handler).toBe('index.handler');
    expect(fn.Properties.Runtime).toBe('nodejs24.x');
    expect(fn.Properties.Code.S3Key).toMatch(/^[0-9a-f]{64}\.zip$/);
    const bundle = readFileSync(join(assetDirOf(consumerOut, consumerResources, name), 'index.mjs'), 'utf8');
    expect(bundle).toMatch(/export\s*\{[^}]*\bhandler\s*[,}]/);
  });

  it('gives the same resources, logical IDs and properties as the construct bundled from source', () => {
    expect(withoutAssetDetails(consumerResources)).toEqual(withoutAssetDetails(repoResources));
  });

  it.each(BROKER_FUNCTIONS)("deploys for %s the same bundle bytes as this repository's cdk deploy", (name) => {
    const prebuilt = readFileSync(join(assetDirOf(consumerOut, consumerResources, name), 'index.mjs'));
    const fromSource = readFileSync(join(assetDirOf(repoOut, repoResources, name), 'index.mjs'));
    expect(prebuilt.equals(fromSource)).toBe(true);
  });

  it('grants the consumer function the reader access and sets its environment', () => {
    const cart = resourceAt(consumerResources, 'Cart');
    expect(Object.keys(cart.Properties.Environment.Variables).sort()).toEqual([
      'REFRESH_FUNCTION_NAME',
      'TOKENS_TABLE',
    ]);
    const actions = Object.values(consumerResources)
      .filter((r) => r.Type === 'AWS::IAM::Policy' && r.Metadata?.['aws:cdk:path']?.startsWith('Consumer/Cart/'))
      .flatMap((r) => r.Properties.PolicyDocument.Statement.flatMap((s: any) => [s.Action].flat()))
      .sort();
    expect(actions).toEqual(['dynamodb:GetItem', 'kms:Decrypt', 'lambda:InvokeFunction']);
  });

  it.each([
    ['node10', ts.ModuleResolutionKind.Node10],
    ['node16', ts.ModuleResolutionKind.Node16],
    ['nodenext', ts.ModuleResolutionKind.NodeNext],
    ['bundler', ts.ModuleResolutionKind.Bundler],
  ])('resolves the declarations of both exports under moduleResolution %s', (_, moduleResolution) => {
    const options: ts.CompilerOptions = {
      moduleResolution,
      module: moduleResolution === ts.ModuleResolutionKind.Bundler ? ts.ModuleKind.ESNext : ts.ModuleKind.NodeNext,
      preserveSymlinks: true,
    };
    if (moduleResolution === ts.ModuleResolutionKind.Node10) options.module = ts.ModuleKind.CommonJS;
    const from = join(dir, 'app.mts');
    const resolved = (name: string) =>
      ts.resolveModuleName(name, from, options, ts.sys, undefined, undefined, ts.ModuleKind.ESNext).resolvedModule
        ?.resolvedFileName;
    expect(resolved('kroger-token-broker')).toBe(join(packageDir, 'dist/types/functions/reader/published.d.ts'));
    expect(resolved('kroger-token-broker/cdk')).toBe(join(packageDir, 'dist/types/infra/broker/published.d.ts'));
  });
});
