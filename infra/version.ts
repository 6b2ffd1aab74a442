/**
 * The broker's version, from the project's package.json: the construct gives it to the login
 * function and the local stack to its handlers, as `BROKER_VERSION`, which `GET /health` reports.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * `version` of the broker's package.json: the repository root's, or the installed package's root
 * when the construct runs from the package (dist/cdk, whose dist/package.json only sets the module
 * type), found by name from here upwards.
 */
export function brokerVersion(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const manifest = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'kroger-token-broker' && manifest.version) return manifest.version;
    }
    if (dirname(dir) === dir) throw new Error(`no package.json of kroger-token-broker above ${__dirname}`);
  }
}
