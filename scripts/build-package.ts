/**
 * `npm run build`, and `prepack` (so `npm pack` and `npm publish` always build first): the published
 * package, in `dist/`:
 *
 *   dist/index.js            the reader (functions/reader/published.ts), ESM; the AWS SDK clients
 *                            stay imports (they are the package's dependencies), the rest is inlined
 *   dist/cdk/index.js        the construct (infra/broker/published.ts), ESM; aws-cdk-lib and constructs
 *                            stay imports (optional peer dependencies)
 *   dist/lambda/<name>/      every entry of ENTRY_FILES bundled with the construct's own BUNDLING
 *                            options: the code the packaged construct deploys, built once, here
 *   dist/types/              declarations (tsc), only those the two entries reach
 *   dist/package.json        {"type":"module"}: Node and TypeScript read the files above as ESM
 *
 * Each bundle's imports are checked against package.json, so a dependency added to the reader
 * without being declared (or a broker-only client leaking into it) fails the build, not a consumer.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { build, type BuildOptions, type Plugin } from 'esbuild';
import * as ts from 'typescript';
import type { BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import { BUNDLING, bundleNameOf, ENTRY_FILES } from '../infra/broker/functions';

const ROOT = join(__dirname, '..');
const DIST = join(ROOT, 'dist');
const TYPES = join(DIST, 'types');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  engines: { node: string };
};

/** Where each published entry's source and declaration are. */
export const ENTRIES = {
  reader: { source: 'functions/reader/published.ts', out: 'dist/index.js' },
  cdk: { source: 'infra/broker/published.ts', out: 'dist/cdk/index.js' },
} as const;

/** The Node version the library bundles target: the lowest `engines.node` allows. */
const LIBRARY_TARGET = `node${/(\d+(?:\.\d+)?)/.exec(PKG.engines.node)![1]}`;

/**
 * Marks matching imports external and free of side effects, so an import the entry does not use
 * (say, the Secrets Manager client of the in-process reader) is dropped instead of kept.
 */
function externalWithoutSideEffects(filter: RegExp): Plugin {
  return {
    name: 'external-without-side-effects',
    setup(b) {
      b.onResolve({ filter }, (args) => ({ path: args.path, external: true, sideEffects: false }));
    },
  };
}

/**
 * esbuild options equal to what NodejsFunction runs for `bundling` (aws-cdk-lib's
 * `Bundling.buildEsbuildArgs`). An option this does not translate fails the build, so a new one in
 * BUNDLING cannot make the prebuilt bundles differ from `cdk deploy`'s silently.
 */
export function esbuildOptionsOf(bundling: BundlingOptions): BuildOptions {
  const translated = new Set([
    'forceDockerBundling',
    'format',
    'target',
    'mainFields',
    'minify',
    'sourceMap',
    'sourceMapMode',
    'sourcesContent',
    'bundleAwsSDK',
    'externalModules',
    'banner',
    'footer',
    'keepNames',
    'define',
    'loader',
    'logLevel',
  ]);
  const unknown = Object.keys(bundling).filter((key) => !translated.has(key));
  if (unknown.length) throw new Error(`BUNDLING has options this build does not translate: ${unknown.join(', ')}`);
  if (!bundling.target || !bundling.format) throw new Error('BUNDLING must set target and format');
  if (!bundling.bundleAwsSDK && !bundling.externalModules) {
    throw new Error('BUNDLING must bundle the AWS SDK or list its external modules');
  }
  // `--sourcemap` for the default mode, `--sourcemap=<mode>` for the others, as the CDK passes them.
  const mode = bundling.sourceMapMode as 'default' | 'external' | 'inline' | 'both' | undefined;
  const sourcemap = !(mode || bundling.sourceMap) ? false : !mode || mode === 'default' ? true : mode;
  return {
    bundle: true,
    platform: 'node',
    format: bundling.format as 'esm' | 'cjs',
    target: bundling.target,
    mainFields: bundling.mainFields,
    minify: bundling.minify ?? false,
    sourcemap,
    sourcesContent: bundling.sourcesContent ?? true,
    external: bundling.externalModules ?? [],
    keepNames: bundling.keepNames ?? false,
    define: bundling.define,
    loader: bundling.loader as BuildOptions['loader'],
    banner: bundling.banner ? { js: bundling.banner } : undefined,
    footer: bundling.footer ? { js: bundling.footer } : undefined,
    logLevel: (bundling.logLevel as BuildOptions['logLevel']) ?? 'warning',
  };
}

const BUILTINS = new Set(builtinModules);

/** The package of an import specifier (`@scope/name` or `name`), or undefined for a Node built-in or a file. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:')) return undefined;
  if (BUILTINS.has(specifier.split('/')[0])) return undefined;
  return specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');
}

/**
 * Builds, then checks from esbuild's metafile that the output imports only `allowed` packages
 * (besides Node's built-ins): what stays an import must be there at run time.
 */
async function bundle(options: BuildOptions & { outfile: string }, allowed: readonly string[]): Promise<void> {
  const { metafile } = await build({ ...options, metafile: true });
  const imports = Object.values(metafile.outputs).flatMap((output) => output.imports);
  const packages = [...new Set(imports.filter((i) => i.external).map((i) => packageOf(i.path)))];
  const extra = packages.filter((p): p is string => p !== undefined && !allowed.includes(p));
  if (extra.length) {
    throw new Error(
      `${relative(ROOT, options.outfile)} imports ${extra.join(', ')}, not among ${allowed.join(', ') || 'nothing'}`,
    );
  }
}

async function buildLibraries(): Promise<void> {
  const common: BuildOptions = {
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: LIBRARY_TARGET,
    logLevel: 'warning',
  };
  await bundle(
    {
      ...common,
      absWorkingDir: ROOT,
      entryPoints: [ENTRIES.reader.source],
      outfile: join(ROOT, ENTRIES.reader.out),
      // Prefer the ES module builds of what is inlined; the SDK clients are the consumer's own install.
      mainFields: ['module', 'main'],
      plugins: [externalWithoutSideEffects(/^@aws-sdk\//)],
    },
    Object.keys(PKG.dependencies ?? {}),
  );

  await bundle(
    {
      ...common,
      absWorkingDir: ROOT,
      entryPoints: [ENTRIES.cdk.source],
      outfile: join(ROOT, ENTRIES.cdk.out),
      plugins: [externalWithoutSideEffects(/^(aws-cdk-lib|constructs)(\/|$)/)],
      // The construct finds its prebuilt bundles from its own directory (PREBUILT_DIR): give the ES
      // module the `__dirname` it is written against.
      banner: {
        js:
          "import { dirname as __brokerDirname } from 'node:path'; import { fileURLToPath as __brokerFileURLToPath } from 'node:url'; " +
          'const __dirname = __brokerDirname(__brokerFileURLToPath(import.meta.url));',
      },
    },
    Object.keys(PKG.peerDependencies ?? {}),
  );
}

async function buildFunctionBundles(): Promise<void> {
  const options = esbuildOptionsOf(BUNDLING);
  // NodejsFunction names the output after the format: index.mjs for ESM, index.js otherwise.
  const file = options.format === 'esm' ? 'index.mjs' : 'index.js';
  // Bundled relative to the repository root, as NodejsFunction does (projectRoot), one at a time
  // to spare a 2-core machine.
  for (const entry of Object.values(ENTRY_FILES)) {
    // dist/lambda beside dist/cdk: where the packaged construct looks (PREBUILT_DIR).
    const outdir = join(DIST, 'lambda', bundleNameOf(entry));
    // What the runtime provides (BUNDLING's externals) and nothing else may stay an import.
    await bundle(
      { ...options, absWorkingDir: ROOT, entryPoints: [relative(ROOT, entry)], outfile: join(outdir, file) },
      options.external ?? [],
    );
  }
}

/** Every `.d.ts` under `dir`. */
function declarationFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((name) => join(dir, name))
    .filter((file) => file.endsWith('.d.ts') && statSync(file).isFile());
}

/** The module specifiers a declaration file imports, each with where its text starts (comments ignored). */
function specifiersOf(text: string): Array<{ specifier: string; start: number }> {
  // `pos` is the opening quote's position.
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => ({ specifier: f.fileName, start: f.pos + 1 }));
}

/**
 * The declarations tsc wrote for the two entries, made to resolve as ES modules (`./x` becomes
 * `./x.js`, as `moduleResolution: node16/nodenext/bundler` requires) and pruned to the files the
 * entries reach. A reached declaration that imports a package the consumer may not have fails.
 */
function finishDeclarations(): void {
  const resolveRelative = (from: string, specifier: string): string => {
    const base = resolve(dirname(from), specifier.replace(/\.js$/, ''));
    if (existsSync(`${base}.d.ts`)) return `${base}.d.ts`;
    if (existsSync(join(base, 'index.d.ts'))) return join(base, 'index.d.ts');
    throw new Error(`${relative(ROOT, from)}: cannot resolve "${specifier}"`);
  };
  const allowed = [...Object.keys(PKG.dependencies ?? {}), ...Object.keys(PKG.peerDependencies ?? {})];
  const reached = new Set<string>();
  const visit = (file: string): void => {
    if (reached.has(file)) return;
    reached.add(file);
    let text = readFileSync(file, 'utf8');
    // From the last specifier back, so earlier positions stay valid while rewriting.
    for (const { specifier, start } of specifiersOf(text).reverse()) {
      if (!specifier.startsWith('.')) {
        const pkg = packageOf(specifier);
        if (pkg && !allowed.includes(pkg)) {
          throw new Error(`${relative(ROOT, file)} refers to ${pkg}, which consumers may not have`);
        }
        continue;
      }
      const target = resolveRelative(file, specifier);
      visit(target);
      const rel = relative(dirname(file), target).replace(/\.d\.ts$/, '.js');
      text = `${text.slice(0, start)}${rel.startsWith('.') ? rel : `./${rel}`}${text.slice(start + specifier.length)}`;
    }
    writeFileSync(file, text);
  };
  for (const entry of Object.values(ENTRIES)) visit(join(TYPES, entry.source.replace(/\.ts$/, '.d.ts')));
  for (const file of declarationFiles(TYPES)) if (!reached.has(file)) rmSync(file);
  // Directories left empty by the pruning.
  for (const dir of readdirSync(TYPES, { recursive: true, encoding: 'utf8' })
    .map((d) => join(TYPES, d))
    .reverse()) {
    if (statSync(dir).isDirectory() && readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
  }
}

function emitDeclarations(): void {
  const started = Date.now();
  const tsc = require.resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  if (result.status !== 0) throw new Error(`tsc failed with exit code ${result.status}`);
  finishDeclarations();
  process.stderr.write(`declarations in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

async function main(): Promise<void> {
  const started = Date.now();
  rmSync(DIST, { recursive: true, force: true });
  mkdirSync(DIST, { recursive: true });
  await buildLibraries();
  await buildFunctionBundles();
  emitDeclarations();
  writeFileSync(join(DIST, 'package.json'), `${JSON.stringify({ type: 'module' }, null, 2)}\n`);
  process.stderr.write(`built dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`build failed: ${(error as Error).message}\n`);
    process.exitCode = 1;
  });
}
