/**
 * The package as `npm pack` makes it (its `prepack` builds dist/ first), packed once per state of
 * the sources: the tests that install it share one tarball, kept in one cache directory under the
 * system's temp directory and replaced when any input changes.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

export const ROOT = join(__dirname, '..', '..');

/** What the build reads: a change to any of these makes a new tarball. */
const INPUTS = [
  'functions',
  'infra',
  'scripts',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'LICENSE',
  'README.md',
];

function filesUnder(path: string): string[] {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { recursive: true, encoding: 'utf8' })
    .map((name) => join(path, name))
    .filter((file) => statSync(file).isFile())
    .sort();
}

function inputsHash(): string {
  const hash = createHash('sha256');
  for (const file of INPUTS.flatMap((input) => filesUnder(join(ROOT, input)))) {
    hash.update(relative(ROOT, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/** An environment for a child npm: without the `npm_*` settings of the npm that runs the tests. */
export function cleanNpmEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key)) env[key] = value;
  return { ...env, ...extra };
}

/**
 * Runs `body` holding a lock shared by every process on this machine (a directory: creating one is
 * atomic). Jest runs test files in parallel workers, and two of them (the package test and the
 * consumer-app test) may ask for the tarball at once: one must not delete the other's cache or build
 * dist/ under it. A lock older than any pack is a crashed run's, and is taken over.
 */
function withLock<T>(lock: string, body: () => T): T {
  const staleMs = 10 * 60_000;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > staleMs) rmSync(lock, { recursive: true, force: true });
      else Atomics.wait(pause, 0, 0, 200);
    }
  }
  try {
    return body();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** The path of the packed tarball, packing (and building) first if the sources changed. */
export function packedTarball(): string {
  // One cache per checkout: another clone's run must not delete this one's tarball while it packs.
  const checkout = createHash('sha256').update(ROOT).digest('hex').slice(0, 8);
  const cache = join(tmpdir(), `kroger-token-broker-pack-${checkout}`);
  return withLock(`${cache}.lock`, () => packOnce(cache));
}

function packOnce(cache: string): string {
  const dir = join(cache, inputsHash());
  const existing = existsSync(dir) ? readdirSync(dir).find((name) => name.endsWith('.tgz')) : undefined;
  if (existing) return join(dir, existing);
  rmSync(cache, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], {
    cwd: ROOT,
    env: cleanNpmEnv(),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Lifecycle output can precede the JSON: it starts at the first line that opens the array.
  const json = out.slice(out.search(/^\[/m));
  const [{ filename }] = JSON.parse(json) as Array<{ filename: string }>;
  return join(dir, filename);
}
