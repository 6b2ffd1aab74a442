/**
 * The broker's version, from the project's package.json: the construct gives it to the login
 * function and the local stack to its handlers, as `BROKER_VERSION`, which `GET /health` reports.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** `version` of the package.json at the repository root. */
export function brokerVersion(): string {
  const manifest = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}
