/**
 * The file through which `npm start` tells `npm run tokens` where its DynamoDB Local and sandbox
 * are: one definition for the writer (infra/local/stack.ts) and the reader (the CLI).
 */
import { join } from 'node:path';

/** `.local/stack.json` under the working directory. */
export function localStateFile(cwd = process.cwd()): string {
  return join(cwd, '.local', 'stack.json');
}

/**
 * `.local/field-key` under the working directory: the local key that encrypts refresh tokens and code
 * verifiers when no KMS key is configured (mode 0600, created by `npm start`, kept across runs).
 */
export function localFieldKeyFile(cwd = process.cwd()): string {
  return join(cwd, '.local', 'field-key');
}

/** What `npm start` writes to {@link localStateFile}. */
export interface LocalStackState {
  readonly pid: number;
  /**
   * Environment a client of this stack should use (endpoints, table names, sandbox client, the
   * DynamoDB Local access key of this run, the field key file's path).
   */
  readonly env: Record<string, string>;
  /**
   * What another local service's token reader needs to take the production path against this stack
   * (`npm run tokens -- env` prints it); absent in the state of a stack started before it existed.
   */
  readonly reader?: Record<string, string>;
}
