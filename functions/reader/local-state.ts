/**
 * The file through which `npm start` tells `npm run tokens` where its DynamoDB Local and sandbox
 * are: one definition for the writer (infra/local/stack.ts) and the reader (the CLI).
 */
import { join } from 'node:path';

/** `.local/stack.json` under the working directory. */
export function localStateFile(cwd = process.cwd()): string {
  return join(cwd, '.local', 'stack.json');
}

/** What `npm start` writes to {@link localStateFile}. */
export interface LocalStackState {
  readonly pid: number;
  /** Environment a client of this stack should use (endpoints, table names, sandbox client). */
  readonly env: Record<string, string>;
  /**
   * What another local service's token reader needs to take the production path against this stack
   * (`npm run tokens -- env` prints it); absent in the state of a stack started before it existed.
   */
  readonly reader?: Record<string, string>;
}
